//! Real-kernel tests of the `sriov` binary: veth ends stand in for VF netdevs (see common/),
//! pods are network namespaces, IPAM is Debian's real host-local and static. Root only; serial.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fixture, addrs, link, ok, serial, sh};
use serde_json::json;

#[test]
fn add_moves_renames_sets_mac_up_and_del_restores_everything() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let conf = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 100, "vlanQoS": 2, "spoofchk": "off", "trust": "on",
        "max_tx_rate": 100, "mac": "02:11:22:33:44:55"}),
    );
    let r = f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]);
    let out = r.ok();
    assert_eq!(out["interfaces"][0]["name"], "net1");
    assert_eq!(out["interfaces"][0]["mac"], "02:11:22:33:44:55");
    assert_eq!(out["interfaces"][0]["mtu"], 1500);
    assert_eq!(out["interfaces"][0]["sandbox"], format!("/run/netns/{pod}"));
    let host = f.vfs[0].netdev.clone().unwrap();
    assert!(link(None, &host).is_none(), "VF netdev still in the host netns");
    let l = link(Some(&pod), "net1").expect("net1 in the pod");
    assert_eq!(l["address"], "02:11:22:33:44:55");
    assert!(l["flags"].as_array().unwrap().contains(&json!("UP")), "{l}");
    let pf = f.vf_pf_state(0);
    assert_eq!(
        (
            pf["vlan"].as_u64(),
            pf["qos"].as_u64(),
            pf["spoofchk"].as_bool(),
            pf["trust"].as_bool(),
            pf["max_tx_rate"].as_u64()
        ),
        (Some(100), Some(2), Some(false), Some(true), Some(100))
    );
    assert_eq!(pf["mac"], "02:11:22:33:44:55");
    assert_eq!(f.cache_files(), ["c1-net1"]);
    assert!(f.allocated(0));

    let r = f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]);
    r.ok();
    assert!(link(Some(&pod), "net1").is_none());
    f.assert_original(0);
    assert!(f.cache_files().is_empty());
    // Second DEL: success, no-op.
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
    // DEL without CNI_NETNS and without any cache: success.
    f.run("DEL", "c1", None, "net1", &conf, &[]).ok();
}

#[test]
fn host_local_ipam_two_pods_ping_and_release() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(2, 0);
    let (p1, p2) = (f.pod(), f.pod());
    let ipam = f.host_local("10.77.0.0/24");
    let c0 = f.conf(0, "1.0.0", json!({"ipam": ipam}));
    let c1 = f.conf(1, "1.0.0", json!({"ipam": ipam}));
    let a = f.run("ADD", "c1", Some(&p1), "net1", &c0, &[]).ok().clone();
    let b = f.run("ADD", "c2", Some(&p2), "net1", &c1, &[]).ok().clone();
    let ip_a = a["ips"][0]["address"].as_str().unwrap().to_string();
    let ip_b = b["ips"][0]["address"].as_str().unwrap().to_string();
    assert_eq!(a["ips"][0]["interface"], 0);
    assert!(ip_a.starts_with("10.77.0.") && ip_b.starts_with("10.77.0.") && ip_a != ip_b);
    assert_eq!(addrs(&p1, "net1"), std::slice::from_ref(&ip_a));
    assert_eq!(f.ipam_leases(), 2);
    let peer = ip_b.split('/').next().unwrap();
    let ping = sh(&[
        "ip", "netns", "exec", &p1, "busybox", "ping", "-c", "2", "-W", "2", peer,
    ]);
    assert!(
        ping.status.success(),
        "ping {peer}: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    f.run("DEL", "c1", Some(&p1), "net1", &c0, &[]).ok();
    f.run("DEL", "c2", Some(&p2), "net1", &c1, &[]).ok();
    assert_eq!(f.ipam_leases(), 0, "host-local leases not released");
    f.assert_original(0);
    f.assert_original(1);
}

#[test]
fn static_ipam_with_routes_and_old_result_versions() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let ipam = json!({"type": "static", "addresses": [{"address": "10.88.0.5/24", "gateway": "10.88.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.50.0/24", "gw": "10.88.0.254"}]});
    let conf = f.conf(0, "0.3.1", json!({"ipam": ipam}));
    let out = f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).ok().clone();
    assert_eq!(out["cniVersion"], "0.3.1");
    assert_eq!(
        out["ips"][0],
        json!({"version": "4", "interface": 0, "address": "10.88.0.5/24", "gateway": "10.88.0.1"})
    );
    assert!(out["interfaces"][0].get("mtu").is_none());
    assert_eq!(addrs(&pod, "net1"), ["10.88.0.5/24"]);
    let routes = ok(&["ip", "-n", &pod, "route", "show"]);
    assert!(routes.contains("default via 10.88.0.1 dev net1"), "{routes}");
    assert!(
        routes.contains("192.168.50.0/24 via 10.88.0.254 dev net1"),
        "{routes}"
    );
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
}

