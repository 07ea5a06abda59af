//! On-disk state, compatible with upstream: the cache `<dir>/<containerID>-<ifname>` (a JSON
//! object with the network config plus `MAC`, `MTU`, `Master`, `VFID`, `OrigVfState`), the
//! allocation file `<dir>/pci/<deviceID>` (the owning netns path) and the per-VF lock
//! `<dir>/pci/vf_lock/<deviceID>.lock`. Unlike upstream, the cache is written **before** the VF is
//! touched, so a killed ADD can always be undone by DEL; and `DPDKMode` is persisted.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::pci::PciAddress;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Mac, lookup};
use crate::error::{CniError, Result, code};
use crate::plan::VfState;

/// Upstream's default state directory.
pub const DEFAULT_DIR: &str = "/var/lib/cni/sriov";

/// The original VF state, field names as upstream writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrigVfState {
    #[serde(rename = "AdminMAC")]
    pub admin_mac: String,
    #[serde(rename = "EffectiveMAC")]
    pub effective_mac: String,
    #[serde(rename = "HostIFName")]
    pub host_ifname: String,
    #[serde(rename = "LinkState")]
    pub link_state: u32,
    #[serde(rename = "MTU")]
    pub mtu: u32,
    #[serde(rename = "MaxTxRate")]
    pub max_tx_rate: u32,
    #[serde(rename = "MinTxRate")]
    pub min_tx_rate: u32,
    #[serde(rename = "SpoofChk")]
    pub spoofchk: bool,
    #[serde(rename = "Trust")]
    pub trust: bool,
    #[serde(rename = "Vlan")]
    pub vlan: u16,
    #[serde(rename = "VlanProto")]
    pub vlan_proto: u16,
    #[serde(rename = "VlanQoS")]
    pub vlan_qos: u8,
}

impl OrigVfState {
    pub fn from_pf(s: &VfState) -> Self {
        OrigVfState {
            admin_mac: s.admin_mac.to_string(),
            link_state: s.link_state,
            max_tx_rate: s.max_tx_rate,
            min_tx_rate: s.min_tx_rate,
            spoofchk: s.spoofchk,
            trust: s.trust,
            vlan: s.vlan,
            vlan_proto: s.vlan_proto,
            vlan_qos: s.qos,
            ..Default::default()
        }
    }
    pub fn vf_state(&self) -> VfState {
        VfState {
            admin_mac: self.admin_mac.parse().unwrap_or_default(),
            vlan: self.vlan,
            qos: self.vlan_qos,
            vlan_proto: self.vlan_proto,
            spoofchk: self.spoofchk,
            trust: self.trust,
            link_state: self.link_state,
            min_tx_rate: self.min_tx_rate,
            max_tx_rate: self.max_tx_rate,
        }
    }
}

/// One cache entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Cache {
    /// The network config as given (top-level keys), `ipam` reduced to its `type`.
    pub conf: Map<String, Value>,
    pub device_id: String,
    /// `MAC`: the MAC given to the VF ("" = none).
    pub mac: String,
    pub mtu: u32,
    /// `Master`: the PF netdev.
    pub master: String,
    pub vf_id: u32,
    pub orig: OrigVfState,
    /// `DPDKMode` (ours; absent in upstream caches: re-detected from the driver).
    pub dpdk: Option<bool>,
    /// `Netns` (ours): the pod netns path ADD used.
    pub netns: String,
    /// `HostIfIndex` (ours): the VF netdev's ifindex before ADD, to find it after a failed rename.
    pub host_ifindex: u32,
    /// `IfName` (ours): `CNI_IFNAME` of the attachment.
    pub ifname: Option<String>,
}

const OURS: &[&str] = &[
    "MAC",
    "MTU",
    "Master",
    "VFID",
    "OrigVfState",
    "DPDKMode",
    "Netns",
    "HostIfIndex",
    "IfName",
];

