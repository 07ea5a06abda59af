//! "A pod with no networks costs no allocation": the mutation of such a pod (most pods in a
//! cluster whose webhook has no namespaceSelector, as the operator renders it) allocates
//! nothing on the heap and asks for nothing, while a pod with a network does both. Counted
//! with a global allocator that wraps the system one (its own test binary, so nothing else
//! allocates concurrently while it counts).
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;
use sriov_network_resources_injector::PodView;
use sriov_network_resources_injector::mutate::{NO_NETWORKS, Settings, mutate};
use sriov_network_resources_injector::switches::Switches;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// GlobalAlloc contract; the only addition is an atomic counter, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
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

fn allocations_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (ALLOCATIONS.load(Ordering::SeqCst), out)
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
    let plain: PodView = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    }))
    .unwrap();
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