#[test]
fn del_after_the_pod_netns_was_killed() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let conf = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 10, "trust": "on", "ipam": f.host_local("10.78.0.0/24")}),
    );
    f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).ok();
    assert_eq!(f.ipam_leases(), 1);
    ok(&["ip", "netns", "del", &pod]);
    // The veth stand-in dies with its netns (a real VF returns to the host: see the lab test).
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    let pf = f.vf_pf_state(0);
    assert_eq!(
        (pf["vlan"].as_u64(), pf["trust"].as_bool()),
        (Some(0), Some(false))
    );
    assert!(f.cache_files().is_empty());
    assert!(!f.allocated(0));
    assert_eq!(f.ipam_leases(), 0);
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.vfs[0].netdev = None; // gone with the netns
}

#[test]
fn bad_input_is_a_cni_error_and_changes_nothing() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let notns = f.dir.path().join("plain-file");
    std::fs::write(&notns, b"x").unwrap();
    let notns = notns.to_string_lossy().into_owned();
    let cases: Vec<(serde_json::Value, String, u64, &str)> = vec![
        (f.conf(0, "1.0.0", json!({"vlan": 4095})), pod.clone(), 7, "vlan"),
        (
            f.conf(0, "1.0.0", json!({"vlanQoS": 1})),
            pod.clone(),
            7,
            "vlanQoS",
        ),
        (
            f.conf(0, "1.0.0", json!({"vlan": 1, "vlanProto": "802.1x"})),
            pod.clone(),
            7,
            "vlanProto",
        ),
        (
            f.conf(0, "1.0.0", json!({"mac": "02:00:00:00:00"})),
            pod.clone(),
            7,
            "mac",
        ),
        (
            f.conf(0, "1.0.0", json!({"min_tx_rate": 50, "max_tx_rate": 10})),
            pod.clone(),
            7,
            "min_tx_rate",
        ),
        (
            f.conf(0, "1.0.0", json!({"deviceID": "../../x"})),
            pod.clone(),
            7,
            "deviceID",
        ),
        (
            f.conf(0, "1.0.0", json!({"deviceID": common::PF})),
            pod.clone(),
            7,
            "not a VF",
        ),
        (
            f.conf(0, "1.0.0", json!({"deviceID": "0000:00:1e.0"})),
            pod.clone(),
            7,
            "deviceID",
        ),
        (f.conf(0, "9.9.9", json!({})), pod.clone(), 1, "incompatible"),
        (
            f.conf(0, "1.0.0", json!({})),
            notns.clone(),
            4,
            "not a network namespace",
        ),
        (
            f.conf(0, "1.0.0", json!({})),
            "/run/netns/sct-no-such-ns".into(),
            3,
            "does not exist",
        ),
        (
            f.conf(0, "1.0.0", json!({})),
            "/proc/self/ns/net".into(),
            4,
            "own network namespace",
        ),
        (
            f.conf(0, "1.0.0", json!({})),
            "/proc/self/ns/uts".into(),
            4,
            "not a network namespace",
        ),
    ];
    for (conf, ns, code, needle) in cases {
        let r = f.run("ADD", "c1", Some(&ns), "net1", &conf, &[]);
        let (c, msg) = r.err();
        assert_eq!(c, code, "{conf}: {msg}");
        assert!(msg.contains(needle), "{conf}: {msg}");
        assert!(f.cache_files().is_empty(), "{conf}: cache written");
        f.assert_original(0);
    }
    let r = f.run(
        "ADD",
        "c1",
        Some(&pod),
        "net1",
        &f.conf(0, "1.0.0", json!({})),
        &[("CNI_ARGS", "FOO=1")],
    );
    assert!(r.err().1.contains("CNI_ARGS"));
    let r = f.run("ADD", "c1", None, "net1", &f.conf(0, "1.0.0", json!({})), &[]);
    assert_eq!(r.err().0, 4);
    f.assert_original(0);
}

