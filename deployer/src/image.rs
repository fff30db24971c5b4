//! `image replica`: a self-contained image (FROM scratch) built through the Engine API from the
//! workspace's own `replica` binary. No base image and no registry are needed: the build context,
//! streamed by the deployer, holds the binary and, when it is dynamically linked, the shared
//! libraries `ldd` lists.

use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use serde::Serialize;

use crate::engine::EngineContext;
use crate::error::{DeployError, Result};
use crate::up::Say;

pub const DEFAULT_REPLICA_TAG: &str = "mcp-load/replica:latest";

#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    pub tag: String,
    pub id: String,
    pub binary: PathBuf,
    pub static_binary: bool,
    /// Shared libraries copied into the image (empty for a static binary).
    pub libraries: Vec<String>,
    pub context_bytes: usize,
}

/// The replica binary: `explicit` when given, otherwise the newest `replica` under
/// CARGO_TARGET_DIR or the workspace's `target/` (release builds, host or gnu target dir).
pub fn locate_replica_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(DeployError::Build(format!(
                "--binary {}: no such file; build it with `cargo build -p replica --release`",
                path.display()
            )))
        };
    }
    let mut roots = Vec::new();
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        roots.push(PathBuf::from(dir));
    }
    if let Some(ws) = workspace_root() {
        roots.push(ws.join("target"));
    }
    let candidates: Vec<PathBuf> = roots
        .iter()
        .flat_map(|r| {
            [
                r.join("x86_64-unknown-linux-gnu/release/replica"),
                r.join("release/replica"),
            ]
        })
        .collect();
    candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .ok_or_else(|| {
            DeployError::Build(format!(
                "no replica binary found (looked at {}); build it with `cargo build -p replica --release` or pass --binary PATH",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn workspace_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let from_cwd = cwd.ancestors().find(|d| {
        std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
    });
    from_cwd.map(Path::to_path_buf).or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
    })
}

/// Whether an ELF executable asks for a dynamic loader (has a PT_INTERP program header).
pub fn elf_is_dynamic(bytes: &[u8]) -> std::result::Result<bool, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF executable".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF executable".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(p_type) = bytes.get(at..at + 4) else {
            return Err("truncated program header table".into());
        };
        if u32::from_le_bytes(p_type.try_into().expect("4 bytes")) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Absolute paths of the shared objects in `ldd` output, loader included.
pub fn parse_ldd(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

const DOCKERFILE: &str = "FROM scratch\n\
COPY rootfs/ /\n\
EXPOSE 5555 8080\n\
LABEL org.opencontainers.image.title=\"replica\" org.opencontainers.image.description=\"MCP server replica (mcp-load), self-contained\"\n\
ENTRYPOINT [\"/replica\"]\n\
CMD [\"--tcp\", \"0.0.0.0:5555\", \"--http\", \"0.0.0.0:8080\"]\n";

/// The build context: a Dockerfile and `rootfs/` holding the binary (and its libraries).
pub fn build_context(binary: &Path) -> Result<(Vec<u8>, bool, Vec<String>)> {
    let bytes = std::fs::read(binary)
        .map_err(|e| DeployError::io(format!("reading {}", binary.display()), e))?;
    let dynamic = elf_is_dynamic(&bytes)
        .map_err(|m| DeployError::Build(format!("{}: {m}", binary.display())))?;
    let libraries = if dynamic {
        let out = Command::new("ldd").arg(binary).output().map_err(|e| {
            DeployError::io(
                "running ldd (install libc-bin, or link the replica statically)",
                e,
            )
        })?;
        if !out.status.success() {
            return Err(DeployError::Build(format!(
                "ldd {} failed: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ldd(&String::from_utf8_lossy(&out.stdout))
    } else {
        Vec::new()
    };

    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, data)
            .map_err(|e| DeployError::io(format!("adding {path} to the build context"), e))
    };
    add("Dockerfile", DOCKERFILE.as_bytes(), 0o644)?;
    add("rootfs/replica", &bytes, 0o755)?;
    for lib in &libraries {
        let data = std::fs::read(lib).map_err(|e| DeployError::io(format!("reading {lib}"), e))?;
        add(&format!("rootfs{lib}"), &data, 0o755)?;
    }
    let context = tar
        .into_inner()
        .map_err(|e| DeployError::io("finishing the build context", e))?;
    Ok((context, !dynamic, libraries))
}

pub async fn build_replica_image(
    docker: &Docker,
    binary: &Path,
    tag: &str,
    say: Say<'_>,
) -> Result<BuiltImage> {
    let (context, static_binary, libraries) = build_context(binary)?;
    let context_bytes = context.len();
    say(&format!(
        "building {tag} from {} ({}; context {:.1} MiB)",
        binary.display(),
        if static_binary {
            "static binary".to_string()
        } else {
            format!("dynamic binary + {} shared libraries", libraries.len())
        },
        context_bytes as f64 / (1024.0 * 1024.0)
    ));
    let chunks: Vec<bytes::Bytes> = context
        .chunks(256 * 1024)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_stream(futures_util::stream::iter(chunks))),
    );
    let mut id = None;
    while let Some(item) = stream.next().await {
        let info = item.engine(|| format!("building image {tag}"))?;
        if let Some(detail) = info.error_detail {
            return Err(DeployError::Build(detail.message.unwrap_or_default()));
        }
        if let Some(aux) = info.aux
            && let Some(aux_id) = aux.id
        {
            id = Some(aux_id);
        }
    }
    let inspected = docker
        .inspect_image(tag)
        .await
        .engine(|| format!("inspecting the new image {tag}"))?;
    Ok(BuiltImage {
        tag: tag.to_string(),
        id: inspected.id.or(id).unwrap_or_default(),
        binary: binary.to_path_buf(),
        static_binary,
        libraries,
        context_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_yields_library_and_loader_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }

    fn synthetic_elf(p_type: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&p_type.to_le_bytes());
        elf
    }

    fn entry_names(ctx: &[u8]) -> Vec<String> {
        tar::Archive::new(ctx)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn static_binary_goes_in_alone() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("replica");
        std::fs::write(&bin, synthetic_elf(1)).unwrap();
        let (ctx, is_static, libs) = build_context(&bin).unwrap();
        assert!(is_static && libs.is_empty());
        let names = entry_names(&ctx);
        assert_eq!(names, ["Dockerfile", "rootfs/replica"]);
    }

    #[test]
    fn elf_interp_header_tells_dynamic_from_static() {
        // The test binary itself is dynamically linked (the default for the gnu target).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(elf_is_dynamic(&me).unwrap());
        assert!(elf_is_dynamic(b"#!/bin/sh\n").is_err());
        assert!(
            !elf_is_dynamic(&synthetic_elf(1)).unwrap(),
            "PT_LOAD only: static"
        );
        assert!(
            elf_is_dynamic(&synthetic_elf(3)).unwrap(),
            "PT_INTERP: dynamic"
        );
    }

    #[test]
    fn context_holds_dockerfile_and_binary() {
        let me = std::env::current_exe().unwrap();
        let (ctx, is_static, libs) = build_context(&me).unwrap();
        assert!(!is_static);
        assert!(libs.iter().any(|l| l.contains("libc.so")), "{libs:?}");
        let names = entry_names(&ctx);
        assert_eq!(names[0], "Dockerfile");
        assert_eq!(names[1], "rootfs/replica");
        assert!(
            names.iter().any(|n| n.starts_with("rootfs/lib")),
            "{names:?}"
        );
    }
}