impl Cache {
    pub fn to_json(&self) -> Vec<u8> {
        let mut m: BTreeMap<String, Value> = self.conf.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        m.insert("deviceID".into(), self.device_id.clone().into());
        m.insert("MAC".into(), self.mac.clone().into());
        m.insert("MTU".into(), self.mtu.into());
        m.insert("Master".into(), self.master.clone().into());
        m.insert("VFID".into(), self.vf_id.into());
        m.insert(
            "OrigVfState".into(),
            serde_json::to_value(&self.orig).unwrap_or(Value::Null),
        );
        if let Some(d) = self.dpdk {
            m.insert("DPDKMode".into(), d.into());
        }
        m.insert("Netns".into(), self.netns.clone().into());
        m.insert("HostIfIndex".into(), self.host_ifindex.into());
        if let Some(i) = &self.ifname {
            m.insert("IfName".into(), i.clone().into());
        }
        serde_json::to_vec(&m).unwrap_or_default()
    }

    /// Reads a cache written by us or by upstream.
    pub fn from_json(b: &[u8]) -> Option<Cache> {
        let Value::Object(mut m) = serde_json::from_slice(b).ok()? else {
            return None;
        };
        let s = |m: &Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
        };
        let n = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
        let c = Cache {
            device_id: lookup(&m, "deviceID")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            mac: s(&m, "MAC"),
            mtu: u32::try_from(n(&m, "MTU")).unwrap_or(0),
            master: s(&m, "Master"),
            vf_id: u32::try_from(n(&m, "VFID")).unwrap_or(0),
            orig: m
                .get("OrigVfState")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            dpdk: m.get("DPDKMode").and_then(Value::as_bool),
            netns: s(&m, "Netns"),
            host_ifindex: u32::try_from(n(&m, "HostIfIndex")).unwrap_or(0),
            ifname: m.get("IfName").and_then(Value::as_str).map(String::from),
            conf: Map::new(),
        };
        for k in OURS {
            m.remove(*k);
        }
        Some(Cache { conf: m, ..c })
    }

    /// The PF-side attributes ADD may have set, from the cached config (lenient: an upstream
    /// cache with `spoofchk: "true"` still counts as "spoofchk was set").
    pub fn applied_fields(&self) -> Vec<&'static str> {
        let c = &self.conf;
        let set = |k: &str| match lookup(c, k) {
            None => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        let mut v = Vec::new();
        if set("vlan") {
            v.push("vlan");
        }
        if !self.mac.is_empty() {
            v.push("mac");
        }
        if set("min_tx_rate") || set("max_tx_rate") {
            v.push("rate");
        }
        for f in ["spoofchk", "trust", "link_state"] {
            if set(f) {
                v.push(f);
            }
        }
        v
    }

    /// The VF netdev's MAC before ADD.
    pub fn effective_mac(&self) -> Option<Mac> {
        self.orig.effective_mac.parse().ok()
    }

    pub fn ipam_type(&self) -> String {
        lookup(&self.conf, "ipam")
            .and_then(|i| i.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    pub dir: PathBuf,
}

fn io_err(what: &str, p: &std::path::Path, e: &io::Error) -> CniError {
    CniError::new(code::IO, format!("{what} {}: {e}", p.display()))
}

/// Held while the VF's lock file is locked.
pub struct VfLock(#[allow(dead_code)] Flock<File>);

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateDir { dir: dir.into() }
    }

    fn mkdir(&self, p: &std::path::Path) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
            .map_err(|e| io_err("creating", p, &e))
    }

    fn write_atomic(&self, path: PathBuf, data: &[u8]) -> Result<()> {
        if let Some(parent) = path.parent() {
            self.mkdir(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err("writing", &tmp, &e))?;
        f.write_all(data).map_err(|e| io_err("writing", &tmp, &e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("renaming into", &path, &e))
    }

    /// `<state>/<key>`; a key that is not a plain file name (`sriov_host::paths`) is refused, so
    /// no container id or interface name can point the cache anywhere else.
    pub fn cache_path(&self, key: &str) -> Result<PathBuf> {
        sriov_host::paths::file_in(&self.dir, key).map_err(|e| CniError::internal(format!("cache file: {e}")))
    }

    pub fn write_cache(&self, key: &str, c: &Cache) -> Result<()> {
        self.write_atomic(self.cache_path(key)?, &c.to_json())
    }

    /// `None` when missing, unparsable (as upstream: DEL then succeeds) or not a plain file name.
    pub fn read_cache(&self, key: &str) -> Option<Cache> {
        fs::read(self.cache_path(key).ok()?)
            .ok()
            .and_then(|b| Cache::from_json(&b))
    }

    pub fn remove_cache(&self, key: &str) -> Result<()> {
        let p = self.cache_path(key)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", &p, &e)),
            _ => Ok(()),
        }
    }

    /// Every cache key in the directory.
    pub fn cache_keys(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.contains(".tmp"))
            .collect()
    }

    fn alloc_path(&self, id: &PciAddress) -> PathBuf {
        self.dir.join("pci").join(id.as_str())
    }

    /// The netns path the VF is allocated to, if any.
    pub fn allocation(&self, id: &PciAddress) -> Option<String> {
        fs::read_to_string(self.alloc_path(id)).ok()
    }

    pub fn allocate(&self, id: &PciAddress, netns: &str) -> Result<()> {
        self.write_atomic(self.alloc_path(id), netns.as_bytes())
    }

    pub fn release(&self, id: &PciAddress) -> Result<()> {
        let p = self.alloc_path(id);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", &p, &e)),
            _ => Ok(()),
        }
    }

    /// Takes the VF's exclusive lock, waiting up to `timeout`.
    pub fn lock(&self, id: &PciAddress, timeout: Duration) -> Result<VfLock> {
        let dir = self.dir.join("pci/vf_lock");
        self.mkdir(&dir)?;
        let p = dir.join(format!("{id}.lock"));
        let start = Instant::now();
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&p)
            .map_err(|e| io_err("opening", &p, &e))?;
        loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(VfLock(l)),
                Err((back, _)) => {
                    f = back;
                    if start.elapsed() >= timeout {
                        return Err(CniError::new(
                            code::TRY_AGAIN_LATER,
                            format!(
                                "time out while waiting to acquire exclusive lock on {}",
                                p.display()
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_upstream_cache() {
        let up = br#"{"MAC":"","MTU":1500,"Master":"ens1f0","OrigVfState":{"AdminMAC":"00:00:00:00:00:00","EffectiveMAC":"12:e3:36:4d:00:b8","HostIFName":"ens1f0v3","LinkState":0,"MTU":1500,"MaxTxRate":0,"MinTxRate":0,"SpoofChk":true,"Trust":false,"Vlan":0,"VlanProto":33024,"VlanQoS":0},"VFID":3,"cniVersion":"1.0.0","deviceID":"0000:3b:02.3","ipam":{"type":"host-local"},"max_tx_rate":null,"min_tx_rate":null,"name":"n","runtimeConfig":{},"spoofchk":"off","type":"sriov","vlan":100,"vlanProto":"802.1q","vlanQoS":0}"#;
        let c = Cache::from_json(up).unwrap();
        assert_eq!((c.master.as_str(), c.vf_id, c.dpdk), ("ens1f0", 3, None));
        assert_eq!(c.orig.host_ifname, "ens1f0v3");
        assert_eq!(c.applied_fields(), ["vlan", "spoofchk"]);
        assert_eq!(c.ipam_type(), "host-local");
        assert_eq!(c.effective_mac().unwrap().to_string(), "12:e3:36:4d:00:b8");
        // Round trip keeps every upstream key, sorted.
        let back = Cache::from_json(&c.to_json()).unwrap();
        assert_eq!(
            back,
            Cache {
                netns: String::new(),
                host_ifindex: 0,
                ifname: None,
                ..c.clone()
            }
        );
        let v: Value = serde_json::from_slice(&c.to_json()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn cache_keys_cannot_leave_the_state_directory() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::new(t.path());
        for key in ["../evil", "/tmp/x", "a/b", "..", ""] {
            let e = s.cache_path(key).expect_err(key);
            assert!(e.msg.contains("not a plain file name"), "{key}: {}", e.msg);
            assert!(s.read_cache(key).is_none());
            assert!(s.remove_cache(key).is_err());
        }
        assert_eq!(s.cache_path("c1-net1").unwrap(), t.path().join("c1-net1"));
    }

    #[test]
    fn unparsable_cache_is_none_and_lock_times_out() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::new(t.path());
        fs::write(t.path().join("c-net1"), b"{not json").unwrap();
        assert!(s.read_cache("c-net1").is_none());
        let id: PciAddress = "0000:00:1f.2".parse().unwrap();
        let _held = s.lock(&id, Duration::from_secs(1)).unwrap();
        // A second open file description cannot take it.
        let e = s.lock(&id, Duration::from_millis(30)).err().unwrap();
        assert_eq!(e.code, code::TRY_AGAIN_LATER);
    }
}
