//! The built `multus` binary run as containerd runs a CNI plugin (CNI_* environment, config on
//! stdin, pod netns made with `ip netns add`), delegating to Debian's reference plugins
//! (`bridge`, `macvlan`, `tuning`, `host-local`), reading Pods and NADs from a real
//! kube-apiserver as a user holding only Multus' ClusterRole, and writing network-status there.
//!
//! Needs root (netns, links) and the reference plugins; under `CI=true` missing ones fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use sriov_meta_plugin::status::{NETWORK_STATUS_ANNOTATION, NetworkStatus};
use sriov_testcluster::Cluster;

fn prerequisites() -> bool {
    reference_plugins_and_root(&["bridge", "macvlan", "tuning", "host-local"])
}

/// The node's meta plugin config: Multus thin mode, the default network a bridge.
fn meta_conf(dir: &Path, kubeconfig: &Path, bridge: &str, octet: u8) -> Value {
    let mut ipam = host_local(&format!("10.217.{octet}.0/24"), &dir.join("ipam-default"));
    ipam["routes"] = json!([{"dst": "0.0.0.0/0", "gw": format!("10.217.{octet}.1")}]);
    json!({
        "cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
        "kubeconfig": kubeconfig, "cniDir": dir.join("cni"), "binDir": REFERENCE_PLUGINS,
        "logLevel": "verbose", "logFile": dir.join("multus.log"), "logToStderr": false,
        "delegates": [{"cniVersion": "1.0.0", "name": "defnet", "plugins": [{
            "type": "bridge", "bridge": bridge, "isGateway": true, "ipam": ipam}]}],
    })
}

fn macvlan_nad(master: &str, dir: &Path, octet: u8) -> Value {
    json!({"cniVersion": "1.0.0", "name": "macvlan-net", "plugins": [
        {"type": "macvlan", "master": master, "mode": "bridge", "capabilities": {"ips": true},
         "ipam": host_local(&format!("10.218.{octet}.0/24"), &dir.join("ipam-macvlan"))},
        {"type": "tuning", "capabilities": {"mac": true}}]})
}

fn bridge_nad(bridge: &str, dir: &Path, octet: u8) -> Value {
    json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": bridge,
        "ipam": host_local(&format!("10.219.{octet}.0/24"), &dir.join("ipam-bridge"))})
}

