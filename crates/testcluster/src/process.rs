//! One server process: spawned with its output in a log file, watched for an early exit, and
//! stopped (SIGTERM, then SIGKILL) on request.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;
use crate::reaper::Reaper;

/// A running server; its log is `<logs>/<name>.log`.
pub struct Server {
    pub name: &'static str,
    pub log: PathBuf,
    child: Child,
}

impl Server {
    /// Spawns `cmd` with stdout and stderr appended to `log`, and registers it with the reaper.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        log: PathBuf,
        reaper: &Reaper,
    ) -> Result<Server, Error> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| Error::Io {
                path: log.clone(),
                source,
            })?;
        let err = file.try_clone().map_err(|source| Error::Io {
            path: log.clone(),
            source,
        })?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .map_err(|source| Error::Spawn { what: name, source })?;
        reaper.kill_at_exit(child.id())?;
        Ok(Server { name, log, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` when the process has exited (with the end of its log).
    pub fn check_running(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Exited {
                what: self.name,
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log),
            }),
            Err(source) => Err(Error::Io {
                path: self.log.clone(),
                source,
            }),
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; reaps it and tells the reaper to forget it.
    pub fn stop(&mut self, grace: Duration, reaper: &Reaper) {
        if let Ok(None) = self.child.try_wait() {
            let pid = Pid::from_raw(self.child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = reaper.forget(self.child.id());
    }
}

/// The last 40 lines of a log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: "127.0.0.1:0".into(),
            source,
        })
}
