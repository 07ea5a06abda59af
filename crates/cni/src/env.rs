//! The `CNI_*` environment, validated per command as the CNI library's `skel` does.

use std::path::PathBuf;

use crate::config::valid_id;
use crate::error::{CniError, Result, code};

/// The CNI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            other => return Err(CniError::env(format!("CNI_COMMAND: unknown command {other:?}"))),
        })
    }
}

/// The validated environment of one invocation.
#[derive(Clone, Debug)]
pub struct CniEnv {
    pub command: Command,
    pub container_id: String,
    /// Empty when not given (allowed for DEL).
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: Vec<PathBuf>,
}

/// Checks an interface name as the kernel and skel do.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace())
}

impl CniEnv {
    /// Reads and validates the environment through `get` (tests pass a map).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<CniEnv> {
        let var = |k: &str| get(k).unwrap_or_default();
        let command = Command::parse(&var("CNI_COMMAND"))?;
        let need_ids = matches!(command, Command::Add | Command::Del | Command::Check);
        let need_netns = matches!(command, Command::Add | Command::Check);
        let need_path = !matches!(command, Command::Version);
        let mut missing = Vec::new();
        if need_ids && var("CNI_CONTAINERID").is_empty() {
            missing.push("CNI_CONTAINERID");
        }
        if need_netns && var("CNI_NETNS").is_empty() {
            missing.push("CNI_NETNS");
        }
        if need_ids && var("CNI_IFNAME").is_empty() {
            missing.push("CNI_IFNAME");
        }
        if need_path && var("CNI_PATH").is_empty() {
            missing.push("CNI_PATH");
        }
        if !missing.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("required env variables {missing:?} missing"),
            ));
        }
        let container_id = var("CNI_CONTAINERID");
        if need_ids && !valid_id(&container_id) {
            return Err(CniError::env(format!(
                "CNI_CONTAINERID: invalid container id {container_id:?}: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
            )));
        }
        let ifname = var("CNI_IFNAME");
        if need_ids && !valid_ifname(&ifname) {
            return Err(CniError::env(format!(
                "CNI_IFNAME: invalid interface name {ifname:?}: 1-15 bytes, no '/', ':' or whitespace"
            )));
        }
        let path = var("CNI_PATH")
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(CniEnv {
            command,
            container_id,
            netns: var("CNI_NETNS"),
            ifname,
            args: var("CNI_ARGS"),
            path,
        })
    }

    /// The cache key `<containerID>-<ifname>` (upstream's file name).
    pub fn cache_key(&self) -> String {
        format!("{}-{}", self.container_id, self.ifname)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn add_needs_everything() {
        let e = env(&[("CNI_COMMAND", "ADD")]).unwrap_err();
        assert_eq!(e.code, 4);
        assert!(
            e.msg.contains("CNI_CONTAINERID") && e.msg.contains("CNI_NETNS") && e.msg.contains("CNI_PATH"),
            "{e}"
        );
    }

    #[test]
    fn del_allows_empty_netns() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "net1"),
            ("CNI_PATH", "/x"),
        ]);
        assert_eq!(e.unwrap().netns, "");
    }

    #[test]
    fn bad_ifname_and_id() {
        let base = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_PATH", "/x"),
        ];
        for (id, ifn, field) in [
            ("c1", "a/b", "CNI_IFNAME"),
            ("c1", "0123456789abcdef", "CNI_IFNAME"),
            ("-c", "net1", "CNI_CONTAINERID"),
        ] {
            let mut v = base.to_vec();
            v.push(("CNI_CONTAINERID", id));
            v.push(("CNI_IFNAME", ifn));
            let e = env(&v).unwrap_err();
            assert_eq!(e.code, 4);
            assert!(e.msg.starts_with(field), "{e}");
        }
    }

    #[test]
    fn unknown_command() {
        assert_eq!(env(&[("CNI_COMMAND", "FOO")]).unwrap_err().code, 4);
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
    }
}
