//! Real-kernel fixture: veth ends stand in for VF netdevs, a fake sysfs tree says they are VFs
//! of a PF, a JSON file plays the PF's VF table, and pods are network namespaces. Everything has
//! a unique name and is removed on drop. Needs root (skipped outside CI, a failure under `CI=true`).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

static SERIAL: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Serializes kernel tests (they share the host netns).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Root (netns, veth): the workspace's one rule, skip outside CI and fail under `CI=true`.
#[macro_export]
macro_rules! need_root {
    () => {
        sriov_test_support::require_root!()
    };
}

pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().expect("spawn")
}

pub fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One link as `ip -j link show` reports it, `None` when absent.
pub fn link(netns: Option<&str>, name: &str) -> Option<Value> {
    let mut a = vec!["ip"];
    if let Some(n) = netns {
        a.extend(["-n", n]);
    }
    a.extend(["-j", "link", "show", "dev", name]);
    let o = sh(&a);
    if !o.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&o.stdout).ok()?;
    v.get(0).cloned()
}

pub fn addrs(netns: &str, name: &str) -> Vec<String> {
    let v: Value =
        serde_json::from_str(&ok(&["ip", "-n", netns, "-j", "addr", "show", "dev", name])).unwrap();
    v[0]["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["scope"] != "link")
                .map(|x| format!("{}/{}", x["local"].as_str().unwrap_or(""), x["prefixlen"]))
                .collect()
        })
        .unwrap_or_default()
}

pub const PF: &str = "0000:00:1f.0";

/// A VF stand-in.
pub struct Vf {
    pub pci: String,
    pub index: u32,
    /// Host-side netdev name (None in DPDK mode).
    pub netdev: Option<String>,
    pub mac: String,
}

/// The fixture.
pub struct Fixture {
    pub id: String,
    pub dir: tempfile::TempDir,
    /// On tmpfs when there is one: the fake PF stands in for a kernel object, which costs no
    /// disk I/O (on ext4 its rewrites would be flushed each time and bill that to the plugin).
    pub shm: tempfile::TempDir,
    pub pf_name: String,
    pub vfs: Vec<Vf>,
    pub netns: Vec<String>,
    pub wire: String,
}

