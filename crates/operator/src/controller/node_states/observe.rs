//! What the caches hold, as the plan sees it, with this controller's own writes folded in until
//! the caches have caught up with them.
//!
//! A watch event for a write arrives a little after the write returns. A pass started in
//! between would see the old object and write it again (harmless for server-side apply, but a
//! request the quiet-cluster target forbids). So each write is remembered with the
//! `resourceVersion` the cache showed when it was planned: while the cache still shows that
//! version, the write's result stands in for it; once the version moves (the write, or anything
//! newer, has been observed), the cache is the truth again and the entry is dropped. Only
//! equality of resource versions is used, never their order, as the API conventions require.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use sriov_api::SriovNetworkNodeState;

use super::plan::{KEEP_UNTIL_ANNOTATION, Observed, ObservedConfigMap, ObservedNodeState};

/// A cached object's `resourceVersion` (`None`: the cache has no such object).
pub type Version = Option<String>;

/// The caches' view, each object with its resource version.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub node_states: BTreeMap<String, (Version, ObservedNodeState)>,
    pub config_map: Option<(Version, ObservedConfigMap)>,
    /// Every Node: its version and device-plugin label.
    pub node_labels: BTreeMap<String, (Version, Option<String>)>,
}

/// One write not yet seen in the cache: the version the cache showed when it was planned and
/// what the object is after the write (`None`: deleted).
#[derive(Clone, Debug)]
struct Entry<T> {
    before: Version,
    written: T,
}

/// This controller's writes the caches may not show yet.
#[derive(Debug, Default)]
pub struct PendingWrites {
    node_states: HashMap<String, Entry<Option<ObservedNodeState>>>,
    config_map: Option<Entry<ObservedConfigMap>>,
    node_labels: HashMap<String, Entry<Option<String>>>,
}

impl PendingWrites {
    /// A node state was applied (`Some`) or deleted (`None`) while the cache showed `before`.
    pub fn wrote_node_state(&mut self, name: &str, before: Version, written: Option<ObservedNodeState>) {
        self.node_states
            .insert(name.to_string(), Entry { before, written });
    }

    pub fn wrote_config_map(&mut self, before: Version, written: ObservedConfigMap) {
        self.config_map = Some(Entry { before, written });
    }

    pub fn wrote_node_label(&mut self, node: &str, before: Version, written: Option<String>) {
        self.node_labels
            .insert(node.to_string(), Entry { before, written });
    }

