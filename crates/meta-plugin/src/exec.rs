//! Running one CNI plugin binary the way a runtime does: found in the bin dirs, the `CNI_*`
//! environment set, the config on stdin, the result (or error object) on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one plugin call is about.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
}

/// A plugin that could not be run or answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("CNI plugin {plugin:?} not found in {dirs}")]
    NotFound { plugin: String, dirs: String },
    #[error("cannot run CNI plugin {}: {source}", path.display())]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error("{plugin} {command} failed (code {code}): {msg}{}", if details.is_empty() { String::new() } else { format!("; {details}") })]
    Failed {
        plugin: String,
        command: String,
        code: u64,
        msg: String,
        details: String,
    },
    #[error("{plugin} {command} printed no valid result: {text:?}")]
    BadOutput {
        plugin: String,
        command: String,
        text: String,
    },
}

/// The first `dirs` entry holding an executable named `plugin`.
pub fn find(dirs: &[PathBuf], plugin: &str) -> Result<PathBuf, PluginError> {
    if !plugin.contains('/') {
        for d in dirs {
            let p = d.join(plugin);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(PluginError::NotFound {
        plugin: plugin.to_string(),
        dirs: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    })
}

fn failure(plugin: &str, command: &str, stdout: &str, stderr: &str, status: String) -> PluginError {
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let msg = match text("msg") {
        m if !m.is_empty() => m,
        _ => format!("{status}; stdout {:?}; stderr {:?}", stdout.trim(), stderr.trim()),
    };
    PluginError::Failed {
        plugin: plugin.to_string(),
        command: command.to_string(),
        code: v["code"].as_u64().unwrap_or(999),
        msg,
        details: text("details"),
    }
}

/// Runs plugin `plugin` (the config's `type`) with `call`; `cni_path` is the `CNI_PATH` it gets
/// (for its IPAM plugin). Returns the parsed stdout (`None` when empty, as after DEL).
pub fn run(
    dirs: &[PathBuf],
    cni_path: &str,
    plugin: &str,
    call: &Call,
    stdin: &Value,
) -> Result<Option<Value>, PluginError> {
    let path = find(dirs, plugin)?;
    let spawn_err = |source| PluginError::Spawn {
        path: path.clone(),
        source,
    };
    let mut child = Command::new(&path)
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", cni_path)
        .current_dir(Path::new("/"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits before reading its config reports why on stdout.
        let _ = input.write_all(stdin.to_string().as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(failure(
            plugin,
            call.command,
            &stdout,
            &stderr,
            out.status.to_string(),
        ));
    }
    if stdout.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(stdout.trim())
        .map(Some)
        .map_err(|_| PluginError::BadOutput {
            plugin: plugin.to_string(),
            command: call.command.to_string(),
            text: stdout.into_owned(),
        })
}