#[test]
fn refused_setting_rolls_everything_back() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    f.set_refuse(&["link_state"]);
    let conf = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 100, "mac": "02:11:22:33:44:55", "spoofchk": "off", "trust": "on",
        "link_state": "enable", "ipam": f.host_local("10.79.0.0/24")}),
    );
    let (code, msg) = f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).err();
    assert_eq!(code, 999);
    assert!(
        msg.contains("link_state") && msg.contains("not supported"),
        "{msg}"
    );
    f.assert_original(0);
    assert!(f.cache_files().is_empty());
    assert_eq!(f.ipam_leases(), 0);
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
}

#[test]
fn check_verifies_live_state() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let conf = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 5, "mac": "02:11:22:33:44:66", "ipam": f.host_local("10.80.0.0/24")}),
    );
    let res = f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).ok().clone();
    let mut with_prev = conf.clone();
    with_prev["prevResult"] = res;
    f.run("CHECK", "c1", Some(&pod), "net1", &with_prev, &[]).ok();
    ok(&[
        "ip",
        "-n",
        &pod,
        "link",
        "set",
        "net1",
        "address",
        "02:11:22:33:44:77",
    ]);
    let (_, msg) = f.run("CHECK", "c1", Some(&pod), "net1", &with_prev, &[]).err();
    assert!(msg.contains("MAC"), "{msg}");
    // CHECK is not allowed before 0.4.0.
    let (code, _) = f
        .run(
            "CHECK",
            "c1",
            Some(&pod),
            "net1",
            &f.conf(0, "0.3.1", json!({})),
            &[],
        )
        .err();
    assert_eq!(code, 1);
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
    let (code, _) = f.run("CHECK", "c1", Some(&pod), "net1", &conf, &[]).err();
    assert_eq!(code, 3);
}

#[test]
fn gc_releases_attachments_the_runtime_forgot() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(2, 0);
    let (p1, p2) = (f.pod(), f.pod());
    let c0 = f.conf(0, "1.1.0", json!({"vlan": 7}));
    let c1 = f.conf(1, "1.1.0", json!({"vlan": 8}));
    f.run("ADD", "keep", Some(&p1), "net1", &c0, &[]).ok();
    f.run("ADD", "gone", Some(&p2), "net1", &c1, &[]).ok();
    let mut gc = f.conf(0, "1.1.0", json!({}));
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "net1"}]);
    f.run("GC", "", None, "", &gc, &[]).ok();
    assert_eq!(f.cache_files(), ["keep-net1"]);
    f.assert_original(1);
    assert_eq!(f.vf_pf_state(0)["vlan"], 7);
    // GC/STATUS need 1.1.0.
    let (code, _) = f
        .run("GC", "", None, "", &f.conf(0, "1.0.0", json!({})), &[])
        .err();
    assert_eq!(code, 1);
    f.run("STATUS", "", None, "", &f.conf(0, "1.1.0", json!({})), &[])
        .ok();
    // Forwarded to IPAM; Debian's host-local predates GC/STATUS, which is tolerated.
    let mut gc_ipam = f.conf(0, "1.1.0", json!({"ipam": f.host_local("10.83.0.0/24")}));
    gc_ipam["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "net1"}]);
    f.run("GC", "", None, "", &gc_ipam, &[]).ok();
    assert_eq!(f.cache_files(), ["keep-net1"]);
    f.run("DEL", "keep", Some(&p1), "net1", &c0, &[]).ok();
    f.assert_original(0);
}

#[test]
fn dpdk_mode_sets_only_pf_side() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(0, 1);
    let pod = f.pod();
    let conf = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 300, "mac": "02:11:22:33:44:88", "trust": "on"}),
    );
    let out = f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).ok().clone();
    assert_eq!(out["interfaces"][0]["mac"], "02:11:22:33:44:88");
    assert_eq!(f.vf_pf_state(0)["vlan"], 300);
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.state().join("c1-net1")).unwrap()).unwrap();
    assert_eq!(cache["DPDKMode"], true);
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
    assert!(f.cache_files().is_empty());
}

