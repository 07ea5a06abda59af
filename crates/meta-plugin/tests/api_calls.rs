//! The API calls one ADD costs, counted by the kube-apiserver itself (`apiserver_request_total`
//! on its `/metrics`): the pod read once (its annotations; the network-status update reuses that
//! read), the NAD read once, `pods/status` updated once. Its own test binary, so its own
//! apiserver (`Cluster::shared` is per binary): no other test's calls land in the counts.
//! Then the case that reuse must survive: the pod changed by someone else during the ADD (a
//! real 409 from the apiserver, a second read, the other writer's change kept).
//!
//! Needs root (netns, links) and the reference plugins; under `CI=true` missing ones fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::json;
use sriov_meta_plugin::status::NETWORK_STATUS_ANNOTATION;
use sriov_testcluster::Cluster;
use sriov_testcluster::metrics::{delta, request_counts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_add_reads_the_pod_and_the_nad_once_and_updates_the_status_once() {
    if !reference_plugins_and_root(&["bridge", "host-local"]) {
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let t = tag();
    let ns = "meta-calls";
    let w = world(cluster, ns).await;
    let d = w.dir.path();
    let (def_br, sec_br) = (format!("cd{t}a"), format!("cs{t}a"));
    let _links = HostLinks(vec![def_br.clone(), sec_br.clone()]);
    let mut ipam = host_local("10.221.1.0/24", &d.join("ipam-default"));
    ipam["routes"] = json!([{"dst": "0.0.0.0/0", "gw": "10.221.1.1"}]);
    let conf = json!({
        "cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
        "kubeconfig": w.kubeconfig, "cniDir": d.join("cni"), "binDir": REFERENCE_PLUGINS,
        "logLevel": "verbose", "logFile": d.join("multus.log"), "logToStderr": false,
        "delegates": [{"cniVersion": "1.0.0", "name": "defnet", "plugins": [{
            "type": "bridge", "bridge": def_br, "isGateway": true, "ipam": ipam}]}],
    });
    let nad_conf = json!({"cniVersion": "1.0.0", "name": "bridge-net", "type": "bridge",
        "bridge": sec_br, "ipam": host_local("10.222.1.0/24", &d.join("ipam-sec"))});
    nad(&w.client, ns, "bridge-net", &nad_conf, None).await;
    let uid = pod(&w.client, ns, "web", "bridge-net", json!({})).await;
    let netns = Netns::new(&format!("calls-{t}-web"));
    let args = containerd_args(ns, "web", "sandbox-web", &uid);

    let before = request_counts(&w.client).await;
    let add = multus("ADD", &conf, "sandbox-web", &netns.path(), &args);
    let calls = calls_since(&w.client, &before).await;
    assert!(
        add.ok,
        "ADD: {add:?}\n{}",
        std::fs::read_to_string(d.join("multus.log")).unwrap_or_default()
    );
    assert!(
        annotation(&w.client, ns, "web", NETWORK_STATUS_ANNOTATION)
            .await
            .is_some(),
        "network-status not written"
    );
    assert_eq!(
        (
            calls.get("GET", "pods"),
            calls.get("GET", "network-attachment-definitions"),
            calls.get("PUT", "pods/status")
        ),
        (1, 1, 1),
        "(GET pods, GET NADs, PUT pods/status) of one ADD; all calls in between: {:?}",
        calls.all
    );
    let del = multus("DEL", &conf, "sandbox-web", &netns.path(), &args);
    assert!(del.ok, "DEL: {del:?}");

    // The pod changes while ADD runs (here a delegate annotates it through the API, as another
    // controller might): the update made from the first read gets a 409 from the apiserver, the
    // pod is read again, and the status is written over the new version without undoing the change.
    let kubectl = sriov_test_support::require_binary!("kubectl");
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let plugin = bin.join("touch-pod");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n\
             {kubectl} --kubeconfig {kc} -n {ns} annotate pod web2 --overwrite touched-during-add=yes >&2 || exit 1\n\
             echo '{{\"cniVersion\":\"1.0.0\"}}'\n",
            kubectl = kubectl.display(),
            kc = cluster.kubeconfig().display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut conf = conf;
    conf["binDir"] = json!(bin);
    nad(
        &w.client,
        ns,
        "touch-net",
        &json!({"cniVersion": "1.0.0", "name": "touch-net", "type": "touch-pod"}),
        None,
    )
    .await;
    let uid = pod(&w.client, ns, "web2", "touch-net", json!({})).await;
    let netns = Netns::new(&format!("calls-{t}-web2"));
    let args = containerd_args(ns, "web2", "sandbox-web2", &uid);
    let before = request_counts(&w.client).await;
    let add = multus("ADD", &conf, "sandbox-web2", &netns.path(), &args);
    let calls = calls_since(&w.client, &before).await;
    assert!(
        add.ok,
        "ADD: {add:?}\n{}",
        std::fs::read_to_string(d.join("multus.log")).unwrap_or_default()
    );
    assert_eq!(
        (
            calls.get("PATCH", "pods"),
            calls.get("GET", "pods"),
            calls.get("PUT", "pods/status")
        ),
        // GETs: kubectl annotate's own read, the ADD's, and the re-read after the 409.
        (1, 3, 2),
        "(PATCH pods by the delegate, GET pods, PUT pods/status): one conflict, one retry; all calls: {:?}",
        calls.all
    );
    assert!(
        annotation(&w.client, ns, "web2", NETWORK_STATUS_ANNOTATION)
            .await
            .is_some()
    );
    assert_eq!(
        annotation(&w.client, ns, "web2", "touched-during-add")
            .await
            .as_deref(),
        Some("yes"),
        "the other writer's change survived the status update"
    );
    let del = multus("DEL", &conf, "sandbox-web2", &netns.path(), &args);
    assert!(del.ok, "DEL: {del:?}");
}

/// The calls made since `before`, per (verb, resource[/subresource]).
struct Calls {
    all: BTreeMap<(String, String), u64>,
}

impl Calls {
    fn get(&self, verb: &str, resource: &str) -> u64 {
        *self
            .all
            .get(&(verb.to_string(), resource.to_string()))
            .unwrap_or(&0)
    }
}

async fn calls_since(client: &kube::Client, before: &BTreeMap<(String, String), u64>) -> Calls {
    Calls {
        all: delta(before, &request_counts(client).await),
    }
}
