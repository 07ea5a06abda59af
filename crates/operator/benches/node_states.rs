//! The node-state controller on the real kube-apiserver (sriov-testcluster): 1,000 Nodes with
//! reported hardware (4 E810 PFs each, 20 pools of 50 nodes) × 50 policies (policy p selects
//! pool p % 20 and PF p / 20, 8 VFs). Measures, with the controller running as a child process
//! (this binary re-executed, so its RSS is the controller's alone):
//! 1. policies applied → every node state, the ConfigMap and every label converged;
//! 2. one policy's numVfs changed (50 nodes affected) → converged;
//! 3. 30 quiet seconds.
//!
//! It prints the API requests of each phase by verb and resource (the API server's own
//! `apiserver_request_total`; the controller's Events are listed under `events` and counted
//! apart from the writes the targets are about), the child's RSS, and the render core alone on
//! the same input.
//!
//! The floor, measured in the same run before the controller starts: the API server's time for
//! exactly the writes each phase needs, sent the way the controller sends them (server-side
//! apply of the same node-state bodies and of the same ConfigMap, merge patches of the Node
//! label, at the controller's concurrency, with two watchers on the node states as during the
//! phases), on copies in a namespace the controller does not watch. The controller cannot be
//! faster than that; the distance to it is the controller's own cost. Each target gets one
//! `SUMMARY` line: measured, target, floor.
//!
//! Upstream v1.6.0 measured on this machine with this shape: 82 s to converge, 65 s for the
//! change, 97 MiB RSS. Targets: converge <= 2 s, change <= 0.5 s with writes only for the
//! affected nodes, 0 requests when quiet, <= 40 MiB.
#![allow(clippy::unwrap_used)]

#[path = "../tests/node_states_support/mod.rs"]
mod node_states_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use node_states_support::*;
use serde_json::json;
use sriov_api::{
    NicSelector, NodePolicySpec, NodeStateSpec, SriovNetworkNodePolicy, SriovNetworkNodeState,
    SriovOperatorConfig,
};
use sriov_host::InterfaceExt;
use sriov_operator::admission::nics::SupportedNics;
use sriov_operator::controller::OperatorContext;
use sriov_operator::controller::metrics::OperatorMetrics;
use sriov_operator::controller::node_states::plan::{Observed, plan_writes};
use sriov_operator::controller::node_states::{NodeStatesOptions, node_state_body, run_with};
use sriov_operator::render::{ClusterInput, ClusterRender, NodeInfo, render_cluster};
use sriov_testcluster::Cluster;
use sriov_testcluster::metrics::{delta, request_counts};

const CHILD_ENV: &str = "SRIOV_NODE_STATES_BENCH_CHILD";
const NS: &str = "sriov-network-operator";
/// Where the floor is measured: copies of the node states and ConfigMap, unwatched by the controller.
const FLOOR_NS: &str = "node-states-floor";
const LABEL: &str = "sriovnetwork.openshift.io/device-plugin";
const NODES: usize = 1000;
const POLICIES: usize = 50;
const POOLS: usize = 20;
const PFS: usize = 4;

fn main() {
    if let Ok(kubeconfig) = std::env::var(CHILD_ENV) {
        return child(&kubeconfig);
    }
    let Some(cluster) = Cluster::shared() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(parent(cluster));
}

/// The controller alone, as the operator binary runs it.
fn child(kubeconfig: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let ctx = OperatorContext {
            client: kube::Client::try_from(config).unwrap(),
            namespace: NS.to_string(),
            metrics: Arc::new(OperatorMetrics::new()),
        };
        run_with(ctx, NodeStatesOptions::default()).await.unwrap();
    });
}

fn node_labels(n: usize) -> BTreeMap<String, String> {
    labels(&[
        ("node-role.kubernetes.io/worker", ""),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/hostname", &format!("node-{n:04}")),
        ("sriov-pool", &format!("pool-{:02}", n % POOLS)),
    ])
}

fn interfaces() -> Vec<InterfaceExt> {
    (0..PFS)
        .map(|i| e810(&format!("ens{i}"), &format!("0000:3b:00.{i}")))
        .collect()
}