/// Two secondary networks (macvlan on a veth, bridge) after the default network: in order,
/// named eth0/net1/net2, with the requested MAC and IP, network-status on the API server; CHECK
/// passes; DEL removes every interface and frees every lease; a second DEL succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_secondary_networks_in_order_then_del_frees_everything() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-two";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (master, def_br, sec_br) = (format!("mv{t}a"), format!("md{t}a"), format!("ms{t}a"));
    let _links = HostLinks::veth(&master, &format!("mv{t}b"))
        .also(&def_br)
        .also(&sec_br);
    nad(&w.client, ns, "macvlan-net", &macvlan_nad(&master, d, 1), None).await;
    nad(&w.client, ns, "bridge-net", &bridge_nad(&sec_br, d, 1), None).await;
    let networks = r#"[{"name":"macvlan-net","mac":"02:aa:bb:cc:dd:01","ips":["10.218.1.77/24"]},{"name":"bridge-net"}]"#;
    let uid = pod(&w.client, ns, "web", networks, json!({})).await;
    let netns = Netns::new(&format!("meta-{t}-web"));
    let conf = meta_conf(d, &w.kubeconfig, &def_br, 1);
    let args = containerd_args(ns, "web", "sandbox-web", &uid);

    let add = multus("ADD", &conf, "sandbox-web", &netns.path(), &args);
    assert!(
        add.ok,
        "ADD: {add:?}\n{}",
        std::fs::read_to_string(d.join("multus.log")).unwrap_or_default()
    );
    // The pod's result is the default network's.
    let res = add.json();
    assert_eq!(res["cniVersion"], "1.0.0");
    let ifaces: Vec<&str> = res["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(ifaces.contains(&"eth0") && !ifaces.contains(&"net1"), "{res}");
    assert!(
        res["ips"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.217.1."),
        "{res}"
    );

    // In the netns: eth0 (veth of the default bridge), net1 macvlan with the MAC and IP asked
    // for, net2 veth of the second bridge.
    let links = netns.links();
    let kind = |n: &str| {
        links
            .iter()
            .find(|l| l.0 == n)
            .map(|l| (l.1.clone(), l.2.clone()))
    };
    assert_eq!(kind("eth0").unwrap().0, "veth", "{links:?}");
    assert_eq!(
        kind("net1").unwrap(),
        ("macvlan".into(), "02:aa:bb:cc:dd:01".into()),
        "{links:?}"
    );
    assert_eq!(kind("net2").unwrap().0, "veth", "{links:?}");
    assert_eq!(netns.addrs("net1"), ["10.218.1.77/24"]);
    assert!(
        netns.addrs("net2")[0].starts_with("10.219.1."),
        "{:?}",
        netns.addrs("net2")
    );
    assert!(netns.addrs("eth0")[0].starts_with("10.217.1."));

    // network-status on the API server, Multus' text and shape.
    let text = annotation(&w.client, ns, "web", NETWORK_STATUS_ANNOTATION)
        .await
        .expect("network-status");
    assert!(
        text.starts_with("[{\n    \"name\": \"defnet\",\n    \"interface\": \"eth0\",\n"),
        "{text}"
    );
    let st: Vec<NetworkStatus> = serde_json::from_str(&text).unwrap();
    let summary: Vec<(&str, &str, bool)> = st
        .iter()
        .map(|s| (s.name.as_str(), s.interface.as_str(), s.default))
        .collect();
    assert_eq!(
        summary,
        [
            ("defnet", "eth0", true),
            ("meta-two/macvlan-net", "net1", false),
            ("meta-two/bridge-net", "net2", false)
        ]
    );
    assert_eq!(st[1].mac, "02:aa:bb:cc:dd:01");
    assert_eq!(st[1].ips, ["10.218.1.77"]);
    assert_eq!(st[2].mac, kind("net2").unwrap().1);
    assert_eq!(st[0].gateway, ["10.217.1.1"]);
    assert_eq!(st[2].ips, [netns.addrs("net2")[0].split('/').next().unwrap()]);
    let leased: usize = ["ipam-default", "ipam-macvlan", "ipam-bridge"]
        .iter()
        .map(|p| leases(&d.join(p)).len())
        .sum();
    assert_eq!(leased, 3);

    let check = multus("CHECK", &conf, "sandbox-web", &netns.path(), &args);
    assert!(check.ok, "CHECK: {check:?}");

    let del = multus("DEL", &conf, "sandbox-web", &netns.path(), &args);
    assert!(del.ok, "DEL: {del:?}");
    let left: Vec<String> = netns
        .links()
        .into_iter()
        .map(|l| l.0)
        .filter(|n| n != "lo")
        .collect();
    assert!(left.is_empty(), "interfaces left after DEL: {left:?}");
    for p in ["ipam-default", "ipam-macvlan", "ipam-bridge"] {
        assert_eq!(leases(&d.join(p)), Vec::<String>::new(), "{p} leases after DEL");
    }
    assert!(
        !scratch_dir(d).join("sandbox-web").exists(),
        "the scratch cache is consumed"
    );
    let again = multus("DEL", &conf, "sandbox-web", &netns.path(), &args);
    assert!(again.ok, "second DEL: {again:?}");
}

/// A selected network whose NAD does not exist: ADD fails before anything is attached, with a
/// CNI error naming the pod, the network and the field; a bad `mac` names that field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_nad_fails_naming_pod_network_and_field() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-missing";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (def_br, sec_br) = (format!("md{t}b"), format!("ms{t}b"));
    let _links = HostLinks(vec![def_br.clone(), sec_br.clone()]);
    nad(&w.client, ns, "bridge-net", &bridge_nad(&sec_br, d, 2), None).await;
    let uid = pod(&w.client, ns, "lost", "bridge-net,absent-net", json!({})).await;
    let netns = Netns::new(&format!("meta-{t}-lost"));
    let conf = meta_conf(d, &w.kubeconfig, &def_br, 2);
    let add = multus(
        "ADD",
        &conf,
        "sandbox-lost",
        &netns.path(),
        &containerd_args(ns, "lost", "sandbox-lost", &uid),
    );
    assert!(!add.ok, "ADD must fail: {add:?}");
    let err = add.json();
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!("pod {ns}/lost"))
            && msg.contains("network meta-missing/absent-net")
            && msg.contains("field `name`"),
        "{msg}"
    );
    assert!(msg.contains("element 1"), "{msg}");
    assert_eq!(err["code"], 999);
    assert!(
        netns.links().iter().all(|l| l.0 == "lo"),
        "nothing attached: {:?}",
        netns.links()
    );
    assert!(leases(&d.join("ipam-default")).is_empty() && leases(&d.join("ipam-bridge")).is_empty());

    let uid = pod(
        &w.client,
        ns,
        "badmac",
        r#"[{"name":"bridge-net","mac":"02:zz:00:00:00:01"}]"#,
        json!({}),
    )
    .await;
    let add = multus(
        "ADD",
        &conf,
        "sandbox-badmac",
        &netns.path(),
        &containerd_args(ns, "badmac", "sandbox-badmac", &uid),
    );
    let msg = add.json()["msg"].as_str().unwrap().to_string();
    assert!(
        !add.ok && msg.contains("pod meta-missing/badmac") && msg.contains("field `mac`"),
        "{msg}"
    );
}

