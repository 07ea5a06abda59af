//! IPAM delegation: exec `<CNI_PATH dir>/<ipam.type>` with our environment (only `CNI_COMMAND`
//! changed) and the original stdin bytes, as libcni's `invoke` does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};

use serde_json::Value;

use crate::error::{CniError, Result, code};

/// The one rule for turning a config value into an executable's name: a plain file name, never a
/// path. `CNI_PATH` directories are joined with it, and `Path::join` with an absolute path replaces
/// the directory while `..` walks out of it, so `"type": "/tmp/x"` or `"../../tmp/x"` would run any
/// file as root (CVE-2021-20206 in libcni). Refused: what `sriov_host::paths` refuses (empty,
/// `.`, any `/`, `..` or NUL), the workspace's one rule for names joined to a directory.
/// `field` is the config field the value came from, named in the error.
pub fn plugin_name<'a>(field: &str, value: &'a str) -> Result<&'a str> {
    if !sriov_host::paths::is_plain_file_name(value) {
        return Err(CniError::config(format!(
            "field {field:?}: invalid plugin name {value:?} (a file name in CNI_PATH is expected, not a path)"
        )));
    }
    Ok(value)
}

/// Finds the IPAM plugin binary in `CNI_PATH`. Every command (ADD, DEL, CHECK, GC, STATUS,
/// VERSION) goes through here, so the name is checked here and not only when the config is parsed:
/// DEL, GC and STATUS read `ipam.type` from configs (or caches) ADD never accepted.
pub fn find(path: &[PathBuf], plugin: &str) -> Result<PathBuf> {
    let plugin = plugin_name("ipam.type", plugin)?;
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

#[cfg(test)]
mod tests {
    use super::plugin_name;

    #[test]
    fn only_plain_file_names_are_plugin_names() {
        for ok in ["host-local", "static", "whereabouts", "dhcp", "a.b"] {
            assert_eq!(plugin_name("ipam.type", ok), Ok(ok));
        }
        for bad in ["", ".", "..", "/tmp/x", "../x", "a/b", "x/", "a..b", "nul\0"] {
            let e = plugin_name("ipam.type", bad).expect_err(bad);
            assert_eq!(e.code, 7, "{bad:?}");
            assert!(
                e.msg.contains("\"ipam.type\"") && e.msg.contains(&format!("{bad:?}")),
                "{}",
                e.msg
            );
        }
    }
}
