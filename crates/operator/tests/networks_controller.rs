//! The network controller (`controller::networks`) against a real kube-apiserver (v1.36.2,
//! sriov-testcluster) with the project's CRDs and Multus' NAD CRD: one controller for the whole
//! test binary, operator namespace `sriov-network-operator`; each test uses its own network
//! names and target namespaces, so the tests run in parallel.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use sriov_api::{
    NadSpec, NetworkAttachmentDefinition, OVSNetwork, OvsNetworkSpec, SriovIBNetwork, SriovIbNetworkSpec,
    SriovNetwork, SriovNetworkSpec,
};
use sriov_operator::controller::OperatorContext;
use sriov_operator::controller::metrics::OperatorMetrics;
use sriov_operator::controller::networks::{self, plan::NAD_FINALIZER};
use sriov_operator::render::{
    NadContext, render_ib_network_nad, render_ovs_network_nad, render_sriov_network_nad,
};
use sriov_testcluster::Cluster;

const OP_NS: &str = "sriov-network-operator";

/// Every test holds a read guard; the one counting the apiserver's writes holds the write
/// guard, so no other test writes meanwhile.
static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
const LIMIT: Duration = Duration::from_secs(20);

fn nad_ctx() -> NadContext {
    NadContext {
        operator_namespace: OP_NS.into(),
        resource_prefix: "openshift.io".into(),
    }
}

struct Running {
    cluster: &'static Cluster,
    metrics: Arc<OperatorMetrics>,
}

/// The cluster with CRDs installed and the controller running on its own thread and runtime
/// (every `#[tokio::test]` has a runtime of its own that ends with the test).
fn running() -> Option<&'static Running> {
    static RUNNING: OnceLock<Option<Running>> = OnceLock::new();
    RUNNING
        .get_or_init(|| {
            let cluster = Cluster::shared()?;
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "sriov_operator=info".into()),
                ))
                .with_test_writer()
                .try_init();
            let metrics = Arc::new(OperatorMetrics::new());
            let m = metrics.clone();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let client = cluster.client().unwrap();
                    let mut crds = sriov_api::crd::sriov_crds();
                    crds.push(sriov_api::crd::nad_crd());
                    sriov_testcluster::crd::install(&client, &crds).await.unwrap();
                    ensure_namespace(&client, OP_NS).await;
                    ready_tx.send(()).unwrap();
                    let ctx = OperatorContext {
                        client,
                        namespace: OP_NS.into(),
                        metrics: m,
                    };
                    networks::run_with(ctx, nad_ctx()).await.unwrap();
                });
            });
            ready_rx.recv_timeout(Duration::from_secs(60)).unwrap();
            Some(Running { cluster, metrics })
        })
        .as_ref()
}

async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("namespace {name}: {e}"),
    }
}

/// Polls `probe` until it returns `Some`, failing with `what` after [`LIMIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn nad_at(client: &Client, ns: &str, name: &str) -> Option<NetworkAttachmentDefinition> {
    Api::<NetworkAttachmentDefinition>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

fn sriov(name: &str, ns: &str, target: &str) -> SriovNetwork {
    let mut n = SriovNetwork::new(
        name,
        SriovNetworkSpec {
            resource_name: "intelnics".into(),
            network_namespace: target.into(),
            vlan: 100,
            ipam: r#"{"type": "host-local", "subnet": "10.56.217.0/24"}"#.into(),
            ..Default::default()
        },
    );
    n.metadata.namespace = Some(ns.into());
    n
}

async fn create_sriov(client: &Client, net: &SriovNetwork) -> SriovNetwork {
    let ns = net.namespace().unwrap();
    Api::<SriovNetwork>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), net)
        .await
        .unwrap()
}

/// The network as stored (with its uid and CRD defaults), rendered: what the NAD must be.
async fn rendered(client: &Client, ns: &str, name: &str) -> NetworkAttachmentDefinition {
    let stored = Api::<SriovNetwork>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    render_sriov_network_nad(&stored, &nad_ctx()).unwrap()
}