/// DEL after the pod object is deleted and its netns is gone: every delegate runs from what
/// ADD cached; every lease is freed; the `@iface` name is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_after_the_pod_object_and_netns_are_gone() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-gone";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (master, def_br, sec_br) = (format!("mv{t}c"), format!("md{t}c"), format!("ms{t}c"));
    let _links = HostLinks::veth(&master, &format!("mv{t}d"))
        .also(&def_br)
        .also(&sec_br);
    nad(&w.client, ns, "macvlan-net", &macvlan_nad(&master, d, 3), None).await;
    nad(&w.client, ns, "bridge-net", &bridge_nad(&sec_br, d, 3), None).await;
    let uid = pod(&w.client, ns, "brief", "bridge-net@side0, macvlan-net", json!({})).await;
    let mut netns = Netns::new(&format!("meta-{t}-brief"));
    let conf = meta_conf(d, &w.kubeconfig, &def_br, 3);
    let args = containerd_args(ns, "brief", "sandbox-brief", &uid);
    let add = multus("ADD", &conf, "sandbox-brief", &netns.path(), &args);
    assert!(add.ok, "ADD: {add:?}");
    let names: Vec<String> = netns.links().into_iter().map(|l| l.0).collect();
    for n in ["eth0", "side0", "net2"] {
        assert!(names.contains(&n.to_string()), "{n} missing: {names:?}");
    }
    let leased: usize = ["ipam-default", "ipam-macvlan", "ipam-bridge"]
        .iter()
        .map(|p| leases(&d.join(p)).len())
        .sum();
    assert_eq!(leased, 3);

    Api::<Pod>::namespaced(w.client.clone(), ns)
        .delete("brief", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let path = netns.path();
    netns.delete();
    let del = multus("DEL", &conf, "sandbox-brief", &path, &args);
    assert!(
        del.ok,
        "DEL: {del:?}\n{}",
        std::fs::read_to_string(d.join("multus.log")).unwrap_or_default()
    );
    for p in ["ipam-default", "ipam-macvlan", "ipam-bridge"] {
        assert_eq!(leases(&d.join(p)), Vec::<String>::new(), "{p} leases after DEL");
    }
    let again = multus("DEL", &conf, "sandbox-brief", &path, &args);
    assert!(again.ok, "second DEL: {again:?}");
}

/// containerd's `io.kubernetes.cri.pod-annotations` runtime config is where the annotations
/// come from when it is sent: the pod object is never read (here it does not even exist), the
/// networks are attached, and the status write is skipped for the absent pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_annotations_from_the_runtime_config() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-rc";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (def_br, sec_br) = (format!("md{t}e"), format!("ms{t}e"));
    let _links = HostLinks(vec![def_br.clone(), sec_br.clone()]);
    nad(&w.client, ns, "bridge-net", &bridge_nad(&sec_br, d, 4), None).await;
    let netns = Netns::new(&format!("meta-{t}-rc"));
    let mut conf = meta_conf(d, &w.kubeconfig, &def_br, 4);
    conf["runtimeConfig"] = json!({"io.kubernetes.cri.pod-annotations": {
        "k8s.v1.cni.cncf.io/networks": r#"[{"name":"bridge-net","ips":["10.219.4.9/24"]}]"#}});
    let args = containerd_args(ns, "no-such-pod", "sandbox-rc", "uid-rc");
    let add = multus("ADD", &conf, "sandbox-rc", &netns.path(), &args);
    assert!(add.ok, "ADD: {add:?}");
    assert_eq!(
        netns.addrs("net1"),
        ["10.219.4.9/24"],
        "CNI_ARGS IP reaches host-local"
    );
    let del = multus("DEL", &conf, "sandbox-rc", &netns.path(), &args);
    assert!(del.ok, "DEL: {del:?}");
    assert!(leases(&d.join("ipam-bridge")).is_empty() && leases(&d.join("ipam-default")).is_empty());
}