fn policy(p: usize, num_vfs: i32) -> SriovNetworkNodePolicy {
    let mut policy = SriovNetworkNodePolicy::new(
        &format!("policy-{p:03}"),
        NodePolicySpec {
            resource_name: format!("res{p:03}"),
            node_selector: BTreeMap::from([("sriov-pool".to_string(), format!("pool-{:02}", p % POOLS))]),
            num_vfs,
            nic_selector: NicSelector {
                pf_names: vec![format!("ens{}", p / POOLS)],
                ..Default::default()
            },
            device_type: "netdevice".into(),
            ..Default::default()
        },
    );
    policy.metadata.namespace = Some(NS.into());
    policy
}

struct Input {
    nodes: Vec<NodeInfo>,
    interfaces: BTreeMap<String, Vec<InterfaceExt>>,
    policies: Vec<SriovNetworkNodePolicy>,
}

impl Input {
    fn render(&self) -> ClusterRender {
        let nics = SupportedNics::builtin();
        render_cluster(&ClusterInput {
            namespace: NS,
            operator_config: Some(&Default::default()),
            nodes: &self.nodes,
            interfaces: &self.interfaces,
            policies: &self.policies,
            pools: &[],
            supported_nics: &nics,
        })
        .unwrap()
    }
}

/// The parent's own view of the cluster (one LIST + WATCH each, opened before any measure).
struct View {
    states: Store<SriovNetworkNodeState>,
    config_maps: Store<ConfigMap>,
    nodes: Store<PartialObjectMeta<Node>>,
}

fn watch<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .try_for_each(|_| std::future::ready(Ok(())));
    tokio::spawn(stream);
    reader
}

fn states_converged(view: &View, expected: &ClusterRender) -> bool {
    let states = view.states.state();
    if states.len() != expected.node_states.len() {
        return false;
    }
    states.iter().all(|s| {
        s.metadata
            .name
            .as_ref()
            .and_then(|n| expected.node_states.get(n))
            .is_some_and(|e| *e == s.spec)
    })
}

fn converged(view: &View, expected: &ClusterRender) -> bool {
    let cm_ok = view
        .config_maps
        .find(|c| c.metadata.name.as_deref() == Some("device-plugin-config"))
        .is_some_and(|c| c.data.as_ref() == Some(&expected.device_plugin_config));
    let labels_ok = view.nodes.state().iter().all(|n| {
        let name = n.metadata.name.clone().unwrap_or_default();
        let label = n.metadata.labels.as_ref().and_then(|l| l.get(LABEL));
        expected.device_plugin_labels.get(&name).copied() == label.map(String::as_str)
    });
    cm_ok && labels_ok && states_converged(view, expected)
}

