//! CNI configs on disk: `clusterNetwork`/`defaultNetworks` given as a file or directory, a
//! network name looked up in `confDir`, and a NAD whose `spec.config` is empty (its config is
//! the file in `confDir` with the NAD's name), as libcni and Multus find them.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `dir`'s config files with the given extensions, sorted by name (libcni's `ConfFiles`).
fn conf_files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| exts.contains(&e))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// The config in `dir` whose `name` is `name` (any config when `name` is empty).
pub fn by_name(dir: &Path, name: &str) -> Result<Value, String> {
    for f in conf_files(dir, &["conf", "json", "conflist"]) {
        let v = read_json(&f)?;
        if name.is_empty() || v.get("name").and_then(Value::as_str) == Some(name) {
            return Ok(v);
        }
    }
    Err(format!("no CNI config named {name:?} in {}", dir.display()))
}

/// A path as `clusterNetwork` names it: a directory (its first config) or a file.
pub fn by_path(path: &Path) -> Result<Value, String> {
    if path.is_dir() {
        let first = conf_files(path, &["conf", "conflist"]);
        let f = first
            .first()
            .ok_or_else(|| format!("no .conf or .conflist file in {}", path.display()))?;
        read_json(f)
    } else {
        read_json(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_configs_by_name_and_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("20-b.conf"), r#"{"name":"b","type":"bridge"}"#).unwrap();
        std::fs::write(d.path().join("10-a.conflist"), r#"{"name":"a","plugins":[]}"#).unwrap();
        std::fs::write(d.path().join("x.txt"), "junk").unwrap();
        assert_eq!(by_name(d.path(), "b").unwrap()["type"], "bridge");
        assert_eq!(by_path(d.path()).unwrap()["name"], "a", "the first by name");
        assert_eq!(by_path(&d.path().join("20-b.conf")).unwrap()["name"], "b");
        assert!(
            by_name(d.path(), "c")
                .unwrap_err()
                .contains("no CNI config named \"c\"")
        );
    }
}
