//! NADs and the switches ConfigMap, kept current by kube-runtime watches, so an admission makes
//! no API call (upstream falls back to a GET per network on a cache miss; here a NAD the watch
//! has not delivered does not exist, which after the initial list is the apiserver's view).
//!
//! The NAD cache keeps, per NAD, only the annotations the mutation reads (the resource-name keys
//! and the node selector): not the object, not its managedFields, not its CNI config. A
//! kube-runtime reflector store would keep the whole `PartialObjectMeta` of every NAD in the
//! cluster (measured: docs/injector.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use sriov_api::nad::NetworkAttachmentDefinition;

use crate::mutate::{NODE_SELECTOR_ANNOTATION, NadLookup};
use crate::switches::{CONFIG_KEY, CONFIG_MAP, Switches};

/// The annotations of one NAD that the mutation reads.
pub type NadFacts = BTreeMap<String, String>;

/// The NADs of every namespace, namespace → name → facts (borrowed `&str` lookups, no
/// allocation per admission).
#[derive(Debug, Default, PartialEq)]
pub struct NadIndex {
    live: HashMap<String, HashMap<String, NadFacts>>,
    /// A relist in progress (`Init` .. `InitDone`); replaces `live` when done.
    relist: Option<HashMap<String, HashMap<String, NadFacts>>>,
    /// Annotation keys worth keeping: the resource-name keys and the node selector.
    keys: Vec<String>,
}

impl NadIndex {
    pub fn new(resource_name_keys: &[String]) -> NadIndex {
        let mut keys = resource_name_keys.to_vec();
        keys.push(NODE_SELECTOR_ANNOTATION.to_string());
        NadIndex {
            keys,
            ..NadIndex::default()
        }
    }

    fn facts(&self, annotations: Option<&BTreeMap<String, String>>) -> NadFacts {
        let Some(a) = annotations else {
            return NadFacts::new();
        };
        self.keys
            .iter()
            .filter_map(|k| Some((k.clone(), a.get(k)?.clone())))
            .collect()
    }

    fn insert(
        map: &mut HashMap<String, HashMap<String, NadFacts>>,
        namespace: String,
        name: String,
        facts: NadFacts,
    ) {
        map.entry(namespace).or_default().insert(name, facts);
    }

