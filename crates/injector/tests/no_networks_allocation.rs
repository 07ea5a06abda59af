//! "A pod with no networks costs no allocation": the mutation of such a pod (most pods in a
//! cluster whose webhook has no namespaceSelector, as the operator renders it) allocates
//! nothing on the heap and asks for nothing, while a pod with a network does both. Counted
//! with a global allocator that wraps the system one and counts the allocations of the thread
//! that asks (libtest runs the tests, and its own output, on other threads at the same time).
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::json;
use sriov_network_resources_injector::PodView;
use sriov_network_resources_injector::mutate::{NO_NETWORKS, NadLookup, Settings, mutate};
use sriov_network_resources_injector::review::{Body, answer};
use sriov_network_resources_injector::switches::Switches;

struct Counting;

thread_local! {
    /// This thread's count while it counts (`None` otherwise). Const-initialised and without a
    /// destructor: reading it from the allocator allocates nothing and registers nothing.
    static ALLOCATIONS: Cell<Option<usize>> = const { Cell::new(None) };
}

#[allow(unsafe_code)]
// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// GlobalAlloc contract; the only addition is a thread-local counter, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get().map(|n| n + 1)));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The heap allocations `f` makes on this thread.
fn allocations_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    ALLOCATIONS.with(|n| n.set(Some(0)));
    let out = f();
    let n = ALLOCATIONS.with(|n| n.take()).unwrap_or(0);
    (n, out)
}

#[test]
fn a_pod_without_networks_is_answered_without_a_heap_allocation() {
    let nads: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::from([(
        ("default".to_string(), "net-a".to_string()),
        BTreeMap::from([(
            "k8s.v1.cni.cncf.io/resourceName".to_string(),
            "intel.com/sriov".to_string(),
        )]),
    )]);
    // Switches with an injection for a label this pod does not carry.
    let switches = Switches::parse(
        r#"{"user-defined-injections":{"want-sriov":{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"net-a"}}}}"#,
    )
    .unwrap();
    let settings = Settings::default();
    let text = json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    })
    .to_string();
    let plain: PodView = serde_json::from_str(&text).unwrap();
    let (n, m) = allocations_of(|| mutate(&plain, "default", &nads, &settings, &switches));
    let m = m.unwrap();
    assert_eq!((m.message, m.patch.len()), (NO_NETWORKS, 0));
    assert_eq!(n, 0, "heap allocations for a pod without networks");

    // The counter counts: a pod with a network allocates (its patch) and gets the resources.
    let mut with_net = plain.clone();
    with_net
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("k8s.v1.cni.cncf.io/networks".into(), "net-a".into());
    let (n, m) = allocations_of(|| mutate(&with_net, "default", &nads, &settings, &switches));
    let patch = serde_json::to_string(&m.unwrap().patch).unwrap();
    assert!(n > 0);
    assert!(patch.contains("intel.com~1sriov"), "{patch}");
}

/// NADs by namespace and name, looked up without building a key (as the watch-fed `NadCache`).
struct Nads(BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>);

impl NadLookup for Nads {
    fn with_annotations(
        &self,
        namespace: &str,
        name: &str,
        f: &mut dyn FnMut(&BTreeMap<String, String>),
    ) -> bool {
        self.0.get(namespace).and_then(|n| n.get(name)).map(f).is_some()
    }
}

/// The whole `/mutate` answer for the benchmark's pod (two of 1,000 networks, two resources):
/// body bytes in, AdmissionReview bytes out. Its allocations, counted when this budget was set
/// (issue #13; 80 before): the pod's decode 3 (the containers list, the labels' and the
/// annotations' map nodes; every string is borrowed from the body), the annotation's network
/// list 1, the counts 3, the patch 12 (the vector, one path per operation not spelled in the
/// code, the volume's items), the patch bytes 1, the answer 1.
#[test]
fn an_admission_with_two_networks_stays_within_its_allocation_budget() {
    const BUDGET: usize = 21;
    let nads = Nads(BTreeMap::from([(
        "nri-bench".to_string(),
        (0..1000)
            .map(|i| {
                (
                    format!("net-{i}"),
                    BTreeMap::from([(
                        "k8s.v1.cni.cncf.io/resourceName".to_string(),
                        format!("example.com/sriov_{}", i % 10),
                    )]),
                )
            })
            .collect(),
    )]));
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "namespace": "nri-bench", "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "object": {"metadata": {"name": "p", "namespace": "nri-bench", "labels": {"app": "bench"},
                                "annotations": {"k8s.v1.cni.cncf.io/networks": "net-17, net-998@net2"}},
                   "spec": {"containers": [{"name": "app", "image": "example.invalid/app"}]}}}})
    .to_string();
    let (settings, switches) = (Settings::default(), Switches::default());
    let (n, a) = allocations_of(|| {
        answer(
            Some("application/json"),
            Body::Bytes(review.as_bytes()),
            &nads,
            &settings,
            &switches,
        )
    });
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains(r#""patchType":"JSONPatch""#), "{}", a.body);
    assert!(n > 0 && n <= BUDGET, "{n} heap allocations, budget {BUDGET}");
}
