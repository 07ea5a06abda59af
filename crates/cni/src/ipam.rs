//! IPAM delegation: exec `<CNI_PATH dir>/<ipam.type>` with our environment (only `CNI_COMMAND`
//! changed) and the original stdin bytes, as libcni's `invoke` does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};

use serde_json::Value;

use crate::error::{CniError, Result, code};

/// Finds the plugin binary in `CNI_PATH`.
pub fn find(path: &[PathBuf], plugin: &str) -> Result<PathBuf> {
    path.iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::internal(format!(
                "failed to find IPAM plugin {plugin:?} in CNI_PATH {path:?}"
            ))
        })
}

/// Runs the delegate; returns its stdout on success, its error result (code kept) on failure.
pub fn exec(path: &[PathBuf], plugin: &str, command: &str, stdin: &[u8]) -> Result<Vec<u8>> {
    let bin = find(path, plugin)?;
    run(&bin, command, stdin)
}

fn run(bin: &Path, command: &str, stdin: &[u8]) -> Result<Vec<u8>> {
    let mut child = Proc::new(bin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CniError::internal(format!("running IPAM plugin {}: {e}", bin.display())))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::internal(format!("waiting for IPAM plugin {}: {e}", bin.display())))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(v) if v.get("code").is_some() => {
            let c = v
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(code::INTERNAL);
            let msg = v.get("msg").and_then(Value::as_str).unwrap_or_default();
            let details = v.get("details").and_then(Value::as_str).unwrap_or_default();
            Err(CniError::new(c, format!("IPAM plugin {name} {command}: {msg}")).with_details(details))
        }
        _ => Err(CniError::internal(format!(
            "IPAM plugin {name} {command} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        ))),
    }
}
