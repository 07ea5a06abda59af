//! `default-route` in a network selection element, run for real: the built `multus` binary as
//! containerd runs it, Debian's `bridge` + `host-local` as the delegates, a netns from
//! `ip netns add`, Pods and NADs on a real kube-apiserver; the pod's routing table is read back
//! with `ip -j route` inside the netns.
//!
//! Needs root (netns, links) and the reference plugins; under `CI=true` missing ones fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};
use sriov_meta_plugin::status::{NETWORK_STATUS_ANNOTATION, NetworkStatus};
use sriov_testcluster::Cluster;

fn prerequisites() -> bool {
    reference_plugins_and_root(&["bridge", "host-local"])
}

/// The node's config: the default network a dual-stack bridge whose IPAM gives the pod an IPv4
/// and an IPv6 default route.
fn meta_conf(dir: &Path, kubeconfig: &Path, bridge: &str, octet: u8) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
        "kubeconfig": kubeconfig, "cniDir": dir.join("cni"), "binDir": REFERENCE_PLUGINS,
        "logLevel": "verbose", "logFile": dir.join("multus.log"), "logToStderr": false,
        "delegates": [{"cniVersion": "1.0.0", "name": "defnet", "plugins": [{
            "type": "bridge", "bridge": bridge, "isGateway": true,
            "ipam": {"type": "host-local", "dataDir": dir.join("ipam-default"),
                "ranges": [[{"subnet": format!("10.222.{octet}.0/24")}],
                           [{"subnet": format!("fd00:222:{octet}::/64")}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}]}],
    })
}

/// A secondary bridge network (no routes of its own) in `10.<second>.<octet>.0/24`.
fn bridge_nad(bridge: &str, dir: &Path, second: u8, octet: u8) -> Value {
    json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": bridge, "isGateway": true,
        "ipam": host_local(&format!("10.{second}.{octet}.0/24"), &dir.join(format!("ipam-{second}")))})
}

