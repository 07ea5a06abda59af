//! Teardown that happens however the test process ends.
//!
//! Rust test binaries never run the destructors of statics, and a panic with `panic = abort`, an
//! `abort()` or a SIGKILL runs none at all. So a small `sh` child, the reaper, holds the read end
//! of a pipe whose write end only this process has (std opens pipes close-on-exec). The test
//! process tells it, one line each, what to clean up: `pid N` (a server process), `forget N` (it
//! was stopped already; its pid may be reused), `mount PATH` (unmount everything at or under
//! PATH: the kubelet bind-mounts its root dir onto itself), `run PATH` (run that teardown script:
//! a containerd node's, which finds its shims and containers, which are no children of ours, by
//! mount namespace and cgroup) and `dir PATH` (remove it). When the pipe closes, which the kernel
//! does when this process exits for any reason, the reaper sends SIGKILL to the pids (all
//! disposable), runs the scripts, unmounts, and removes the directories.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use crate::Error;

const SCRIPT: &str = r#"
trap '' INT TERM HUP PIPE
pids=''; mounts=''; dirs=''; scripts=''
while read -r kind arg; do
  case "$kind" in
    pid) pids="$pids $arg" ;;
    forget) keep=''; for p in $pids; do [ "$p" = "$arg" ] || keep="$keep $p"; done; pids=$keep ;;
    mount) mounts="$mounts $arg" ;;
    dir) dirs="$dirs $arg" ;;
    run) scripts="$scripts $arg" ;;
  esac
done
# Everything here is disposable (its data dir goes next): SIGKILL, no graceful shutdown to
# wait for. Then wait until each process is gone (or a zombie) before unmounting.
for p in $pids; do kill -KILL "$p" 2>/dev/null; done
i=0
while [ $i -lt 100 ]; do
  alive=''
  for p in $pids; do
    if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then alive=1; fi
  done
  [ -z "$alive" ] && break
  sleep 0.05; i=$((i+1))
done
# A script that ran already (a node dropped normally) deleted itself: nothing to do.
for s in $scripts; do [ -f "$s" ] && sh "$s" >/dev/null 2>&1; done
for m in $mounts; do
  awk -v p="$m" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r t; do umount "$t" 2>/dev/null || umount -l "$t" 2>/dev/null; done
done
for d in $dirs; do rm -rf "$d"; done
"#;

/// The reaper child and the write end of its pipe.
pub struct Reaper {
    child: Mutex<Child>,
    pipe: Mutex<Option<ChildStdin>>,
}

impl Reaper {
    pub fn spawn() -> Result<Reaper, Error> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C on the terminal does not stop it before it is done.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                what: "the reaper (sh)",
                source,
            })?;
        let pipe = child.stdin.take();
        Ok(Reaper {
            child: Mutex::new(child),
            pipe: Mutex::new(pipe),
        })
    }

    fn tell(&self, line: &str) -> Result<(), Error> {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        let pipe = pipe.as_mut().ok_or(Error::TornDown)?;
        pipe.write_all(line.as_bytes())
            .and_then(|()| pipe.write_all(b"\n"))
            .map_err(|source| Error::Io {
                path: "reaper pipe".into(),
                source,
            })
    }

    fn tell_path(&self, kind: &str, path: &Path) -> Result<(), Error> {
        let text = path.to_str().filter(|s| !s.contains(char::is_whitespace));
        let text = text.ok_or_else(|| Error::UnsupportedPath(path.to_path_buf()))?;
        self.tell(&format!("{kind} {text}"))
    }

    pub fn kill_at_exit(&self, pid: u32) -> Result<(), Error> {
        self.tell(&format!("pid {pid}"))
    }

    pub fn forget(&self, pid: u32) -> Result<(), Error> {
        self.tell(&format!("forget {pid}"))
    }

    pub fn unmount_at_exit(&self, path: &Path) -> Result<(), Error> {
        self.tell_path("mount", path)
    }

    /// Runs the shell script at `path` at exit (after the pids are killed, before unmounting);
    /// a script that must run once removes itself when it has run.
    pub fn run_at_exit(&self, path: &Path) -> Result<(), Error> {
        self.tell_path("run", path)
    }

    pub fn remove_at_exit(&self, path: &Path) -> Result<(), Error> {
        self.tell_path("dir", path)
    }

    /// Closes the pipe now and waits until the reaper has torn everything down.
    pub fn finish(&self) {
        drop(self.pipe.lock().unwrap_or_else(|e| e.into_inner()).take());
        let _ = self.child.lock().unwrap_or_else(|e| e.into_inner()).wait();
    }
}
