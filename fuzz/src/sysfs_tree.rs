//! A fixture sysfs tree (sriov-host's `FixtureHost`, on tmpfs) that a fuzz input corrupts and
//! that is put back exactly after each run, so that every run starts from the same tree.
//!
//! Input format, repeated up to [`MAX_EDITS`] times: `entry: u16 LE` (index into the sorted
//! list of every entry under `sys/`, modulo its length), `op: u8`, `len: u8`, then `len` bytes
//! of argument. The replaced entry is moved aside (one `rename` on tmpfs, cheap) and moved back.
//! Symlinks made here only ever point inside the tree or nowhere: a real sysfs has no link to
//! `/dev/zero` or a FIFO, and following one would only test the fixture.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use sriov_host::SysfsRoot;
use sriov_host::fixture::{Fixture, FixtureHost};

/// At most this many edits per input.
pub const MAX_EDITS: usize = 8;

pub struct CorruptibleTree {
    fixture: Fixture,
    /// Every entry (file, directory, symlink) under `sys/`, sorted.
    entries: Vec<PathBuf>,
    /// Where replaced entries wait, outside `sys/`.
    aside: PathBuf,
    /// (entry, where its original is), in the order the edits were made.
    undo: Vec<(PathBuf, PathBuf)>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        out.push(p.clone());
        if is_dir {
            walk(&p, out);
        }
    }
}

/// `to` relative to the directory `from_dir` (both absolute), as sysfs spells its links.
fn relative(from_dir: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component> = from_dir.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    out
}

fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).expect("remove an edit (directory)"),
        Ok(_) => fs::remove_file(path).expect("remove an edit"),
        Err(_) => {}
    }
}

impl CorruptibleTree {
    /// An igb 82576 with 2 VFs (and the lab's NVMe) and a ConnectX in InfiniBand mode with 1 VF.
    pub fn build() -> CorruptibleTree {
        let dir = crate::scratch_dir("sysfs");
        let fixture = FixtureHost::new(dir.join("host"))
            .igb_82576(2)
            .mlx_ib_pf(1)
            .build()
            .expect("build the fixture tree");
        let aside = dir.join("aside");
        fs::create_dir_all(&aside).expect("create the aside directory");
        let mut entries = Vec::new();
        walk(fixture.sys(), &mut entries);
        entries.sort();
        assert!(!entries.is_empty(), "an empty fixture tree");
        CorruptibleTree {
            fixture,
            entries,
            aside,
            undo: Vec::new(),
        }
    }

    pub fn root(&self) -> &SysfsRoot {
        self.fixture.root()
    }

    /// Applies the edits `data` describes.
    pub fn corrupt(&mut self, data: &[u8]) {
        let mut bytes = data;
        while self.undo.len() < MAX_EDITS {
            let [lo, hi, op, len, rest @ ..] = bytes else {
                break;
            };
            let (arg, tail) = rest.split_at(usize::from(*len).min(rest.len()));
            bytes = tail;
            let entry = &self.entries[usize::from(u16::from_le_bytes([*lo, *hi])) % self.entries.len()];
            self.edit(&entry.clone(), *op, arg);
        }
    }

    fn edit(&mut self, path: &Path, op: u8, arg: &[u8]) {
        // Gone already (under a directory an earlier edit replaced): nothing to edit.
        if fs::symlink_metadata(path).is_err() {
            return;
        }
        let saved = self.aside.join(self.undo.len().to_string());
        if fs::rename(path, &saved).is_err() {
            return;
        }
        self.undo.push((path.to_path_buf(), saved.clone()));
        let parent = path.parent().unwrap_or(Path::new("/"));
        let made = match op % 7 {
            // Garbage content.
            0 => fs::write(path, arg),
            // The original content cut at `arg[0]`, the rest of `arg` after it ("7" -> "70000").
            1 => {
                let mut content = fs::read(&saved).unwrap_or_default();
                let (cut, more) = arg.split_first().map_or((0, &[][..]), |(c, m)| (*c, m));
                content.truncate(usize::from(cut));
                content.extend_from_slice(more);
                fs::write(path, content)
            }
            // A directory where a file or link was (or an empty one where a directory was).
            2 => fs::create_dir(path),
            // Gone.
            3 => Ok(()),
            // A dangling link.
            4 => {
                let name: String = arg
                    .iter()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .map(|b| char::from(*b))
                    .collect();
                symlink(format!("missing-{name}"), path)
            }
            // A link to itself (ELOOP).
            5 => symlink(path.file_name().unwrap_or_default(), path),
            // A link to another entry of the tree.
            _ => {
                let i = arg.iter().fold(0usize, |acc, b| {
                    acc.wrapping_mul(31).wrapping_add(usize::from(*b))
                });
                let target = &self.entries[i % self.entries.len()];
                symlink(relative(parent, target), path)
            }
        };
        // An edit that could not be made leaves the entry missing, which is an edit too.
        let _ = made;
    }

    /// Puts every edited entry back, last edit first.
    pub fn restore(&mut self) {
        while let Some((path, saved)) = self.undo.pop() {
            remove_any(&path);
            fs::rename(&saved, &path).expect("put an entry back");
        }
    }
}

impl Drop for CorruptibleTree {
    fn drop(&mut self) {
        self.restore();
        if let Some(dir) = self.aside.parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}
