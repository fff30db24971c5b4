//! Reading stack files: YAML -> interpolation -> typed structures, with overrides merged in.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::interpolate::{Variables, interpolate_value};
use super::model::StackFile;

/// A stack file problem, naming the file, the service (when there is one) and the field.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ComposeError {
    pub file: String,
    pub service: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl ComposeError {
    fn render(&self) -> String {
        let mut out = self.file.clone();
        if let Some(service) = &self.service {
            out.push_str(&format!(": service `{service}`"));
        }
        if let Some(field) = &self.field {
            out.push_str(&format!(": field `{field}`"));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }

    pub(crate) fn at(file: &str, path: &str, message: impl Into<String>) -> Self {
        let (service, field) = split_path(path);
        ComposeError {
            file: file.to_string(),
            service,
            field,
            message: message.into(),
        }
    }
}

/// `services.erlmcp.deploy.replicas` -> (Some("erlmcp"), Some("deploy.replicas")).
fn split_path(path: &str) -> (Option<String>, Option<String>) {
    let path = path.trim_matches('.');
    if path.is_empty() {
        return (None, None);
    }
    if let Some(rest) = path.strip_prefix("services.") {
        return match rest.split_once('.') {
            Some((svc, field)) => (Some(svc.to_string()), Some(field.to_string())),
            None => (Some(rest.to_string()), None),
        };
    }
    (None, Some(path.to_string()))
}

/// A stack after reading its files: the merged typed model, and the files it came from.
#[derive(Debug, Clone)]
pub struct LoadedStack {
    pub model: StackFile,
    pub files: Vec<PathBuf>,
}

impl LoadedStack {
    pub fn describe_files(&self) -> String {
        self.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// Reads `files` in order (later ones override earlier ones, maps merged key by key, lists and
/// scalars replaced) and returns the typed stack.
pub fn load_stack(files: &[PathBuf], vars: &dyn Variables) -> Result<LoadedStack, ComposeError> {
    let mut merged = Value::Mapping(Mapping::new());
    for file in files {
        let value = read_one(file, vars)?;
        merge(&mut merged, value);
    }
    let all = files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let model = to_typed(merged, &all)?;
    Ok(LoadedStack {
        model,
        files: files.to_vec(),
    })
}

fn read_one(file: &Path, vars: &dyn Variables) -> Result<Value, ComposeError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| ComposeError::at(&name, "", format!("cannot read the file: {e}")))?;
    let mut value: Value = serde_norway::from_str(&text)
        .map_err(|e| ComposeError::at(&name, "", format!("not valid YAML: {e}")))?;
    let Value::Mapping(map) = &mut value else {
        return Err(ComposeError::at(
            &name,
            "",
            "the top level must be a mapping",
        ));
    };
    // Top-level `x-*` keys hold YAML anchors for reuse; they are not part of the stack.
    map.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
    value.apply_merge().map_err(|e| {
        ComposeError::at(
            &name,
            "",
            format!("YAML merge key (<<) cannot be applied: {e}"),
        )
    })?;
    interpolate_value(&mut value, vars, "").map_err(|e| {
        let (path, message) = e.split_once(": ").unwrap_or(("", &e));
        ComposeError::at(&name, path, message)
    })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    absolutize_files(&mut value, dir);
    // Validate this file alone, so an error names the file that has it.
    to_typed(value.clone(), &name)?;
    Ok(value)
}

/// `configs.*.file` and `secrets.*.file` are relative to the file that declares them.
fn absolutize_files(value: &mut Value, dir: &Path) {
    for section in ["configs", "secrets"] {
        let Some(Value::Mapping(entries)) = value.get_mut(section) else {
            continue;
        };
        for (_, entry) in entries.iter_mut() {
            if let Some(Value::String(file)) = entry.get_mut("file") {
                let path = Path::new(file.as_str());
                if path.is_relative() {
                    *file = dir.join(path).display().to_string();
                }
            }
        }
    }
}

fn to_typed(value: Value, file: &str) -> Result<StackFile, ComposeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ComposeError::at(file, &path, e.into_inner().to_string())
    })
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn unknown_keys_are_rejected_by_name_with_file_and_service() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "s.yml",
            "services:\n  web:\n    image: a\n    deploy:\n      replicas: 2\n      resorces: {}\n",
        );
        let err = load_stack(&[f], &no_vars).unwrap_err();
        assert_eq!(err.service.as_deref(), Some("web"));
        let text = err.to_string();
        assert!(text.contains("s.yml"), "{text}");
        assert!(text.contains("unknown field `resorces`"), "{text}");
        assert!(text.contains("deploy"), "{text}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "s.yml",
            "services:\n  web:\n    image: a\n    deploy:\n      replicas: many\n",
        );
        let err = load_stack(&[f], &no_vars).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("deploy.replicas"), "{err}");
    }

    #[test]
    fn override_merges_maps_and_replaces_scalars_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(
            dir.path(),
            "base.yml",
            "x-common: &c {a: 1}\nservices:\n  web:\n    image: ${IMG:-erlmcp/erlmcp:latest}\n    command: [a, b]\n    environment: {A: '1', B: '2'}\n    deploy: {replicas: 12}\nconfigs:\n  c1: {file: ./conf/c1.yml}\n",
        );
        let over = write(
            dir.path(),
            "over.yml",
            "services:\n  web:\n    image: mcp/replica:dev\n    command: [c]\n    environment: {B: '3'}\n",
        );
        let stack = load_stack(&[base, over], &no_vars).unwrap();
        let web = &stack.model.services["web"];
        assert_eq!(web.image.as_deref(), Some("mcp/replica:dev"));
        assert_eq!(web.command.as_ref().unwrap().0, vec!["c"]);
        assert_eq!(web.environment.0["A"], "1");
        assert_eq!(web.environment.0["B"], "3");
        assert_eq!(web.deploy.as_ref().unwrap().replicas, Some(12));
        let c1 = &stack.model.configs["c1"].file;
        assert!(c1.starts_with(dir.path().to_str().unwrap()), "{c1}");
    }
}
