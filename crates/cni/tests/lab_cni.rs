//! The plugin on real igb VFs in the QEMU SR-IOV lab (lab/run-tests runs these in the guest,
//! serially): PF-side settings as `ip -j link show <pf>` lists them, the VF in the pod netns with
//! MAC and a host-local IP, VF-to-VF ping through the emulated NIC, DEL restoring name, MAC and
//! settings, DPDK mode on vfio-pci, igb-refused settings rolled back, a killed pod netns.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const LAB: &str = "needs the SR-IOV lab (lab/run-tests)";

fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().expect("spawn")
}

fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default().trim().to_string()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The igb PF: sysfs dir and netdev; VFs created (4) with netdevs; PF link up (igb needs it for rates).
struct Lab {
    pf: PathBuf,
    pf_name: String,
    tmp: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let pf = fs::read_dir("/sys/bus/pci/devices")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|d| read(&d.join("vendor")) == "0x8086" && read(&d.join("device")) == "0x10c9")
            .expect("no igb PF (8086:10c9)");
        let pf_name = fs::read_dir(pf.join("net"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .into_owned();
        ok(&["ip", "link", "set", &pf_name, "up"]);
        if read(&pf.join("sriov_numvfs")) != "4" {
            fs::write(pf.join("sriov_numvfs"), "0").unwrap();
            fs::write(pf.join("sriov_numvfs"), "4").unwrap();
        }
        let end = Instant::now() + Duration::from_secs(30);
        while (0..4)
            .any(|i| fs::read_dir(pf.join(format!("virtfn{i}/net"))).map_or(true, |mut d| d.next().is_none()))
        {
            assert!(Instant::now() < end, "VF netdevs did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
        Lab {
            pf,
            pf_name,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn vf_pci(&self, i: u32) -> String {
        fs::read_link(self.pf.join(format!("virtfn{i}")))
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
    fn vf_netdev(&self, i: u32) -> Option<String> {
        fs::read_dir(self.pf.join(format!("virtfn{i}/net")))
            .ok()?
            .flatten()
            .next()
            .map(|e| e.file_name().to_string_lossy().into_owned())
    }
    /// The PF's `vfinfo_list` entry of VF `i`.
    fn vfinfo(&self, i: u32) -> Value {
        let v: Value =
            serde_json::from_str(&ok(&["ip", "-j", "link", "show", "dev", &self.pf_name])).unwrap();
        v[0]["vfinfo_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["vf"] == i)
            .cloned()
            .unwrap()
    }
    fn link(&self, netns: Option<&str>, name: &str) -> Option<Value> {
        let mut a = vec!["ip"];
        if let Some(n) = netns {
            a.extend(["-n", n]);
        }
        a.extend(["-j", "link", "show", "dev", name]);
        let o = sh(&a);
        o.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&o.stdout).ok())
            .flatten()
            .map(|v| v[0].clone())
    }
    fn conf(&self, i: u32, extra: Value) -> Value {
        let mut c =
            json!({"cniVersion": "1.0.0", "name": "labnet", "type": "sriov", "deviceID": self.vf_pci(i)});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }
    fn host_local(&self) -> Value {
        json!({"type": "host-local", "subnet": "169.254.77.0/24", "dataDir": self.tmp.path().join("ipam")})
    }
    fn run(&self, cmd: &str, cid: &str, netns: &str, conf: &Value) -> (Option<i32>, Value, Duration) {
        let t = Instant::now();
        let mut c = Command::new(env!("CARGO_BIN_EXE_sriov"))
            .env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", format!("/run/netns/{netns}"))
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", repo().join(".tools/cni-bin"))
            .env("SRIOV_CNI_STATE_DIR", self.tmp.path().join("state"))
            .env("SRIOV_CNI_TRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let _ = c.stdin.take().unwrap().write_all(conf.to_string().as_bytes());
        }
        let o = c.wait_with_output().unwrap();
        let el = t.elapsed();
        // The step trace, kept in the test's captured output.
        print!("{}", String::from_utf8_lossy(&o.stderr));
        (
            o.status.code(),
            serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
            el,
        )
    }
    fn netns(&self, name: &str) {
        let _ = sh(&["ip", "netns", "del", name]);
        ok(&["ip", "netns", "add", name]);
    }
}

/// The PF-side fields the plugin may change (what "restored" compares).
fn settings(v: &Value) -> Value {
    json!({"address": v["address"], "vlan": v["vlan_list"][0].get("vlan"), "qos": v["vlan_list"][0].get("qos"),
           "spoofchk": v["spoofchk"], "trust": v["trust"], "max_tx": v["rate"]["max_tx"], "min_tx": v["rate"]["min_tx"]})
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_vfs_add_ping_del_restore() {
    let _ = LAB;
    let lab = Lab::new();
    let (n0, n1) = (lab.vf_netdev(0).unwrap(), lab.vf_netdev(1).unwrap());
    let (mac0, mac1) = (
        lab.link(None, &n0).unwrap()["address"].clone(),
        lab.link(None, &n1).unwrap()["address"].clone(),
    );
    let (before0, before1) = (settings(&lab.vfinfo(0)), settings(&lab.vfinfo(1)));
    lab.netns("cnipod1");
    lab.netns("cnipod2");
    let extra = |mac: &str| json!({"vlan": 100, "spoofchk": "off", "trust": "on", "max_tx_rate": 100, "mac": mac, "ipam": lab.host_local()});
    let c0 = lab.conf(0, extra("02:11:22:33:44:01"));
    let c1 = lab.conf(1, extra("02:11:22:33:44:02"));
    // Both VFs of the one PF at once: concurrent ADDs must not disturb each other.
    let ((code, r0, t_add), (code1, r1, _)) = std::thread::scope(|s| {
        let a = s.spawn(|| lab.run("ADD", "pod1", "cnipod1", &c0));
        let b = s.spawn(|| lab.run("ADD", "pod2", "cnipod2", &c1));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(code, Some(0), "{r0}");
    assert_eq!(code1, Some(0), "{r1}");
    assert_eq!(
        settings(&lab.vfinfo(1)),
        json!({"address": "02:11:22:33:44:02", "vlan": 100, "qos": null, "spoofchk": false, "trust": true, "max_tx": 100, "min_tx": 0})
    );
    println!("ADD on igb VF (vlan, spoofchk, trust, max_tx_rate, mac, host-local): {t_add:?}");
    let info = lab.vfinfo(0);
    assert_eq!(
        settings(&info),
        json!({"address": "02:11:22:33:44:01", "vlan": 100, "qos": null, "spoofchk": false, "trust": true, "max_tx": 100, "min_tx": 0}),
        "{info}"
    );
    let l = lab.link(Some("cnipod1"), "net1").expect("net1 in cnipod1");
    assert_eq!(l["address"], "02:11:22:33:44:01");
    let ip1 = r0["ips"][0]["address"].as_str().unwrap().to_string();
    let ip2 = r1["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(ok(&["ip", "-n", "cnipod1", "addr", "show", "net1"]).contains(&ip1));
    assert!(lab.link(None, &n0).is_none(), "{n0} still in the host netns");
    let peer = ip2.split('/').next().unwrap();
    let ping = sh(&[
        "ip", "netns", "exec", "cnipod1", "busybox", "ping", "-c", "3", "-W", "3", peer,
    ]);
    println!("{}", String::from_utf8_lossy(&ping.stdout));
    assert!(ping.status.success(), "VF-to-VF ping {ip1} -> {peer} failed");
    let ((code, out, t_del), (code1, out1, _)) = std::thread::scope(|s| {
        let a = s.spawn(|| lab.run("DEL", "pod1", "cnipod1", &c0));
        let b = s.spawn(|| lab.run("DEL", "pod2", "cnipod2", &c1));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(code1, Some(0), "{out1}");
    println!("DEL on igb VF: {t_del:?}");
    for (n, mac, before, i) in [(&n0, &mac0, &before0, 0), (&n1, &mac1, &before1, 1)] {
        let l = lab
            .link(None, n)
            .unwrap_or_else(|| panic!("{n} not back in the host netns"));
        assert_eq!(&l["address"], mac, "{n} MAC");
        assert_eq!(&settings(&lab.vfinfo(i)), before, "VF {i} settings");
    }
    // Second DEL: no-op.
    assert_eq!(lab.run("DEL", "pod1", "cnipod1", &c0).0, Some(0));
    // The VF was not pinned to an admin MAC: it can change its own MAC again.
    ok(&["ip", "link", "set", &n0, "address", "02:11:22:33:44:0f"]);
    ok(&["ip", "link", "set", &n0, "address", mac0.as_str().unwrap()]);
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_refused_settings_roll_back_fully() {
    let lab = Lab::new();
    let n2 = lab.vf_netdev(2).unwrap();
    let mac2 = lab.link(None, &n2).unwrap()["address"].clone();
    let before = settings(&lab.vfinfo(2));
    lab.netns("cnipod3");
    for (field, extra) in [
        (
            "link_state",
            json!({"vlan": 100, "mac": "02:11:22:33:44:03", "spoofchk": "off", "trust": "on", "link_state": "enable", "ipam": lab.host_local()}),
        ),
        (
            "rate",
            json!({"vlan": 100, "mac": "02:11:22:33:44:03", "min_tx_rate": 10, "max_tx_rate": 100}),
        ),
        ("vlan", json!({"vlan": 100, "vlanProto": "802.1ad"})),
    ] {
        let (code, out, _) = lab.run("ADD", "pod3", "cnipod3", &lab.conf(2, extra));
        println!("{field}: {out}");
        assert_eq!(code, Some(1), "{out}");
        assert!(out["msg"].as_str().unwrap().contains(field), "{out}");
        assert_eq!(
            settings(&lab.vfinfo(2)),
            before,
            "{field}: VF settings not rolled back"
        );
        let l = lab
            .link(None, &n2)
            .unwrap_or_else(|| panic!("{field}: {n2} not in the host netns"));
        assert_eq!(l["address"], mac2, "{field}: MAC");
        assert!(lab.link(Some("cnipod3"), "net1").is_none());
        assert!(
            fs::read_dir(lab.tmp.path().join("state"))
                .unwrap()
                .flatten()
                .all(|e| e.path().is_dir()),
            "{field}: cache left"
        );
    }
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_vf_returns_home_when_the_pod_netns_dies() {
    let lab = Lab::new();
    let n3 = lab.vf_netdev(3).unwrap();
    let mac3 = lab.link(None, &n3).unwrap()["address"].clone();
    let before = settings(&lab.vfinfo(3));
    lab.netns("cnipod4");
    let c = lab.conf(3, json!({"vlan": 7, "mac": "02:11:22:33:44:04", "trust": "on"}));
    assert_eq!(lab.run("ADD", "pod4", "cnipod4", &c).0, Some(0));
    ok(&["ip", "netns", "del", "cnipod4"]);
    // The kernel returns the physical netdev to the host under its pod name (or devN).
    let end = Instant::now() + Duration::from_secs(10);
    while lab.vf_netdev(3).is_none() {
        assert!(Instant::now() < end, "VF netdev did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("after the netns died the VF is {:?}", lab.vf_netdev(3));
    let (code, out, _) = lab.run("DEL", "pod4", "cnipod4", &c);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        lab.vf_netdev(3).as_deref(),
        Some(n3.as_str()),
        "original name not restored"
    );
    assert_eq!(lab.link(None, &n3).unwrap()["address"], mac3);
    assert_eq!(settings(&lab.vfinfo(3)), before);

    // Again, but the DEL never comes: the next pod's ADD reclaims the VF first.
    lab.netns("cnipod4");
    assert_eq!(lab.run("ADD", "pod4", "cnipod4", &c).0, Some(0));
    ok(&["ip", "netns", "del", "cnipod4"]);
    let end = Instant::now() + Duration::from_secs(10);
    while lab.vf_netdev(3).is_none() {
        assert!(Instant::now() < end, "VF netdev did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.netns("cnipod6");
    let c6 = lab.conf(3, json!({"vlan": 8}));
    let (code, out, _) = lab.run("ADD", "pod6", "cnipod6", &c6);
    assert_eq!(code, Some(0), "{out}");
    let now = settings(&lab.vfinfo(3));
    assert_eq!(
        (now["vlan"].clone(), now["trust"].clone()),
        (json!(8), json!(false)),
        "{now}"
    );
    let (code, out, _) = lab.run("DEL", "pod6", "cnipod6", &c6);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(lab.vf_netdev(3).as_deref(), Some(n3.as_str()));
    assert_eq!(lab.link(None, &n3).unwrap()["address"], mac3);
    assert_eq!(settings(&lab.vfinfo(3)), before);
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_vf_on_vfio_pci_dpdk_mode() {
    let lab = Lab::new();
    let pci = lab.vf_pci(1);
    let before = settings(&lab.vfinfo(1));
    let dev = PathBuf::from("/sys/bus/pci/devices").join(&pci);
    let _ = sh(&["modprobe", "vfio-pci"]);
    fs::write(dev.join("driver_override"), "vfio-pci").unwrap();
    if dev.join("driver").exists() {
        fs::write(dev.join("driver/unbind"), &pci).unwrap();
    }
    fs::write("/sys/bus/pci/drivers_probe", &pci).unwrap();
    let drv =
        fs::read_link(dev.join("driver")).map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
    assert_eq!(drv.as_deref().ok(), Some("vfio-pci"));
    lab.netns("cnipod5");
    let c = lab.conf(
        1,
        json!({"vlan": 200, "mac": "02:11:22:33:44:05", "spoofchk": "off"}),
    );
    let (code, out, _) = lab.run("ADD", "pod5", "cnipod5", &c);
    let after_add = settings(&lab.vfinfo(1));
    let (code_del, out_del, _) = lab.run("DEL", "pod5", "cnipod5", &c);
    let after_del = settings(&lab.vfinfo(1));
    // Back to igbvf before asserting, so a failure leaves the lab as it was.
    fs::write(dev.join("driver_override"), "\n").unwrap();
    fs::write(dev.join("driver/unbind"), &pci).unwrap();
    fs::write("/sys/bus/pci/drivers_probe", &pci).unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["interfaces"][0]["mac"], "02:11:22:33:44:05");
    assert_eq!(after_add["vlan"], 200);
    assert_eq!(after_add["spoofchk"], false);
    assert_eq!(code_del, Some(0), "{out_del}");
    assert_eq!(after_del, before);
}

/// Latency on the igb VF inside the (TCG-emulated) guest, the binary copied to tmpfs so 9p reads
/// do not count: ADD/DEL without IPAM with vlan/spoofchk/trust/mac, and the floor, the same VF
/// netdev moved into the netns and back by bare netlink requests, in the same run.
#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_latency() {
    use std::os::fd::AsFd;

    use sriov_cni::netns::NetNs;
    use sriov_cni::nl::{LinkChange, Netlink};

    let lab = Lab::new();
    let release = repo().join("target/release/sriov");
    let src = if release.exists() {
        release
    } else {
        PathBuf::from(env!("CARGO_BIN_EXE_sriov"))
    };
    let bin = PathBuf::from("/tmp/sriov-bench");
    fs::copy(&src, &bin).unwrap();
    let n0 = lab.vf_netdev(0).unwrap();
    lab.netns("cnibench");
    let c = lab.conf(
        0,
        json!({"vlan": 100, "spoofchk": "off", "trust": "on", "mac": "02:11:22:33:44:10"}),
    );
    let state = lab.tmp.path().join("state");
    let run_traced = |cmd: &str, trace: bool| -> (Duration, String) {
        let t = Instant::now();
        let mut c2 = Command::new(&bin);
        c2.env("CNI_COMMAND", cmd)
            .env("CNI_CONTAINERID", "bench")
            .env("CNI_NETNS", "/run/netns/cnibench")
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", "/tmp")
            .env("SRIOV_CNI_STATE_DIR", &state)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if trace {
            c2.env("SRIOV_CNI_TRACE", "1");
        }
        let mut ch = c2.spawn().unwrap();
        {
            use std::io::Write;
            let _ = ch.stdin.take().unwrap().write_all(c.to_string().as_bytes());
        }
        let o = ch.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (t.elapsed(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let run = |cmd: &str| run_traced(cmd, false).0;
    // One traced ADD/DEL: where the time goes (written next to the latency line).
    let _ = (run("ADD"), run("DEL"));
    let (ta, add_trace) = run_traced("ADD", true);
    let (td, del_trace) = run_traced("DEL", true);
    let trace = format!("traced ADD {ta:?}:\n{add_trace}traced DEL {td:?}:\n{del_trace}");
    let ns = NetNs::open("/run/netns/cnibench").unwrap();
    let home = NetNs::current().unwrap();
    let mut host = Netlink::open().unwrap();
    let (mut add, mut del, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..12 {
        let (a, d) = (run("ADD"), run("DEL"));
        let t = Instant::now();
        let idx = host.link_by_name(&n0).unwrap().unwrap().index;
        host.set_link(
            idx,
            &LinkChange {
                netns: Some(ns.file.as_fd()),
                ..Default::default()
            },
        )
        .unwrap();
        let mut pod = ns.netlink().unwrap();
        let l = pod.link_by_name(&n0).unwrap().unwrap();
        pod.set_link(
            l.index,
            &LinkChange {
                netns: Some(home.file.as_fd()),
                ..Default::default()
            },
        )
        .unwrap();
        let f = t.elapsed();
        if i >= 2 {
            add.push(a);
            del.push(d);
            floor.push(f);
        }
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let (a, d, f) = (med(&mut add), med(&mut del), med(&mut floor));
    let line = format!(
        "LAB-LATENCY igb VF ({}): ADD p50 {a:.1} ms, DEL p50 {d:.1} ms; floor (move in + out, bare netlink) p50 {f:.1} ms; ADD+DEL overhead p50 {:.1} ms\n",
        src.display(),
        a + d - f
    );
    print!("{line}");
    // lab/tests/40-cni.sh prints it (a passing test's output is captured).
    let out = std::env::var("LAB_OUT").unwrap_or_else(|_| "/tmp".into());
    let _ = fs::write(Path::new(&out).join("cni-latency.txt"), format!("{line}{trace}"));
    assert!(lab.link(None, &n0).is_some());
}