    /// Folds one watch event in. Returns true when a (re)list just completed.
    pub fn apply(&mut self, event: watcher::Event<PartialObjectMeta<NetworkAttachmentDefinition>>) -> bool {
        use watcher::Event;
        let key = |m: &PartialObjectMeta<NetworkAttachmentDefinition>| {
            (
                m.metadata.namespace.clone().unwrap_or_default(),
                m.metadata.name.clone().unwrap_or_default(),
            )
        };
        match event {
            Event::Init => self.relist = Some(HashMap::new()),
            Event::InitApply(m) => {
                let facts = self.facts(m.metadata.annotations.as_ref());
                let (ns, name) = key(&m);
                let target = self.relist.get_or_insert_with(HashMap::new);
                Self::insert(target, ns, name, facts);
            }
            Event::InitDone => {
                if let Some(fresh) = self.relist.take() {
                    self.live = fresh;
                }
                self.live.shrink_to_fit();
                return true;
            }
            Event::Apply(m) => {
                let facts = self.facts(m.metadata.annotations.as_ref());
                let (ns, name) = key(&m);
                Self::insert(&mut self.live, ns, name, facts);
            }
            Event::Delete(m) => {
                let (ns, name) = key(&m);
                if let Some(names) = self.live.get_mut(&ns) {
                    names.remove(&name);
                    if names.is_empty() {
                        self.live.remove(&ns);
                    }
                }
            }
        }
        false
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&NadFacts> {
        self.live.get(namespace)?.get(name)
    }

    pub fn len(&self) -> usize {
        self.live.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// NADs per page of the initial list (and of every relist).
pub const LIST_PAGE: u32 = 100;

/// The shared, watch-fed [`NadIndex`].
#[derive(Clone)]
pub struct NadCache(Arc<RwLock<NadIndex>>);

impl NadLookup for NadCache {
    fn with_annotations(
        &self,
        namespace: &str,
        name: &str,
        f: &mut dyn FnMut(&BTreeMap<String, String>),
    ) -> bool {
        let index = match self.0.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match index.get(namespace, name) {
            Some(facts) => {
                f(facts);
                true
            }
            None => false,
        }
    }
}

impl NadCache {
    /// Starts the cluster-wide, metadata-only NAD watch; returns once the initial list is in.
    pub async fn start(client: Client, resource_name_keys: &[String]) -> anyhow::Result<NadCache> {
        let cache = NadCache(Arc::new(RwLock::new(NadIndex::new(resource_name_keys))));
        // `Api<PartialObjectMeta<_>>` asks the apiserver for metadata only.
        let api: Api<PartialObjectMeta<NetworkAttachmentDefinition>> = Api::all(client);
        // Pages of 100 instead of kube's 500: the initial list's page is held twice while it is
        // decoded (the body and the objects), and that transient set the injector's peak
        // resident memory (issue #13); 1,000 NADs cost 10 requests instead of 2, once.
        let config = watcher::Config::default().page_size(LIST_PAGE);
        let stream = watcher(api, config).default_backoff();
        let (listed, mut ready) = tokio::sync::watch::channel(false);
        let index = cache.0.clone();
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(e) => {
                        let done = {
                            let mut g = match index.write() {
                                Ok(g) => g,
                                Err(poisoned) => poisoned.into_inner(),
                            };
                            g.apply(e)
                        };
                        if done {
                            // A list's pages were parsed into short-lived objects; give the
                            // freed heap back (what stays is the compact index).
                            release_freed_memory();
                            listed.send_replace(true);
                        }
                    }
                    Err(e) => tracing::warn!("NetworkAttachmentDefinition watch: {e}"),
                }
            }
        });
        ready
            .wait_for(|listed| *listed)
            .await
            .map_err(|_| anyhow::anyhow!("NetworkAttachmentDefinition watch ended before the first list"))?;
        Ok(cache)
    }

    pub fn len(&self) -> usize {
        match self.0.read() {
            Ok(g) => g.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Returns the heap's free pages to the kernel (glibc keeps freed pages mapped; the initial
/// list of thousands of NADs is parsed into objects that are freed right after).
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own allocator state under its arena locks and
    // returns unused pages with madvise; it touches no memory that Rust code owns, takes no
    // pointers, and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The current switches; replaced whole when the ConfigMap changes.
#[derive(Clone, Default)]
pub struct SwitchesCell(Arc<RwLock<Arc<Switches>>>);

impl SwitchesCell {
    pub fn get(&self) -> Arc<Switches> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, switches: Switches) {
        let mut g = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(switches);
    }

    /// Watches ConfigMap `nri-control-switches` in `namespace`; an unparsable ConfigMap keeps
    /// the previous switches (and says why), a deleted one resets to the flags.
    pub fn watch(&self, client: Client, namespace: &str) {
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}"));
        let cell = self.clone();
        tokio::spawn(async move {
            let stream = watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => cell.apply(&cm),
                    Ok(watcher::Event::Delete(_)) => cell.set(Switches::default()),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{CONFIG_MAP} watch: {e}"),
                }
            }
        });
    }

    fn apply(&self, cm: &ConfigMap) {
        let text = cm.data.as_ref().and_then(|d| d.get(CONFIG_KEY));
        match text.map(|t| Switches::parse(t)) {
            None => self.set(Switches::default()),
            Some(Ok(s)) => {
                tracing::info!(?s, "{CONFIG_MAP} applied");
                self.set(s)
            }
            Some(Err(e)) => tracing::error!("{e}; keeping the previous switches"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use watcher::Event;

    fn nad(
        ns: &str,
        name: &str,
        annotations: &[(&str, &str)],
    ) -> PartialObjectMeta<NetworkAttachmentDefinition> {
        let mut m = PartialObjectMeta::<NetworkAttachmentDefinition>::default();
        m.metadata.namespace = Some(ns.into());
        m.metadata.name = Some(name.into());
        m.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        m
    }

    const RN: &str = "k8s.v1.cni.cncf.io/resourceName";

    #[test]
    fn keeps_only_the_annotations_the_mutation_reads() {
        let mut index = NadIndex::new(&[RN.to_string()]);
        index.apply(Event::Apply(nad(
            "a",
            "n",
            &[
                (RN, "intel.com/vf"),
                (NODE_SELECTOR_ANNOTATION, "k=v"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{...}"),
            ],
        )));
        let facts = index.get("a", "n").unwrap();
        assert_eq!(facts.keys().collect::<Vec<_>>(), [NODE_SELECTOR_ANNOTATION, RN]);
        assert!(index.get("a", "other").is_none());
        assert!(index.get("b", "n").is_none());
    }

    #[test]
    fn a_relist_replaces_the_index_and_deletes_remove() {
        let mut index = NadIndex::new(&[RN.to_string()]);
        assert!(!index.apply(Event::Init));
        index.apply(Event::InitApply(nad("a", "old", &[])));
        index.apply(Event::InitApply(nad("a", "gone", &[])));
        assert_eq!(index.len(), 0, "not live before InitDone");
        assert!(index.apply(Event::InitDone));
        assert_eq!(index.len(), 2);
        index.apply(Event::Delete(nad("a", "gone", &[])));
        assert!(index.get("a", "gone").is_none());
        // A relist that no longer has "old" drops it, but only once the relist is complete.
        index.apply(Event::Init);
        index.apply(Event::InitApply(nad("b", "new", &[(RN, "r")])));
        assert!(index.get("a", "old").is_some());
        index.apply(Event::InitDone);
        assert!(index.get("a", "old").is_none());
        assert_eq!(index.get("b", "new").unwrap()[RN], "r");
        assert_eq!(index.len(), 1);
    }
}