fn ready_of(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Option<(String, String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn ready(client: &Client, ns: &str, name: &str) -> Option<(String, String, String)> {
    let n = Api::<SriovNetwork>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()?;
    ready_of(&n.status.map(|s| s.conditions).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_gets_exactly_the_nad_render_gives() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "render-target").await;
    let created = create_sriov(&client, &sriov("render-sriov", OP_NS, "render-target")).await;
    let mut ib = SriovIBNetwork::new(
        "render-ib",
        SriovIbNetworkSpec {
            resource_name: "mlxib".into(),
            network_namespace: "render-target".into(),
            capabilities: r#"{"infinibandGUID": true}"#.into(),
            link_state: "enable".into(),
            ..Default::default()
        },
    );
    ib.metadata.namespace = Some(OP_NS.into());
    Api::<SriovIBNetwork>::namespaced(client.clone(), OP_NS)
        .create(&PostParams::default(), &ib)
        .await
        .unwrap();
    let mut ovs = OVSNetwork::new(
        "render-ovs",
        OvsNetworkSpec {
            resource_name: "ovsnics".into(),
            bridge: "br-sriov".into(),
            vlan: 10,
            mtu: 1500,
            ..Default::default()
        },
    );
    ovs.metadata.namespace = Some("render-target".into());
    Api::<OVSNetwork>::namespaced(client.clone(), "render-target")
        .create(&PostParams::default(), &ovs)
        .await
        .unwrap();

    let want = rendered(&client, OP_NS, &created.name_any()).await;
    let stored_ib = Api::<SriovIBNetwork>::namespaced(client.clone(), OP_NS)
        .get("render-ib")
        .await
        .unwrap();
    let want_ib = render_ib_network_nad(&stored_ib, &nad_ctx()).unwrap();
    let stored_ovs = Api::<OVSNetwork>::namespaced(client.clone(), "render-target")
        .get("render-ovs")
        .await
        .unwrap();
    let want_ovs = render_ovs_network_nad(&stored_ovs, &nad_ctx()).unwrap();
    for want in [want, want_ib, want_ovs] {
        let name = want.name_any();
        let got = eventually(&format!("NAD {name}"), || nad_at(&client, "render-target", &name)).await;
        assert_eq!(got.spec.config, want.spec.config, "{name}");
        assert_eq!(got.metadata.annotations, want.metadata.annotations, "{name}");
        assert_eq!(
            got.metadata.owner_references, want.metadata.owner_references,
            "{name}"
        );
    }
    assert!(
        r.metrics
            .encode()
            .unwrap()
            .contains("sriov_operator_reconcile_duration_seconds_count{controller=\"networks\"}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_in_its_own_namespace_owns_its_nad_and_the_garbage_collector_deletes_it() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "app-owned").await;
    let net = create_sriov(&client, &sriov("owned", "app-owned", "")).await;
    let nad = eventually("NAD app-owned/owned", || nad_at(&client, "app-owned", "owned")).await;
    let refs = nad.metadata.owner_references.clone().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (
            refs[0].api_version.as_str(),
            refs[0].kind.as_str(),
            refs[0].name.as_str()
        ),
        ("sriovnetwork.openshift.io/v1", "SriovNetwork", "owned")
    );
    assert_eq!(Some(&refs[0].uid), net.metadata.uid.as_ref());
    // Outside the operator namespace upstream adds no finalizer: the ownerReference suffices.
    let stored = Api::<SriovNetwork>::namespaced(client.clone(), "app-owned")
        .get("owned")
        .await
        .unwrap();
    assert!(stored.finalizers().is_empty(), "{:?}", stored.finalizers());

    // The real garbage collector (kube-controller-manager) follows the ownerReference.
    let Some(()) = sriov_testcluster::require(r.cluster.start_control_loops()) else {
        return;
    };
    Api::<SriovNetwork>::namespaced(client.clone(), "app-owned")
        .delete("owned", &DeleteParams::default())
        .await
        .unwrap();
    eventually("NAD app-owned/owned garbage-collected", || async {
        nad_at(&client, "app-owned", "owned")
            .await
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_namespace_network_has_the_finalizer_and_its_deletion_deletes_the_nad() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "app-cross").await;
    create_sriov(&client, &sriov("cross", OP_NS, "app-cross")).await;
    let nad = eventually("NAD app-cross/cross", || nad_at(&client, "app-cross", "cross")).await;
    assert_eq!(
        nad.metadata.owner_references, None,
        "no ownerReference across namespaces"
    );
    let networks = Api::<SriovNetwork>::namespaced(client.clone(), OP_NS);
    // The finalizer is written before the NAD and the annotation after it (three writes, as
    // upstream): wait for the object to carry both rather than read between the writes.
    let last_ns = |n: &SriovNetwork| {
        n.annotations()
            .get("operator.sriovnetwork.openshift.io/last-network-namespace")
            .cloned()
    };
    let stored = eventually("finalizer and last-network-namespace", || async {
        let n = networks.get("cross").await.unwrap();
        let done = n.finalizers().iter().any(|f| f == NAD_FINALIZER) && last_ns(&n).is_some();
        done.then_some(n)
    })
    .await;
    assert_eq!(last_ns(&stored).as_deref(), Some("app-cross"));

    // A new target namespace: the NAD moves (upstream's last-network-namespace annotation).
    ensure_namespace(&client, "app-cross-2").await;
    networks
        .patch(
            "cross",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"networkNamespace": "app-cross-2"}})),
        )
        .await
        .unwrap();
    eventually("NAD moved to app-cross-2", || async {
        let old_gone = nad_at(&client, "app-cross", "cross").await.is_none();
        let new_there = nad_at(&client, "app-cross-2", "cross").await.is_some();
        (old_gone && new_there).then_some(())
    })
    .await;

    networks.delete("cross", &DeleteParams::default()).await.unwrap();
    eventually("NAD and network gone", || async {
        let nad_gone = nad_at(&client, "app-cross-2", "cross").await.is_none();
        let net_gone = networks.get_opt("cross").await.unwrap().is_none();
        (nad_gone && net_gone).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nad_edited_by_hand_is_restored_and_an_unchanged_one_is_not_rewritten() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "app-edit").await;
    create_sriov(&client, &sriov("edited", OP_NS, "app-edit")).await;
    let want = rendered(&client, OP_NS, "edited").await;
    let nads = Api::<NetworkAttachmentDefinition>::namespaced(client.clone(), "app-edit");
    let first = eventually("NAD", || nad_at(&client, "app-edit", "edited")).await;

    // Touching the network without changing what renders writes nothing to the NAD.
    let networks = Api::<SriovNetwork>::namespaced(client.clone(), OP_NS);
    networks
        .patch(
            "edited",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_touch = nads.get("edited").await.unwrap();
    assert_eq!(
        after_touch.resource_version(),
        first.resource_version(),
        "NAD rewritten with no change"
    );

    // `kubectl edit`: a full update with another config and without the resource annotation.
    let mut edited = after_touch.clone();
    edited.spec = NadSpec {
        config: "{\"cniVersion\": \"1.0.0\", \"type\": \"bridge\"}".into(),
    };
    edited
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove("k8s.v1.cni.cncf.io/resourceName");
    nads.replace("edited", &PostParams::default(), &edited)
        .await
        .unwrap();
    eventually("config and annotation restored", || async {
        let n = nads.get("edited").await.unwrap();
        (n.spec == want.spec && n.metadata.annotations == want.metadata.annotations).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nad_deleted_by_hand_comes_back() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "app-deleted").await;
    create_sriov(&client, &sriov("deleted", OP_NS, "app-deleted")).await;
    let first = eventually("NAD", || nad_at(&client, "app-deleted", "deleted")).await;
    let nads = Api::<NetworkAttachmentDefinition>::namespaced(client.clone(), "app-deleted");
    nads.delete("deleted", &DeleteParams::default()).await.unwrap();
    let back = eventually("NAD recreated", || async {
        nad_at(&client, "app-deleted", "deleted")
            .await
            .filter(|n| n.metadata.uid != first.metadata.uid)
    })
    .await;
    assert_eq!(back.spec, first.spec);
    assert_eq!(back.metadata.annotations, first.metadata.annotations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_namespace_created_later_gets_its_nad() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    create_sriov(&client, &sriov("late", OP_NS, "app-late")).await;
    let waiting = eventually("Ready=False NamespaceNotFound", || async {
        ready(&client, OP_NS, "late").await.filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        waiting,
        (
            "False".to_string(),
            "NamespaceNotFound".to_string(),
            "target namespace \"app-late\" does not exist".to_string()
        )
    );
    assert!(nad_at(&client, "app-late", "late").await.is_none());

    ensure_namespace(&client, "app-late").await;
    let want = rendered(&client, OP_NS, "late").await;
    let nad = eventually("NAD in the new namespace", || nad_at(&client, "app-late", "late")).await;
    assert_eq!(nad.spec, want.spec);
    eventually("Ready=True", || async {
        ready(&client, OP_NS, "late").await.filter(|c| c.0 == "True")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_say_ready_invalid_or_owned_by_another_with_upstream_reasons_and_events() {
    let _shared = EXCLUSIVE.read().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "app-cond").await;

    // Ready.
    create_sriov(&client, &sriov("cond-ok", OP_NS, "app-cond")).await;
    let ok = eventually("Ready=True", || async {
        ready(&client, OP_NS, "cond-ok").await.filter(|c| c.0 == "True")
    })
    .await;
    assert_eq!(ok.1, "NetworkReady");
    assert_eq!(ok.2, "NetworkAttachmentDefinition is provisioned and ready");
    let stored = Api::<SriovNetwork>::namespaced(client.clone(), OP_NS)
        .get("cond-ok")
        .await
        .unwrap();
    let cond = stored.status.unwrap().conditions;
    assert_eq!(cond[0].observed_generation, stored.metadata.generation);

    // spec.networkNamespace on a network outside the operator namespace.
    create_sriov(&client, &sriov("cond-misplaced", "app-cond", "elsewhere")).await;
    let misplaced = eventually("Ready=False invalid", || {
        ready(&client, "app-cond", "cond-misplaced")
    })
    .await;
    assert_eq!(
        misplaced,
        (
            "False".to_string(),
            "NetworkAttachmentDefinitionInvalid".to_string(),
            "spec.networkNamespace cannot be set when the resource is not in the operator namespace (sriov-network-operator)".to_string()
        )
    );

    // A NAD of that name owned by another network is left alone.
    let nads = Api::<NetworkAttachmentDefinition>::namespaced(client.clone(), "app-cond");
    let mut theirs = NetworkAttachmentDefinition::new("cond-taken", NadSpec { config: "{}".into() });
    theirs.metadata.annotations = Some(
        [(
            "sriovnetwork.openshift.io/owner-ref".to_string(),
            "SriovNetwork.sriovnetwork.openshift.io/other/cond-taken".to_string(),
        )]
        .into(),
    );
    nads.create(&PostParams::default(), &theirs).await.unwrap();
    create_sriov(&client, &sriov("cond-taken", OP_NS, "app-cond")).await;
    let taken = eventually("Ready=False owned", || ready(&client, OP_NS, "cond-taken")).await;
    assert_eq!(taken.0, "False");
    assert_eq!(taken.1, "NetworkAttachmentDefinitionInvalid");
    assert_eq!(
        taken.2,
        "NetworkAttachmentDefinition 'app-cond/cond-taken' already exists and is owned by SriovNetwork.sriovnetwork.openshift.io/other/cond-taken"
    );
    assert_eq!(nads.get("cond-taken").await.unwrap().spec.config, "{}");

    // Upstream's event for the first condition.
    let events = Api::<Event>::namespaced(client.clone(), OP_NS);
    eventually("ReadyAdded event", || async {
        let list = events.list(&ListParams::default()).await.unwrap();
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("ReadyAdded")
                    && e.regarding.as_ref().and_then(|o| o.name.as_deref()) == Some("cond-ok")
            })
            .then_some(())
    })
    .await;
}

/// `apiserver_request_total` of writes (create, update, patch, delete) to NADs, the network
/// kinds and Events.
async fn writes(client: &Client) -> u64 {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let resources = [
        "network-attachment-definitions",
        "sriovnetworks",
        "sriovibnetworks",
        "ovsnetworks",
        "events",
    ];
    let verbs = ["POST", "PUT", "PATCH", "DELETE", "APPLY"];
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| verbs.iter().any(|v| l.contains(&format!("verb=\"{v}\""))))
        .filter(|l| resources.iter().any(|r| l.contains(&format!("resource=\"{r}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_converged_the_controller_writes_nothing() {
    let _alone = EXCLUSIVE.write().await;
    let Some(r) = running() else { return };
    let client = r.cluster.client().unwrap();
    ensure_namespace(&client, "app-quiet").await;
    let start = writes(&client).await;
    create_sriov(&client, &sriov("quiet", OP_NS, "app-quiet")).await;
    eventually("Ready=True", || async {
        ready(&client, OP_NS, "quiet").await.filter(|c| c.0 == "True")
    })
    .await;
    // The counter counts: the network's create, its finalizer, its NAD, its annotation, its
    // status and the event are all writes.
    let converged = writes(&client).await;
    println!("writes to converge one network: {}", converged - start);
    assert!(converged - start >= 5, "{start} → {converged}");
    // Whatever earlier tests left in flight (garbage collection, their last reconciles) settles;
    // then a 5 s window must pass without a single write. A controller that rewrites its status
    // or its NADs on every event it causes never gets there.
    let window = Duration::from_secs(5);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let before = writes(&client).await;
        tokio::time::sleep(window).await;
        let after = writes(&client).await;
        println!(
            "writes to NADs, networks and events in {window:?}: {}",
            after - before
        );
        if after == before {
            break;
        }
        assert!(Instant::now() < deadline, "the controller never went quiet");
    }
}