/// Time from `start` until the node states match `expected`, then until everything does.
async fn wait_converged(
    view: &View,
    expected: &ClusterRender,
    start: Instant,
    limit: Duration,
) -> (Duration, Duration) {
    while !states_converged(view, expected) {
        assert!(
            start.elapsed() < limit,
            "node states not converged after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let states = start.elapsed();
    while !converged(view, expected) {
        assert!(start.elapsed() < limit, "not converged after {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (states, start.elapsed())
}

/// Waits until no write (the controller's Events included) reached the API server for 1 s, at
/// most 60 s: a phase's counts then hold everything it caused, and the quiet phase nothing of it.
async fn settle(client: &kube::Client) {
    let start = Instant::now();
    let mut last = write_total(&request_counts(client).await);
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_secs(1) && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = write_total(&request_counts(client).await);
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
}

fn write_total(counts: &BTreeMap<(String, String), u64>) -> u64 {
    counts
        .iter()
        .filter(|((verb, _), _)| WRITE_VERBS.contains(&verb.as_str()))
        .map(|(_, n)| n)
        .sum()
}

fn print_requests(what: &str, counts: &BTreeMap<(String, String), u64>) {
    let total: u64 = counts.values().sum();
    println!("  API requests during {what}: {total}");
    for ((verb, resource), n) in counts {
        println!("    {verb:<7} {resource:<40} {n}");
    }
}

/// Requests made by the controller: the phase's counts less what the benchmark itself sent.
fn without(
    counts: &BTreeMap<(String, String), u64>,
    own: &[(&str, &str, u64)],
) -> BTreeMap<(String, String), u64> {
    let mut out = counts.clone();
    for (verb, resource, n) in own {
        let key = (verb.to_string(), resource.to_string());
        if let Some(v) = out.get_mut(&key) {
            *v = v.saturating_sub(*n);
            if *v == 0 {
                out.remove(&key);
            }
        }
    }
    out
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The owner reference the controller's writes carry (the `default` SriovOperatorConfig's).
async fn operator_config_owner(client: &kube::Client, ns: &str) -> OwnerReference {
    let config = Api::<SriovOperatorConfig>::namespaced(client.clone(), ns)
        .get("default")
        .await
        .unwrap();
    OwnerReference {
        api_version: sriov_api::API_VERSION.into(),
        kind: "SriovOperatorConfig".into(),
        name: "default".into(),
        uid: config.metadata.uid.unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Server-side applies of `specs` to the node states in `ns`, `concurrency` at once, as the
/// controller sends them (same body, same field manager, forced); returns the time taken.
async fn apply_node_states(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
    specs: &BTreeMap<String, NodeStateSpec>,
    concurrency: usize,
) -> Duration {
    let api: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), ns);
    let apply = PatchParams::apply("sriov-network-operator").force();
    let started = Instant::now();
    futures::stream::iter(specs)
        .map(|(name, spec)| {
            let (api, apply) = (&api, &apply);
            let body = node_state_body(ns, name, owner, spec, None);
            async move {
                api.patch_metadata(name, apply, &Patch::Apply(&body))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// Server-side apply of the device-plugin ConfigMap with `data` in `ns`.
async fn apply_config_map(
    client: &kube::Client,
    ns: &str,
    owner: &OwnerReference,
    data: &BTreeMap<String, String>,
) {
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "device-plugin-config", "namespace": ns, "ownerReferences": [owner]},
        "data": data,
    });
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .patch(
            "device-plugin-config",
            &PatchParams::apply("sriov-network-operator").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
}

/// Merge patches of one Node label on every Node, `concurrency` at once.
async fn label_nodes(client: &kube::Client, key: &str, value: &str, concurrency: usize) -> Duration {
    let api: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    futures::stream::iter(0..NODES)
        .map(|n| {
            let api = &api;
            let body = json!({"metadata": {"labels": {key: value}}});
            async move {
                api.patch(
                    &format!("node-{n:04}"),
                    &PatchParams::default(),
                    &Patch::Merge(&body),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// The floor of each phase's writes, measured on the copies in [`FLOOR_NS`].
struct Floor {
    concurrency: usize,
    /// 1,000 node-state applies (the converge's specs) at the controller's concurrency.
    states: Duration,
    /// The ConfigMap apply (the converge's data) after them.
    config_map: Duration,
    /// 1,000 Node label merge patches.
    labels: Duration,
    /// The change: the affected nodes' applies and the ConfigMap apply, concurrently.
    change: Duration,
    /// Node-state applies per concurrency, to show where the API server saturates.
    by_concurrency: Vec<(usize, Duration)>,
}

async fn measure_floor(
    client: &kube::Client,
    converged: &ClusterRender,
    changed: &ClusterRender,
    concurrency: usize,
) -> Floor {
    create_namespace(client, FLOOR_NS).await;
    create_operator_config(client, FLOOR_NS, BTreeMap::new()).await;
    let owner = operator_config_owner(client, FLOOR_NS).await;
    // Two watchers on the node states, as during the phases (the controller's and the
    // benchmark's own).
    let watchers: Vec<Store<SriovNetworkNodeState>> = (0..2)
        .map(|_| watch(Api::namespaced(client.clone(), FLOOR_NS)))
        .collect();
    for w in &watchers {
        w.wait_until_ready().await.unwrap();
    }
    let ifaces = interfaces();
    futures::stream::iter(0..NODES)
        .map(|n| {
            let (client, ifaces) = (client.clone(), ifaces.clone());
            async move { report_interfaces(&client, FLOOR_NS, &format!("node-{n:04}"), &ifaces).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let empty: BTreeMap<String, NodeStateSpec> = converged
        .node_states
        .keys()
        .map(|n| (n.clone(), NodeStateSpec::default()))
        .collect();
    // Adopted with empty specs, as the controller finds them before the policies.
    apply_node_states(client, FLOOR_NS, &owner, &empty, concurrency).await;
    let no_policy: BTreeMap<String, String> = converged
        .device_plugin_config
        .keys()
        .map(|n| (n.clone(), "{\"resourceList\":[]}".to_string()))
        .collect();
    apply_config_map(client, FLOOR_NS, &owner, &no_policy).await;

    // The same specs with the policies' VFs moved, so that every apply changes something.
    let mut by_concurrency = Vec::new();
    for (round, c) in [4usize, 16, 64].into_iter().enumerate() {
        let specs: BTreeMap<String, NodeStateSpec> = converged
            .node_states
            .iter()
            .map(|(n, s)| {
                let mut s = s.clone();
                for i in &mut s.interfaces {
                    i.num_vfs += 1 + round as i32;
                }
                (n.clone(), s)
            })
            .collect();
        by_concurrency.push((c, apply_node_states(client, FLOOR_NS, &owner, &specs, c).await));
    }
    let states = apply_node_states(client, FLOOR_NS, &owner, &converged.node_states, concurrency).await;
    by_concurrency.push((concurrency, states));
    by_concurrency.sort();
    let started = Instant::now();
    apply_config_map(client, FLOOR_NS, &owner, &converged.device_plugin_config).await;
    let config_map = started.elapsed();
    label_nodes(client, "node-states-floor", "a", concurrency).await;
    let labels = label_nodes(client, "node-states-floor", "b", concurrency).await;

    let affected: BTreeMap<String, NodeStateSpec> = changed
        .node_states
        .iter()
        .filter(|(n, s)| converged.node_states.get(*n) != Some(*s))
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect();
    let started = Instant::now();
    futures::join!(
        apply_node_states(client, FLOOR_NS, &owner, &affected, concurrency),
        apply_config_map(client, FLOOR_NS, &owner, &changed.device_plugin_config),
    );
    let change = started.elapsed();
    Floor {
        concurrency,
        states,
        config_map,
        labels,
        change,
        by_concurrency,
    }
}

async fn parent(cluster: &'static Cluster) {
    let client = cluster.client().unwrap();
    install_crds(&client).await;
    create_namespace(&client, NS).await;
    create_operator_config(&client, NS, BTreeMap::new()).await;

    // Setup: 1,000 Nodes, then their node states with reported hardware.
    let ifaces = interfaces();
    let started = Instant::now();
    futures::stream::iter(0..NODES)
        .map(|n| {
            let client = client.clone();
            async move { create_node(&client, &format!("node-{n:04}"), &node_labels(n)).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let node_posts = started.elapsed();
    futures::stream::iter(0..NODES)
        .map(|n| {
            let (client, ifaces) = (client.clone(), ifaces.clone());
            async move { report_interfaces(&client, NS, &format!("node-{n:04}"), &ifaces).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!(
        "setup: {NODES} Node POSTs in {:.2} s ({:.0}/s at 16 in flight), node states + status in {:.2} s",
        node_posts.as_secs_f64(),
        NODES as f64 / node_posts.as_secs_f64(),
        (started.elapsed() - node_posts).as_secs_f64()
    );

    let mut input = Input {
        nodes: (0..NODES)
            .map(|n| NodeInfo {
                name: format!("node-{n:04}"),
                labels: node_labels(n),
            })
            .collect(),
        interfaces: (0..NODES)
            .map(|n| (format!("node-{n:04}"), ifaces.clone()))
            .collect(),
        policies: Vec::new(),
    };
    let adopted = input.render();
    input.policies = (0..POLICIES).map(|p| policy(p, 8)).collect();
    let expected = input.render();
    input.policies[0] = policy(0, 16);
    let expected_change = input.render();
    input.policies[0] = policy(0, 8);

    let options = NodeStatesOptions::default();
    let floor = measure_floor(&client, &expected, &expected_change, options.concurrency).await;

    let view = View {
        states: watch(Api::namespaced(client.clone(), NS)),
        config_maps: watch(Api::namespaced(client.clone(), NS)),
        nodes: watch(Api::all(client.clone())),
    };
    view.states.wait_until_ready().await.unwrap();
    view.config_maps.wait_until_ready().await.unwrap();
    view.nodes.wait_until_ready().await.unwrap();

    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .env(CHILD_ENV, cluster.kubeconfig())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Setup, still: the controller syncs its caches and adopts the node states (no policy
    // yet: empty specs, labels Disabled, the ConfigMap created).
    let (adopted_states, adopted_all) =
        wait_converged(&view, &adopted, started, Duration::from_secs(120)).await;
    println!(
        "setup: controller started, caches synced and {NODES} node states adopted in {:.2} s (labels and ConfigMap {:.2} s)",
        adopted_states.as_secs_f64(),
        adopted_all.as_secs_f64()
    );
    settle(&client).await;

    // 1. Policies applied → converged.
    let policies: Api<SriovNetworkNodePolicy> = Api::namespaced(client.clone(), NS);
    let before = request_counts(&client).await;
    let started = Instant::now();
    futures::stream::iter(input.policies.clone())
        .map(|p| {
            let policies = policies.clone();
            async move { policies.create(&PostParams::default(), &p).await.unwrap() }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let applied = started.elapsed();
    let (converge_states, converge_all) =
        wait_converged(&view, &expected, started, Duration::from_secs(300)).await;
    settle(&client).await;
    let phase1 = without(
        &delta(&before, &request_counts(&client).await),
        &[("POST", "sriovnetworknodepolicies", POLICIES as u64)],
    );

    // 2. One policy's numVfs changed.
    input.policies[0] = policy(0, 16);
    let current: BTreeMap<String, _> = view
        .states
        .state()
        .iter()
        .map(|s| (s.metadata.name.clone().unwrap_or_default(), s.spec.clone()))
        .collect();
    let affected = expected_change
        .node_states
        .iter()
        .filter(|&(name, spec)| current.get(name) != Some(spec))
        .count();
    let before = request_counts(&client).await;
    let started = Instant::now();
    let patch = json!({"spec": {"numVfs": 16}});
    policies
        .patch("policy-000", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let (change_states, change_all) =
        wait_converged(&view, &expected_change, started, Duration::from_secs(300)).await;
    settle(&client).await;
    let phase2 = without(
        &delta(&before, &request_counts(&client).await),
        &[("PATCH", "sriovnetworknodepolicies", 1)],
    );

    // 3. Quiet.
    let before = request_counts(&client).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let phase3 = delta(&before, &request_counts(&client).await);
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    child.kill().unwrap();
    child.wait().unwrap();

    // The render core alone on the same input (what `sriovctl render` does), and the plan.
    let mut renders = Vec::new();
    let mut plans = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let render = std::hint::black_box(input.render());
        renders.push(t.elapsed());
        let observed = Observed::converged(&render);
        let t = Instant::now();
        let plan = plan_writes(
            &render,
            &observed,
            jiff::Timestamp::now(),
            Duration::from_secs(1800),
        );
        plans.push(t.elapsed());
        assert!(plan.is_empty());
    }
    renders.sort();
    plans.sort();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let c = floor.concurrency;
    println!(
        "node-state controller, {NODES} nodes x {POLICIES} policies (4 PFs each), controller as a child process, {c} writes in flight:"
    );
    let curve: Vec<String> = floor
        .by_concurrency
        .iter()
        .map(|(c, d)| format!("{c} in flight {:.0} ms", ms(*d)))
        .collect();
    println!(
        "  floor (API server alone, same run): {NODES} node-state applies: {}; ConfigMap apply {:.0} ms; {NODES} label patches {:.0} ms; the change's {affected} applies + ConfigMap {:.0} ms",
        curve.join(", "),
        ms(floor.config_map),
        ms(floor.labels),
        ms(floor.change)
    );
    println!(
        "  converge: node states {:.0} ms, with ConfigMap and labels {:.0} ms, from the first policy POST ({:.0} ms to POST all 50)",
        ms(converge_states),
        ms(converge_all),
        ms(applied)
    );
    print_requests("converge (the benchmark's 50 policy POSTs excluded)", &phase1);
    println!(
        "  one policy's numVfs 8 -> 16: node states {:.0} ms, with ConfigMap {:.0} ms",
        ms(change_states),
        ms(change_all)
    );
    print_requests("the change (the benchmark's policy PATCH excluded)", &phase2);
    print_requests("30 quiet seconds", &phase3);
    println!(
        "  render core alone (sriovctl render's): median {:.1} ms (min {:.1}, max {:.1}); plan_writes on a converged cluster: median {:.2} ms",
        ms(renders[2]),
        ms(renders[0]),
        ms(renders[4]),
        ms(plans[2])
    );

    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let node_state_writes = |c: &BTreeMap<(String, String), u64>| writes(c, "sriovnetworknodestates");
    let events = |c: &BTreeMap<(String, String), u64>| writes(c, "events");
    // The API server renews its identity Lease and reconciles the `kubernetes` Service's
    // endpoints on a timer: writes during every phase that are not the controller's.
    let apiserver_own = |c: &BTreeMap<(String, String), u64>| -> u64 {
        ["leases", "endpoints", "endpointslices"]
            .iter()
            .map(|r| writes(c, r))
            .sum()
    };
    let other_writes = |c: &BTreeMap<(String, String), u64>| {
        write_total(c)
            - node_state_writes(c)
            - events(c)
            - writes(c, "configmaps")
            - writes(c, "nodes")
            - apiserver_own(c)
    };
    println!(
        "SUMMARY converge: node states {:.0} ms | target <= 2000 ms | floor {:.0} ms ({NODES} applies at {c} in flight) | {} | writes: {} node states, {} ConfigMap, {} Node labels, {} other; {} Events and {} of the API server's own Lease/endpoints apart | upstream v1.6.0 82 s",
        ms(converge_states),
        ms(floor.states),
        verdict(converge_states <= Duration::from_secs(2)),
        node_state_writes(&phase1),
        writes(&phase1, "configmaps"),
        writes(&phase1, "nodes"),
        other_writes(&phase1),
        events(&phase1),
        apiserver_own(&phase1)
    );
    println!(
        "SUMMARY converge with ConfigMap and labels: {:.0} ms | no target | floor {:.0} ms (node states + ConfigMap + {NODES} label patches, one after the other)",
        ms(converge_all),
        ms(floor.states + floor.config_map + floor.labels)
    );
    let only_affected = node_state_writes(&phase2) == affected as u64
        && writes(&phase2, "nodes") == 0
        && other_writes(&phase2) == 0;
    println!(
        "SUMMARY change: node states {:.0} ms (with ConfigMap {:.0} ms) | target <= 500 ms, writes only for the affected nodes | floor {:.0} ms ({affected} applies + ConfigMap) | {} | writes: {} node states for {affected} affected, {} ConfigMap, {} Node, {} other; {} Events and {} of the API server's own apart | upstream 65 s",
        ms(change_states),
        ms(change_all),
        ms(floor.change),
        verdict(change_states <= Duration::from_millis(500) && only_affected),
        node_state_writes(&phase2),
        writes(&phase2, "configmaps"),
        writes(&phase2, "nodes"),
        other_writes(&phase2),
        events(&phase2),
        apiserver_own(&phase2)
    );
    // The API server's own endpoint and lease reconcilers and discovery GETs are not the
    // controller's: count what the controller reads and writes.
    let ours = |(_, res): &(String, String)| {
        ["sriovnetwork", "nodes", "configmaps", "events"]
            .iter()
            .any(|r| res.starts_with(r))
    };
    let quiet: u64 = phase3.iter().filter(|(k, _)| ours(k)).map(|(_, n)| n).sum();
    println!(
        "SUMMARY quiet: {quiet} requests on node states, policies, Nodes, ConfigMaps, Events in 30 s | target 0 | {} | upstream 1,203 GETs",
        verdict(quiet == 0)
    );
    println!(
        "SUMMARY rss: {:.1} MiB (peak {:.1}) | target <= 40 MiB | {} | upstream 97 MiB (peak 122)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        verdict(rss <= 40 * 1024)
    );
    println!(
        "SUMMARY render core alone: {:.1} ms median for {NODES} x {POLICIES} | no target",
        ms(renders[2])
    );
}
