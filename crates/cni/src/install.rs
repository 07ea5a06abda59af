//! The CNI image's installer mode: `sriov --no-sleep [--cni-bin-dir=DIR]` copies this binary into
//! the host's CNI bin dir, as upstream's image entrypoint script does for the config daemon's
//! `sriov-cni` init container (no command, `args: [--no-sleep]`, the host dir mounted at
//! `/host/opt/cni/bin`).
//!
//! Why a mode of the plugin binary and not a script or a second binary: the image is one static
//! binary on an empty base (no shell, no `cp`), and the plugin is the very file to copy, so the
//! image stays one layer of one file. A CNI runtime always sets `CNI_COMMAND`; the installer runs
//! only without it and with one of its flags, so no plugin invocation can take this path.

use std::path::{Path, PathBuf};

/// Where upstream's entrypoint copies the plugins: the host's CNI bin dir mounted into the
/// init container.
pub const DEFAULT_BIN_DIR: &str = "/host/opt/cni/bin";

/// What the installer was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub bin_dir: PathBuf,
    /// The name the plugin gets in `bin_dir` (upstream: `sriov`).
    pub file_name: String,
    /// `--no-sleep`: exit once copied (init container); otherwise stay up (a DaemonSet container).
    pub sleep: bool,
}

/// The installer's arguments (upstream's entrypoint: `--cni-bin-dir=`, `--sriov-bin-file=`,
/// `--no-sleep`), or `None` when this is not an installer run: `CNI_COMMAND` is set, or no
/// argument is an installer flag.
pub fn parse(cni_command_set: bool, args: &[String]) -> Option<Result<Install, String>> {
    if cni_command_set || !args.iter().any(|a| a.starts_with("--")) {
        return None;
    }
    let mut install = Install {
        bin_dir: PathBuf::from(DEFAULT_BIN_DIR),
        file_name: "sriov".into(),
        sleep: true,
    };
    for a in args {
        if a == "--no-sleep" {
            install.sleep = false;
        } else if let Some(d) = a.strip_prefix("--cni-bin-dir=") {
            install.bin_dir = PathBuf::from(d);
        } else if let Some(f) = a.strip_prefix("--sriov-bin-file=") {
            match Path::new(f).file_name().and_then(|n| n.to_str()) {
                Some(n) => install.file_name = n.to_string(),
                None => return Some(Err(format!("--sriov-bin-file={f}: no file name"))),
            }
        } else {
            return Some(Err(format!(
                "unknown installer argument {a:?} (known: --no-sleep, --cni-bin-dir=DIR, --sriov-bin-file=FILE)"
            )));
        }
    }
    Some(Ok(install))
}

/// Copies `from` to `<bin_dir>/<file_name>` through a temporary file and a rename, so a runtime
/// executing the plugin meanwhile never sees half a binary.
pub fn copy_plugin(from: &Path, install: &Install) -> std::io::Result<PathBuf> {
    let dest = install.bin_dir.join(&install.file_name);
    let tmp = install.bin_dir.join(format!(".{}.tmp", install.file_name));
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plugin_runs_are_never_installer_runs() {
        assert_eq!(parse(true, &args(&["--no-sleep"])), None);
        assert_eq!(parse(false, &args(&[])), None);
    }

    #[test]
    fn upstream_init_container_args_copy_to_the_mounted_host_dir_and_exit() {
        let i = parse(false, &args(&["--no-sleep"])).unwrap().unwrap();
        assert_eq!(i.bin_dir, PathBuf::from(DEFAULT_BIN_DIR));
        assert_eq!(i.file_name, "sriov");
        assert!(!i.sleep);
        let i = parse(false, &args(&["--cni-bin-dir=/x", "--sriov-bin-file=/usr/bin/y"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (i.bin_dir, i.file_name.as_str(), i.sleep),
            (PathBuf::from("/x"), "y", true)
        );
    }

    #[test]
    fn unknown_flags_are_refused_by_name() {
        let e = parse(false, &args(&["--bogus"])).unwrap().unwrap_err();
        assert!(e.contains("--bogus"), "{e}");
    }

    #[test]
    fn copy_replaces_the_plugin_whole() {
        let dir = std::env::temp_dir().join(format!("sriov-install-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src");
        std::fs::write(&src, b"new").unwrap();
        std::fs::write(dir.join("sriov"), b"old").unwrap();
        let i = Install {
            bin_dir: dir.clone(),
            file_name: "sriov".into(),
            sleep: false,
        };
        let dest = copy_plugin(&src, &i).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(!dir.join(".sriov.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
