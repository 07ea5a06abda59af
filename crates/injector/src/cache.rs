//! NADs and the switches ConfigMap, kept current by kube-runtime watches, so an admission makes
//! no API call (upstream falls back to a GET per network on a cache miss; here a NAD the watch
//! has not delivered does not exist, which after the initial list is the apiserver's view).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use sriov_api::nad::NetworkAttachmentDefinition;

use crate::mutate::NadLookup;
use crate::switches::{CONFIG_KEY, CONFIG_MAP, Switches};

type NadMeta = PartialObjectMeta<NetworkAttachmentDefinition>;

/// The NADs of every namespace: metadata only (the resource-name and node-selector
/// annotations are all the injector reads), which keeps the cache small.
#[derive(Clone)]
pub struct NadCache(Store<NadMeta>);

impl NadLookup for NadCache {
    fn with_annotations(
        &self,
        namespace: &str,
        name: &str,
        f: &mut dyn FnMut(&BTreeMap<String, String>),
    ) -> bool {
        match self.0.get(&ObjectRef::new(name).within(namespace)) {
            Some(nad) => {
                match &nad.metadata.annotations {
                    Some(a) => f(a),
                    None => f(&BTreeMap::new()),
                }
                true
            }
            None => false,
        }
    }
}

impl NadCache {
    /// Starts the cluster-wide NAD watch; returns once the initial list is in.
    pub async fn start(client: Client) -> anyhow::Result<NadCache> {
        let (reader, writer) = reflector::store::<NadMeta>();
        // `Api<PartialObjectMeta<_>>` asks the apiserver for metadata only.
        let api: Api<NadMeta> = Api::all(client);
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::warn!("NetworkAttachmentDefinition watch: {e}");
                }
            }
        });
        reader.wait_until_ready().await?;
        Ok(NadCache(reader))
    }

    pub fn len(&self) -> usize {
        self.0.state().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