    /// Writes still not in the cache.
    pub fn len(&self) -> usize {
        self.node_states.len() + self.node_labels.len() + usize::from(self.config_map.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache view with pending writes standing in for objects the cache has not updated;
    /// entries the cache has caught up with are dropped.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Observed {
        let mut node_states: BTreeMap<String, ObservedNodeState> = snapshot
            .node_states
            .iter()
            .map(|(n, (_, s))| (n.clone(), s.clone()))
            .collect();
        self.node_states.retain(|name, entry| {
            let cached = snapshot.node_states.get(name).and_then(|(v, _)| v.clone());
            if cached != entry.before {
                return false;
            }
            match &entry.written {
                Some(s) => node_states.insert(name.clone(), s.clone()),
                None => node_states.remove(name),
            };
            true
        });
        let mut config_map = snapshot.config_map.as_ref().map(|(_, cm)| cm.clone());
        let cm_version = snapshot.config_map.as_ref().and_then(|(v, _)| v.clone());
        if let Some(entry) = &self.config_map {
            if cm_version == entry.before {
                config_map = Some(entry.written.clone());
            } else {
                self.config_map = None;
            }
        }
        let mut node_labels: BTreeMap<String, Option<String>> = snapshot
            .node_labels
            .iter()
            .map(|(n, (_, l))| (n.clone(), l.clone()))
            .collect();
        self.node_labels
            .retain(|name, entry| match snapshot.node_labels.get(name) {
                Some((version, _)) if *version == entry.before => {
                    node_labels.insert(name.clone(), entry.written.clone());
                    true
                }
                _ => false,
            });
        Observed {
            node_states,
            config_map,
            node_labels,
        }
    }
}

/// Whether `refs` hold the controller reference to the config with `owner_uid`.
pub fn owned_by(refs: &[OwnerReference], owner_uid: &str) -> bool {
    refs.iter()
        .any(|r| r.uid == owner_uid && r.controller == Some(true))
}

/// A cached node state as the plan sees it, with its resource version.
pub fn observe_node_state(state: &SriovNetworkNodeState, owner_uid: &str) -> (Version, ObservedNodeState) {
    let meta = &state.metadata;
    let observed = ObservedNodeState {
        spec: state.spec.clone(),
        discovered: state.status.as_ref().is_some_and(|s| !s.interfaces.is_empty()),
        keep_until: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(KEEP_UNTIL_ANNOTATION))
            .cloned(),
        owned: owned_by(meta.owner_references.as_deref().unwrap_or_default(), owner_uid),
    };
    (meta.resource_version.clone(), observed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn state(vfs: i32) -> ObservedNodeState {
        let mut s = ObservedNodeState::default();
        s.spec.interfaces.push(sriov_api::NodeStateInterface {
            pci_address: "0000:3b:00.0".into(),
            num_vfs: vfs,
            ..Default::default()
        });
        s
    }

    fn snapshot(version: &str, vfs: i32) -> Snapshot {
        Snapshot {
            node_states: BTreeMap::from([("a".into(), (Some(version.into()), state(vfs)))]),
            config_map: Some((Some(version.into()), ObservedConfigMap::default())),
            node_labels: BTreeMap::from([("a".into(), (Some(version.into()), None))]),
        }
    }

    #[test]
    fn a_write_stands_in_until_the_cache_moves_past_the_planned_version() {
        let mut pending = PendingWrites::default();
        pending.wrote_node_state("a", Some("1".into()), Some(state(8)));
        pending.wrote_node_label("a", Some("1".into()), Some("Enabled".into()));
        let written_cm = ObservedConfigMap {
            data: BTreeMap::from([("a".into(), "x".into())]),
            owned: true,
        };
        pending.wrote_config_map(Some("1".into()), written_cm.clone());

        let stale = pending.observe(&snapshot("1", 4));
        assert_eq!(stale.node_states["a"], state(8));
        assert_eq!(stale.node_labels["a"].as_deref(), Some("Enabled"));
        assert_eq!(stale.config_map, Some(written_cm));
        assert_eq!(pending.len(), 3);

        // Someone else's newer write (version 2) wins over ours: the cache is the truth again.
        let fresh = pending.observe(&snapshot("2", 4));
        assert_eq!(fresh.node_states["a"], state(4));
        assert_eq!(fresh.node_labels["a"], None);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_create_stands_in_until_the_object_appears_and_a_delete_until_it_goes() {
        let mut pending = PendingWrites::default();
        pending.wrote_node_state("new", None, Some(state(2)));
        pending.wrote_node_state("a", Some("1".into()), None);
        let seen = pending.observe(&snapshot("1", 4));
        assert_eq!(seen.node_states.keys().collect::<Vec<_>>(), ["new"]);
        let mut later = snapshot("1", 4);
        later.node_states.clear();
        later
            .node_states
            .insert("new".into(), (Some("5".into()), state(2)));
        let seen = pending.observe(&later);
        assert_eq!(seen.node_states.keys().collect::<Vec<_>>(), ["new"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_label_on_a_node_that_vanished_is_forgotten() {
        let mut pending = PendingWrites::default();
        pending.wrote_node_label("gone", Some("3".into()), Some("Enabled".into()));
        let seen = pending.observe(&Snapshot::default());
        assert!(seen.node_labels.is_empty());
        assert!(pending.is_empty());
    }
}