#[test]
fn version_and_concurrent_add_del_on_one_pf() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(4, 0);
    let v = f.run("VERSION", "", None, "", &json!({}), &[]).ok().clone();
    assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
    let pods: Vec<String> = (0..4).map(|_| f.pod()).collect();
    for round in 0..3 {
        std::thread::scope(|s| {
            for i in 0..4u32 {
                let (f, pods) = (&f, &pods);
                s.spawn(move || {
                    let c = f.conf(
                        i,
                        "1.0.0",
                        json!({"vlan": 10 + i, "spoofchk": "off", "mac": format!("02:00:00:00:00:0{i}")}),
                    );
                    f.run("ADD", &format!("c{i}"), Some(&pods[i as usize]), "net1", &c, &[])
                        .ok();
                });
            }
        });
        for i in 0..4u32 {
            assert_eq!(f.vf_pf_state(i)["vlan"], 10 + i, "round {round}");
            let l = link(Some(&pods[i as usize]), "net1").unwrap();
            assert_eq!(l["address"], format!("02:00:00:00:00:0{i}"));
        }
        std::thread::scope(|s| {
            for i in 0..4u32 {
                let (f, pods) = (&f, &pods);
                s.spawn(move || {
                    let c = f.conf(
                        i,
                        "1.0.0",
                        json!({"vlan": 10 + i, "spoofchk": "off", "mac": format!("02:00:00:00:00:0{i}")}),
                    );
                    f.run("DEL", &format!("c{i}"), Some(&pods[i as usize]), "net1", &c, &[])
                        .ok();
                });
            }
        });
        for i in 0..4 {
            f.assert_original(i);
        }
    }
}

#[test]
fn del_reads_a_cache_written_by_upstream() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let conf = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 9, "spoofchk": "off", "mac": "02:11:22:33:44:aa"}),
    );
    f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).ok();
    // Strip what only we write: upstream's cache has no DPDKMode, Netns or HostIfIndex.
    let p = f.state().join("c1-net1");
    let mut cache: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    for k in ["DPDKMode", "Netns", "HostIfIndex", "IfName"] {
        cache.as_object_mut().unwrap().remove(k);
    }
    assert!(cache["OrigVfState"]["HostIFName"].is_string() && cache["VFID"] == 0);
    std::fs::write(&p, cache.to_string()).unwrap();
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
    assert!(f.cache_files().is_empty());
}

#[test]
fn log_level_and_log_file() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let log = f.dir.path().join("sriov.log");
    let lf = log.to_string_lossy().into_owned();
    let quiet = f.conf(0, "1.0.0", json!({"logLevel": "error", "logFile": lf}));
    f.run("ADD", "c1", Some(&pod), "net1", &quiet, &[]).ok();
    f.run("DEL", "c1", Some(&pod), "net1", &quiet, &[]).ok();
    assert!(!log.exists(), "success logged at logLevel error");
    let bad = f.conf(
        0,
        "1.0.0",
        json!({"logLevel": "error", "logFile": lf, "vlan": 5000}),
    );
    f.run("ADD", "c1", Some(&pod), "net1", &bad, &[]).err();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(" error sriov: Add containerID=c1") && text.contains("5000"),
        "{text}"
    );
    let info = f.conf(0, "1.0.0", json!({"logLevel": "INFO", "logFile": lf}));
    f.run("ADD", "c1", Some(&pod), "net1", &info, &[]).ok();
    f.run("DEL", "c1", Some(&pod), "net1", &info, &[]).ok();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(" info sriov: Add containerID=c1") && text.contains(" info sriov: Del containerID=c1"),
        "{text}"
    );
    f.assert_original(0);
}

#[test]
fn add_reclaims_a_vf_left_by_a_pod_whose_netns_died_without_del() {
    need_root!();
    let _s = serial();
    let mut f = Fixture::new(1, 0);
    let (p1, p2) = (f.pod(), f.pod());
    let c1 = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 33, "trust": "on", "mac": "02:11:22:33:44:bb"}),
    );
    f.run("ADD", "old", Some(&p1), "net1", &c1, &[]).ok();
    // What the kernel does to a physical VF when its netns dies: back to the host, pod-side name.
    ok(&["ip", "-n", &p1, "link", "set", "net1", "netns", "1"]);
    ok(&["ip", "netns", "del", &p1]);
    assert!(link(None, "net1").is_some());
    // No DEL for "old". A new pod gets the VF: its "original" must be the true original.
    let c2 = f.conf(0, "1.0.0", json!({"vlan": 44}));
    f.run("ADD", "new", Some(&p2), "net1", &c2, &[]).ok();
    assert_eq!(f.cache_files(), ["new-net1"]);
    assert_eq!(f.vf_pf_state(0)["vlan"], 44);
    assert_eq!(
        f.vf_pf_state(0)["trust"],
        false,
        "the old pod's trust leaked into the new ADD"
    );
    f.run("DEL", "new", Some(&p2), "net1", &c2, &[]).ok();
    f.assert_original(0);
}
