//! Policies compiled once per render: filtered (operator namespace only, legacy `default`
//! skipped), sorted in upstream's application order, selectors parsed, and indexed by node
//! label so that finding the policies of one node costs O(node labels), not O(policies).
//!
//! Application order is upstream's `ByPriority`: priority number descending (99 first, 0 last),
//! ties by name ascending. Applying in that order means the lowest number is applied last and
//! wins.

use std::collections::{BTreeMap, HashMap};

use sriov_api::{NodePolicySpec, SriovNetworkNodePolicy};

use super::RenderError;
use super::pf_selector::PfSelector;

/// The deprecated policy name upstream ignores everywhere.
pub const LEGACY_DEFAULT_POLICY: &str = "default";

/// One policy, ready to apply.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub name: String,
    pub spec: NodePolicySpec,
    pub selector: PfSelector,
}

/// All policies of one render, in application order, with a node-label index.
#[derive(Clone, Debug, Default)]
pub struct PolicyIndex {
    /// In application order (see module docs).
    pub policies: Vec<CompiledPolicy>,
    /// `(label key, label value)` → policies (positions in `policies`) requiring it.
    by_label: HashMap<(String, String), Vec<u32>>,
    /// How many labels each policy requires.
    required: Vec<u32>,
    /// Policies with an empty nodeSelector (select every node).
    everywhere: Vec<u32>,
}

impl PolicyIndex {
    /// Compile the policies that live in `namespace` (others are ignored, as upstream's
    /// namespaced cache ignores them). An unparsable `pfNames` entry is an error naming the
    /// policy, the field and the value.
    pub fn new<'a>(
        policies: impl IntoIterator<Item = &'a SriovNetworkNodePolicy>,
        namespace: &str,
    ) -> Result<PolicyIndex, RenderError> {
        let mut compiled = Vec::new();
        for p in policies {
            let name = p.metadata.name.clone().unwrap_or_default();
            let ns = p.metadata.namespace.as_deref().unwrap_or(namespace);
            if ns != namespace || name == LEGACY_DEFAULT_POLICY {
                continue;
            }
            let selector = PfSelector::compile(&p.spec.nic_selector).map_err(|(index, reason)| {
                RenderError::InvalidPfName {
                    policy: name.clone(),
                    field: format!("spec.nicSelector.pfNames[{index}]"),
                    value: p
                        .spec
                        .nic_selector
                        .pf_names
                        .get(index)
                        .cloned()
                        .unwrap_or_default(),
                    reason,
                }
            })?;
            compiled.push(CompiledPolicy {
                name,
                spec: p.spec.clone(),
                selector,
            });
        }
        compiled.sort_by(|a, b| {
            b.spec
                .priority
                .cmp(&a.spec.priority)
                .then_with(|| a.name.cmp(&b.name))
        });

        let mut index = PolicyIndex {
            required: Vec::with_capacity(compiled.len()),
            ..Default::default()
        };
        for (i, p) in compiled.iter().enumerate() {
            let i = i as u32;
            index.required.push(p.spec.node_selector.len() as u32);
            if p.spec.node_selector.is_empty() {
                index.everywhere.push(i);
            }
            for (k, v) in &p.spec.node_selector {
                index.by_label.entry((k.clone(), v.clone())).or_default().push(i);
            }
        }
        index.policies = compiled;
        Ok(index)
    }

    /// Policies whose nodeSelector the node's labels satisfy (every key present with an equal
    /// value), in application order.
    pub fn selected(&self, labels: &BTreeMap<String, String>) -> Vec<&CompiledPolicy> {
        let mut hits: HashMap<u32, u32> = HashMap::new();
        let mut key = (String::new(), String::new());
        for (k, v) in labels {
            key.0.clone_from(k);
            key.1.clone_from(v);
            if let Some(list) = self.by_label.get(&key) {
                for &i in list {
                    *hits.entry(i).or_insert(0) += 1;
                }
            }
        }
        let mut chosen: Vec<u32> = hits
            .into_iter()
            .filter(|(i, n)| self.required.get(*i as usize) == Some(n))
            .map(|(i, _)| i)
            .chain(self.everywhere.iter().copied())
            .collect();
        chosen.sort_unstable();
        chosen
            .iter()
            .filter_map(|&i| self.policies.get(i as usize))
            .collect()
    }
}
