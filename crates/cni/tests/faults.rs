//! Fault injection on the real binary: the plugin is killed (SIGABRT, no clean-up) or made to
//! fail after every step of ADD; a DEL afterwards (or the rollback itself) must return the VF
//! to exactly its original state and release IPAM.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fixture, link};
use serde_json::{Value, json};

const STEPS: &[&str] = &[
    "cached",
    "pf:vlan",
    "pf:mac",
    "pf:rate",
    "pf:spoofchk",
    "pf:trust",
    "moved",
    "mac",
    "up",
    "ipam",
    "addresses",
    "result",
];

fn full_conf(f: &Fixture) -> Value {
    f.conf(
        0,
        "1.0.0",
        json!({"vlan": 42, "vlanQoS": 1, "mac": "02:11:22:33:44:99", "max_tx_rate": 100,
        "spoofchk": "off", "trust": "on", "ipam": f.host_local("10.81.0.0/24")}),
    )
}

#[test]
fn killed_at_every_step_then_del_restores() {
    need_root!();
    let _s = common::serial();
    let mut f = Fixture::new(1, 0);
    let conf = full_conf(&f);
    for step in STEPS {
        let pod = f.pod();
        let r = f.run(
            "ADD",
            "c1",
            Some(&pod),
            "net1",
            &conf,
            &[("SRIOV_CNI_TEST_FAULT", &format!("abort:{step}"))],
        );
        assert_eq!(r.code, None, "{step}: expected death by signal, got {r:?}");
        f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
        f.assert_original(0);
        assert!(link(Some(&pod), "net1").is_none(), "{step}: VF left in the pod");
        assert!(f.cache_files().is_empty(), "{step}: cache left");
        assert_eq!(f.ipam_leases(), 0, "{step}: IPAM lease left");
        // And the next ADD/DEL works normally.
        f.run("ADD", "c2", Some(&pod), "net1", &conf, &[]).ok();
        f.run("DEL", "c2", Some(&pod), "net1", &conf, &[]).ok();
        f.assert_original(0);
    }
}

#[test]
fn failing_at_every_step_rolls_back_without_del() {
    need_root!();
    let _s = common::serial();
    let mut f = Fixture::new(1, 0);
    let conf = full_conf(&f);
    for step in STEPS {
        let pod = f.pod();
        let r = f.run(
            "ADD",
            "c1",
            Some(&pod),
            "net1",
            &conf,
            &[("SRIOV_CNI_TEST_FAULT", &format!("fail:{step}"))],
        );
        let (code, msg) = r.err();
        assert_eq!(code, 999, "{step}");
        assert!(msg.contains(step), "{step}: {msg}");
        assert_eq!(r.out["details"], "every change was rolled back", "{step}");
        f.assert_original(0);
        assert!(f.cache_files().is_empty(), "{step}: cache left");
        assert_eq!(f.ipam_leases(), 0, "{step}: IPAM lease left");
        f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
        f.assert_original(0);
    }
}

#[test]
fn retried_add_after_a_kill_keeps_the_true_original() {
    need_root!();
    let _s = common::serial();
    let mut f = Fixture::new(1, 0);
    let conf = full_conf(&f);
    let pod = f.pod();
    let r = f.run(
        "ADD",
        "c1",
        Some(&pod),
        "net1",
        &conf,
        &[("SRIOV_CNI_TEST_FAULT", "abort:up")],
    );
    assert_eq!(r.code, None);
    // The runtime retries ADD without a DEL in between.
    f.run("ADD", "c1", Some(&pod), "net1", &conf, &[]).ok();
    assert_eq!(f.ipam_leases(), 1);
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    f.assert_original(0);
    assert_eq!(f.ipam_leases(), 0);
}

#[test]
fn killed_after_move_then_pod_netns_dies_then_del() {
    need_root!();
    let _s = common::serial();
    let mut f = Fixture::new(1, 0);
    let conf = full_conf(&f);
    let pod = f.pod();
    let r = f.run(
        "ADD",
        "c1",
        Some(&pod),
        "net1",
        &conf,
        &[("SRIOV_CNI_TEST_FAULT", "abort:ipam")],
    );
    assert_eq!(r.code, None);
    common::ok(&["ip", "netns", "del", &pod]);
    f.run("DEL", "c1", Some(&pod), "net1", &conf, &[]).ok();
    let pf = f.vf_pf_state(0);
    assert_eq!(
        (
            pf["vlan"].as_u64(),
            pf["trust"].as_bool(),
            pf["spoofchk"].as_bool()
        ),
        (Some(0), Some(false), Some(true))
    );
    assert!(f.cache_files().is_empty());
    assert_eq!(f.ipam_leases(), 0);
    f.vfs[0].netdev = None; // the veth died with the netns
}
