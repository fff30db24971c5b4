//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `$VAR` and `$$` in string
//! values, as Compose does. Swarm templates (`{{.Task.Slot}}`) pass through untouched.

use serde_norway::Value;

/// Where a variable's value comes from.
pub trait Variables {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Variables for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Replaces variables in every string value of `value`, in place. `path` names the position for
/// errors. A string that became a number or a boolean is retyped, so `replicas: ${N:-12}` works.
pub fn interpolate_value(
    value: &mut Value,
    vars: &dyn Variables,
    path: &str,
) -> Result<(), String> {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                let replaced = interpolate_str(s, vars).map_err(|e| format!("{path}: {e}"))?;
                *value = retype(replaced);
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, vars, &format!("{path}[{i}]"))?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| "?".into());
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate_value(v, vars, &child)?;
            }
        }
        Value::Tagged(tagged) => interpolate_value(&mut tagged.value, vars, path)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

fn retype(text: String) -> Value {
    match serde_norway::from_str::<Value>(&text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(text),
    }
}

pub fn interpolate_str(text: &str, vars: &dyn Variables) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body_start) = rest.strip_prefix('{') {
            let end = body_start
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
            out.push_str(&expand_braced(&body_start[..end], vars)?);
            rest = &body_start[end + 1..];
        } else {
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if name_len == 0 {
                return Err(format!(
                    "a lone `$` in `{text}`: write `$$` for a literal dollar sign"
                ));
            }
            let name = &rest[..name_len];
            out.push_str(&required(name, vars)?);
            rest = &rest[name_len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_braced(body: &str, vars: &dyn Variables) -> Result<String, String> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, op) = body.split_at(name_len);
    if name.is_empty() {
        return Err(format!("`${{{body}}}` has no variable name"));
    }
    let value = vars.get(name);
    match op {
        "" => required(name, vars),
        _ if op.starts_with(":-") => Ok(value
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| op[2..].to_string())),
        _ if op.starts_with('-') => Ok(value.unwrap_or_else(|| op[1..].to_string())),
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let message = op.trim_start_matches(':')[1..].to_string();
            value
                .filter(|v| !v.is_empty() || !op.starts_with(':'))
                .ok_or_else(|| format!("variable {name} is required: {message}"))
        }
        _ => Err(format!(
            "`${{{body}}}`: unsupported form (use ${{VAR}}, ${{VAR:-default}}, ${{VAR-default}} or ${{VAR:?message}})"
        )),
    }
}

fn required(name: &str, vars: &dyn Variables) -> Result<String, String> {
    vars.get(name).ok_or_else(|| {
        format!("variable {name} is not set: export it or give a default with ${{{name}:-value}}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "IMAGE" => Some("mcp/replica:1".into()),
            "EMPTY" => Some(String::new()),
            "N" => Some("16".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_plain_and_default_forms() {
        let v = &vars as &dyn Variables;
        assert_eq!(interpolate_str("${IMAGE}", v).unwrap(), "mcp/replica:1");
        assert_eq!(interpolate_str("$IMAGE!", v).unwrap(), "mcp/replica:1!");
        assert_eq!(
            interpolate_str("${UNSET:-erlmcp:latest}", v).unwrap(),
            "erlmcp:latest"
        );
        assert_eq!(interpolate_str("${EMPTY:-d}", v).unwrap(), "d");
        assert_eq!(interpolate_str("${EMPTY-d}", v).unwrap(), "");
        assert_eq!(interpolate_str("cost $$5", v).unwrap(), "cost $5");
        assert_eq!(
            interpolate_str("r{{.Task.Slot}}", v).unwrap(),
            "r{{.Task.Slot}}"
        );
    }

    #[test]
    fn unset_or_malformed_variables_are_errors_that_say_what_to_do() {
        let v = &vars as &dyn Variables;
        assert!(
            interpolate_str("${UNSET}", v)
                .unwrap_err()
                .contains("UNSET is not set")
        );
        assert!(
            interpolate_str("${UNSET:?give a tag}", v)
                .unwrap_err()
                .contains("give a tag")
        );
        assert!(
            interpolate_str("${IMAGE", v)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(interpolate_str("a $ b", v).unwrap_err().contains("$$"));
    }

    #[test]
    fn interpolated_numbers_are_retyped_and_errors_carry_the_path() {
        let mut doc: Value =
            serde_norway::from_str("deploy:\n  replicas: ${N:-12}\n  image: ${UNSET}\n").unwrap();
        let err = interpolate_value(&mut doc, &vars, "").unwrap_err();
        assert!(err.starts_with("deploy.image:"), "{err}");
        let mut doc: Value = serde_norway::from_str("replicas: ${N:-12}\n").unwrap();
        interpolate_value(&mut doc, &vars, "").unwrap();
        assert_eq!(doc["replicas"].as_u64(), Some(16));
    }
}