impl Fixture {
    /// `kernel` veth-backed VFs plus `dpdk` vfio-pci VFs.
    pub fn new(kernel: u32, dpdk: u32) -> Fixture {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{}", std::process::id() % 100000, n);
        let dir = tempfile::tempdir().unwrap();
        let wire = format!("sct{id}w");
        ok(&["ip", "netns", "add", &wire]);
        let pf_name = format!("sct{id}pf");
        let shm = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let mut f = Fixture {
            id: id.clone(),
            dir,
            shm,
            pf_name,
            vfs: Vec::new(),
            netns: vec![wire.clone()],
            wire,
        };
        let root = f.sysfs();
        let devs = root.join("bus/pci/devices");
        fs::create_dir_all(devs.join(PF).join("net").join(&f.pf_name)).unwrap();
        fs::create_dir_all(root.join("bus/pci/drivers/vfio-pci")).unwrap();
        fs::create_dir_all(root.join("bus/pci/drivers/igbvf")).unwrap();
        let mut pf_vfs = BTreeMap::new();
        for i in 0..kernel + dpdk {
            let pci = format!("0000:00:1f.{}", i + 1);
            let d = devs.join(&pci);
            fs::create_dir_all(&d).unwrap();
            symlink(format!("../{PF}"), d.join("physfn")).unwrap();
            symlink(format!("../{pci}"), devs.join(PF).join(format!("virtfn{i}"))).unwrap();
            let (netdev, mac) = if i < kernel {
                let name = format!("sct{id}v{i}");
                let peer = format!("sct{id}p{i}");
                ok(&[
                    "ip", "link", "add", &name, "type", "veth", "peer", "name", &peer, "netns", &f.wire,
                ]);
                ok(&["ip", "-n", &f.wire, "link", "set", &peer, "up"]);
                fs::create_dir_all(d.join("net").join(&name)).unwrap();
                symlink("../../drivers/igbvf", d.join("driver")).unwrap();
                let mac = link(None, &name).unwrap()["address"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (Some(name), mac)
            } else {
                symlink("../../drivers/vfio-pci", d.join("driver")).unwrap();
                (None, String::new())
            };
            // The fake PF reports each VF's own MAC, spoofchk on (igb's defaults).
            pf_vfs.insert(
                format!("{}/{i}", f.pf_name),
                json!({"mac": if mac.is_empty() { "00:00:00:00:00:00".to_string() } else { mac.clone() }, "spoofchk": true, "vlan_proto": 33024}),
            );
            f.vfs.push(Vf {
                pci,
                index: i,
                netdev,
                mac,
            });
        }
        fs::write(
            f.pf_file(),
            serde_json::to_vec_pretty(&json!({"vfs": pf_vfs})).unwrap(),
        )
        .unwrap();
        // Bridge the wire side so two pods can talk through it.
        let br = format!("sct{id}br");
        ok(&["ip", "-n", &f.wire, "link", "add", &br, "type", "bridge"]);
        ok(&["ip", "-n", &f.wire, "link", "set", &br, "up"]);
        for i in 0..kernel {
            ok(&[
                "ip",
                "-n",
                &f.wire,
                "link",
                "set",
                &format!("sct{id}p{i}"),
                "master",
                &br,
            ]);
        }
        fs::create_dir_all(f.state()).unwrap();
        f
    }

    pub fn sysfs(&self) -> PathBuf {
        self.dir.path().join("sys")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn pf_file(&self) -> PathBuf {
        self.shm.path().join("pf.json")
    }
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// A new pod netns; returns its name (path is /run/netns/<name>).
    pub fn pod(&mut self) -> String {
        let name = format!("sct{}n{}", self.id, self.netns.len());
        ok(&["ip", "netns", "add", &name]);
        self.netns.push(name.clone());
        name
    }

    pub fn pf_state(&self) -> Value {
        serde_json::from_slice(&fs::read(self.pf_file()).unwrap()).unwrap()
    }
    pub fn vf_pf_state(&self, i: u32) -> Value {
        self.pf_state()["vfs"][format!("{}/{i}", self.pf_name)].clone()
    }
    pub fn set_refuse(&self, fields: &[&str]) {
        let mut v = self.pf_state();
        v["refuse"] = json!(fields);
        fs::write(self.pf_file(), serde_json::to_vec(&v).unwrap()).unwrap();
    }

    /// A network config for VF `i`.
    pub fn conf(&self, i: u32, version: &str, extra: Value) -> Value {
        let mut c = json!({"cniVersion": version, "name": format!("net{}", self.id), "type": "sriov",
                           "deviceID": self.vfs[i as usize].pci});
        if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        c
    }

    pub fn host_local(&self, subnet: &str) -> Value {
        json!({"type": "host-local", "subnet": subnet, "dataDir": self.ipam_dir()})
    }

    /// Runs the plugin binary.
    pub fn run(
        &self,
        cmd: &str,
        container: &str,
        netns: Option<&str>,
        ifname: &str,
        conf: &Value,
        extra_env: &[(&str, &str)],
    ) -> Run {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sriov"));
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", container)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", "/usr/lib/cni")
            .env("SRIOV_SYSFS_ROOT", self.sysfs())
            .env("SRIOV_CNI_STATE_DIR", self.state())
            .env("SRIOV_CNI_FAKE_PF", self.pf_file());
        if let Some(n) = netns {
            c.env(
                "CNI_NETNS",
                if n.starts_with('/') {
                    n.to_string()
                } else {
                    format!("/run/netns/{n}")
                },
            );
        }
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut i = child.stdin.take().unwrap();
            let _ = i.write_all(conf.to_string().as_bytes());
        }
        let o = child.wait_with_output().unwrap();
        let out: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        Run {
            code: o.status.code(),
            out,
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    pub fn cache_files(&self) -> Vec<String> {
        fs::read_dir(self.state())
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into())
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn allocated(&self, i: u32) -> bool {
        self.state().join("pci").join(&self.vfs[i as usize].pci).exists()
    }
    pub fn ipam_leases(&self) -> usize {
        walk(&self.ipam_dir())
            .into_iter()
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().contains('.') && !n.to_string_lossy().starts_with("last_reserved")
                })
            })
            .count()
    }

    /// Asserts VF `i` is exactly as before: host netdev name, MAC, MTU, down; PF state original.
    pub fn assert_original(&self, i: u32) {
        let vf = &self.vfs[i as usize];
        if let Some(n) = &vf.netdev {
            let l = link(None, n).unwrap_or_else(|| panic!("{n} is not back in the host netns"));
            assert_eq!(l["address"], vf.mac.as_str(), "{n} MAC");
            assert_eq!(l["mtu"], 1500, "{n} MTU");
        }
        let want = json!({"mac": if vf.mac.is_empty() { "00:00:00:00:00:00" } else { &vf.mac }, "spoofchk": true, "vlan_proto": 33024});
        let got = self.vf_pf_state(i);
        for (k, v) in got.as_object().unwrap() {
            let w = want.get(k).cloned().unwrap_or_else(|| match v {
                Value::Bool(_) => json!(false),
                Value::String(_) => json!(""),
                _ => json!(0),
            });
            // A cleared admin MAC (all zeros) is how a random VF MAC is restored.
            if k == "mac" && v == "00:00:00:00:00:00" {
                continue;
            }
            assert_eq!(v, &w, "PF field {k} of VF {i}: {got}");
        }
        assert!(!self.allocated(i), "allocation file of VF {i} left behind");
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for v in &self.vfs {
            if let Some(n) = &v.netdev {
                let _ = sh(&["ip", "link", "del", n]);
            }
        }
        for n in &self.netns {
            let _ = sh(&["ip", "netns", "del", n]);
        }
    }
}

/// One plugin run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub out: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Value {
        assert_eq!(
            self.code,
            Some(0),
            "plugin failed: {} {}",
            self.stdout,
            self.stderr
        );
        &self.out
    }
    pub fn err(&self) -> (u64, String) {
        assert_eq!(
            self.code,
            Some(1),
            "expected a CNI error, got {:?}: {} {}",
            self.code,
            self.stdout,
            self.stderr
        );
        (
            self.out["code"].as_u64().unwrap_or(0),
            self.out["msg"].as_str().unwrap_or("").to_string(),
        )
    }
}
