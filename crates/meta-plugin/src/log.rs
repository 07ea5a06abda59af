//! Multus' logging switches: `logFile`, `logLevel` (`panic`, `error`, `verbose`, `debug`) and
//! `logToStderr`. A CNI plugin's stdout is its result, so logs go to the file and stderr only.

use std::io::Write;
use std::path::PathBuf;

/// Where log lines go and which levels are kept.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub file: Option<PathBuf>,
    /// 0 panic, 1 error, 2 verbose, 3 debug.
    pub level: u8,
    pub stderr: bool,
}

/// Multus' level names; an unknown or empty name keeps errors.
pub fn level(name: &str) -> u8 {
    match name.to_ascii_lowercase().as_str() {
        "panic" => 0,
        "verbose" => 2,
        "debug" => 3,
        _ => 1,
    }
}

impl Log {
    fn write(&self, lvl: u8, tag: &str, msg: &str) {
        if lvl > self.level {
            return;
        }
        let line = format!("{tag} multus: {msg}\n");
        if self.stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some(f) = &self.file
            && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(f)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }

    pub fn error(&self, msg: &str) {
        self.write(1, "[error]", msg);
    }

    pub fn verbose(&self, msg: &str) {
        self.write(2, "[verbose]", msg);
    }

    pub fn debug(&self, msg: &str) {
        self.write(3, "[debug]", msg);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn levels() {
        assert_eq!(super::level("debug"), 3);
        assert_eq!(super::level("Verbose"), 2);
        assert_eq!(super::level(""), 1);
        assert_eq!(super::level("panic"), 0);
    }
}