/// The default routes of one family in the netns: (gateway, dev).
fn default_routes(netns: &str, family: &str) -> Vec<(String, String)> {
    let o = Command::new("ip")
        .args(["-j", family, "-n", netns, "route", "show", "default"])
        .output()
        .unwrap();
    assert!(o.status.success(), "ip route: {o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(json!([]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["gateway"].as_str().unwrap_or_default().to_string(),
                r["dev"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The routes of one attachment's libcni cache entry (`<cniDir>/results/<net>-<id>-<if>`).
fn cached_routes(dir: &Path, net: &str, container: &str, ifname: &str) -> Value {
    let text = std::fs::read_to_string(
        dir.join("cni/results")
            .join(format!("{net}-{container}-{ifname}")),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["result"]["routes"].clone()
}

/// A pod selecting a network with `"default-route": [gw]` (as `net1`): inside its netns the
/// only IPv4 default route goes via that gateway on `net1`; `eth0` keeps none of its default
/// routes (the IPv6 one goes too: Multus filters every family on every attachment once any
/// `default-route` is set), and neither does `net2`, a later network whose own IPAM gave it
/// one (the reference plugins append it next to the existing one; it is removed after). The
/// cached results match the routes (CHECK passes); the pod's result and the network-status
/// annotation stay as the plugins reported them (`default: true` on the default network), as
/// Multus writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_route_goes_via_the_requested_gateway() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-gw";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (def_br, gw_br, other_br) = (format!("md{t}g"), format!("mg{t}g"), format!("mo{t}g"));
    let _links = HostLinks(vec![def_br.clone(), gw_br.clone(), other_br.clone()]);
    // The other network's IPAM gives it a default route of its own, which must go as well.
    let mut other = bridge_nad(&other_br, d, 224, 1);
    other["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0"}]);
    nad(&w.client, ns, "gw-net", &bridge_nad(&gw_br, d, 223, 1), None).await;
    nad(&w.client, ns, "other-net", &other, None).await;
    let networks = r#"[{"name":"gw-net","default-route":["10.223.1.1"]},{"name":"other-net"}]"#;
    let uid = pod(&w.client, ns, "router", networks, json!({})).await;
    let netns = Netns::new(&format!("meta-{t}-gw"));
    let conf = meta_conf(d, &w.kubeconfig, &def_br, 1);
    let args = containerd_args(ns, "router", "sandbox-gw", &uid);

    let add = multus("ADD", &conf, "sandbox-gw", &netns.path(), &args);
    let log = || std::fs::read_to_string(d.join("multus.log")).unwrap_or_default();
    assert!(add.ok, "ADD: {add:?}\n{}", log());

    assert_eq!(
        default_routes(&netns.name, "-4"),
        [("10.223.1.1".to_string(), "net1".to_string())],
        "the IPv4 default route goes via the requested gateway on net1 only"
    );
    assert_eq!(
        default_routes(&netns.name, "-6"),
        Vec::<(String, String)>::new(),
        "eth0's IPv6 default route is filtered too, as Multus does"
    );
    // The interfaces are all there, with their addresses (only routes changed).
    assert!(netns.addrs("eth0")[0].starts_with("10.222.1."));
    assert!(netns.addrs("net1")[0].starts_with("10.223.1."));
    assert!(netns.addrs("net2")[0].starts_with("10.224.1."));

    // libcni's caches (CHECK's and DEL's prevResult) say the same.
    assert_eq!(cached_routes(d, "defnet", "sandbox-gw", "eth0"), Value::Null);
    assert_eq!(
        cached_routes(d, "gw-net", "sandbox-gw", "net1"),
        json!([{"dst": "0.0.0.0/0", "gw": "10.223.1.1"}])
    );
    assert_eq!(cached_routes(d, "other-net", "sandbox-gw", "net2"), Value::Null);

    // The pod's result is the default network's, as its plugin returned it (Multus does not
    // rewrite it).
    let res = add.json();
    let routes = res["routes"].as_array().unwrap();
    assert!(routes.iter().any(|r| r["dst"] == "0.0.0.0/0"), "{res}");

    let text = annotation(&w.client, ns, "router", NETWORK_STATUS_ANNOTATION)
        .await
        .expect("network-status");
    let st: Vec<NetworkStatus> = serde_json::from_str(&text).unwrap();
    let summary: Vec<(&str, &str, bool)> = st
        .iter()
        .map(|s| (s.name.as_str(), s.interface.as_str(), s.default))
        .collect();
    assert_eq!(
        summary,
        [
            ("defnet", "eth0", true),
            ("meta-gw/gw-net", "net1", false),
            ("meta-gw/other-net", "net2", false)
        ],
        "{text}"
    );

    let check = multus("CHECK", &conf, "sandbox-gw", &netns.path(), &args);
    assert!(check.ok, "CHECK: {check:?}\n{}", log());

    let del = multus("DEL", &conf, "sandbox-gw", &netns.path(), &args);
    assert!(del.ok, "DEL: {del:?}");
    for p in ["ipam-default", "ipam-223", "ipam-224"] {
        assert_eq!(leases(&d.join(p)), Vec::<String>::new(), "{p} leases after DEL");
    }
}

/// Two networks asking for an IPv4 default gateway each: ADD fails before anything is
/// attached, naming the pod, both networks and the field (Multus refuses it too, without
/// naming them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ipv4_default_routes_fail_naming_both_networks() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-ecmp";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (def_br, a_br, b_br) = (format!("md{t}h"), format!("ma{t}h"), format!("mb{t}h"));
    let _links = HostLinks(vec![def_br.clone(), a_br.clone(), b_br.clone()]);
    nad(&w.client, ns, "a-net", &bridge_nad(&a_br, d, 223, 2), None).await;
    nad(&w.client, ns, "b-net", &bridge_nad(&b_br, d, 224, 2), None).await;
    let networks = r#"[{"name":"a-net","default-route":["10.223.2.1"]},{"name":"b-net","default-route":["10.224.2.1"]}]"#;
    let uid = pod(&w.client, ns, "ecmp", networks, json!({})).await;
    let netns = Netns::new(&format!("meta-{t}-ecmp"));
    let conf = meta_conf(d, &w.kubeconfig, &def_br, 2);
    let add = multus(
        "ADD",
        &conf,
        "sandbox-ecmp",
        &netns.path(),
        &containerd_args(ns, "ecmp", "sandbox-ecmp", &uid),
    );
    assert!(!add.ok, "ADD must fail: {add:?}");
    let msg = add.json()["msg"].as_str().unwrap().to_string();
    for part in [
        "pod meta-ecmp/ecmp",
        "field `default-route`",
        "2 IPv4 default gateways",
        "network meta-ecmp/a-net: 10.223.2.1",
        "network meta-ecmp/b-net: 10.224.2.1",
    ] {
        assert!(msg.contains(part), "{part:?} missing: {msg}");
    }
    assert!(
        netns.links().iter().all(|l| l.0 == "lo"),
        "nothing attached: {:?}",
        netns.links()
    );
    for p in ["ipam-default", "ipam-223", "ipam-224"] {
        assert!(leases(&d.join(p)).is_empty(), "{p} leased");
    }
}
