//! The mutation: pod + cached NADs + switches → JSONPatch ops, a denial, or a bad request.
//! Patch shapes are upstream's (op/path/value, Go's field order, quantities as strings, map
//! keys sorted as Go's encoder sorts them). Where upstream iterates a Go map the order here is
//! sorted, so the patch is deterministic.
//!
//! Better than upstream (nri#99): upstream always puts the resources on `containers[0]`, which
//! may be a sidecar. The default stays, and a pod may name the container with the annotation
//! [`CONTAINER_ANNOTATION`]; the count is still requested once per pod.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::network::{self, ParseError, Selection};
use crate::patch::{DownwardApi, DownwardItem, EnvVar, Mount, Op, Value, Volume};
use crate::pod::{ContainerView, PodView, Str, StrMap};
use crate::switches::Switches;

pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
pub const DEFAULT_NETWORK_ANNOTATION: &str = "v1.multus-cni.io/default-network";
pub const NODE_SELECTOR_ANNOTATION: &str = "k8s.v1.cni.cncf.io/nodeSelector";
pub const DEFAULT_RESOURCE_NAME_KEY: &str = "k8s.v1.cni.cncf.io/resourceName";
/// sriov-rs addition: the name of the container that gets the network resources.
pub const CONTAINER_ANNOTATION: &str = "sriov-rs.io/network-resources-container";
pub const VOLUME_NAME: &str = "podnetinfo";
pub const MOUNT_PATH: &str = "/etc/podnetinfo";
pub const NO_NETWORKS: &str = "Pod spec doesn't have network annotations. Skipping...";

/// What the flags decide (the ConfigMap may override the two features).
#[derive(Clone, Debug)]
pub struct Settings {
    pub resource_name_keys: Vec<String>,
    pub hugepage_down_api: bool,
    pub honor_resources: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resource_name_keys: vec![DEFAULT_RESOURCE_NAME_KEY.to_string()],
            hugepage_down_api: false,
            honor_resources: false,
        }
    }
}

/// The NetworkAttachmentDefinitions the injector knows (a watch-fed cache; a map in tests).
pub trait NadLookup {
    /// Calls `f` with the annotations of NAD `namespace/name`; false when there is no such NAD.
    fn with_annotations(
        &self,
        namespace: &str,
        name: &str,
        f: &mut dyn FnMut(&BTreeMap<String, String>),
    ) -> bool;
}

impl NadLookup for BTreeMap<(String, String), BTreeMap<String, String>> {
    fn with_annotations(
        &self,
        namespace: &str,
        name: &str,
        f: &mut dyn FnMut(&BTreeMap<String, String>),
    ) -> bool {
        match self.get(&(namespace.to_string(), name.to_string())) {
            Some(a) => {
                f(a);
                true
            }
            None => false,
        }
    }
}

/// An allowed pod: the message upstream puts in `status.message` and the patch (may be empty).
#[derive(Debug, PartialEq)]
pub struct Mutation {
    pub message: &'static str,
    pub patch: Vec<Op>,
}

/// Why the pod is not patched.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Denied {
    /// Upstream answers HTTP 400 (not an AdmissionReview) for a malformed annotation.
    #[error(transparent)]
    BadAnnotation(#[from] ParseError),
    /// An admission response with `allowed: false` and this message.
    #[error("{0}")]
    Refused(String),
}

/// Appends `key` to a JSON pointer, escaped (RFC 6901: `~` → `~0`, `/` → `~1`).
fn push_escaped(path: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// A map of the pod, copied into the patch.
fn owned(map: &StrMap) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn op(path: impl Into<Cow<'static, str>>, value: Value) -> Op {
    Op::add(path, value)
}

fn resource_count<'c>(c: &'c ContainerView, which: &str, resource: &str) -> Option<&'c str> {
    let r = c.resources.as_ref()?;
    let list = if which == "requests" {
        &r.requests
    } else {
        &r.limits
    };
    list.as_ref()?.get(resource).map(|q| &**q)
}

fn has_list(c: &ContainerView, which: &str) -> bool {
    c.resources
        .as_ref()
        .and_then(|r| {
            if which == "requests" {
                r.requests.as_ref()
            } else {
                r.limits.as_ref()
            }
        })
        .is_some_and(|l| !l.is_empty())
}

/// Go's `Quantity.IsZero` for the spellings that matter (`0`, `0Gi`, `000`).
fn is_zero(q: &str) -> bool {
    let rest = q.trim_start_matches('0');
    rest.len() < q.len() && rest.chars().next().is_none_or(|c| c.is_ascii_alphabetic())
}

/// Counts per resource and the desired node selector, from each selected network's NAD.
fn tally(
    selections: &[Selection],
    nads: &dyn NadLookup,
    keys: &[String],
    counts: &mut BTreeMap<String, i64>,
    node_selector: &mut BTreeMap<String, String>,
) -> Result<(), Denied> {
    for s in selections {
        let mut failure = None;
        let found = nads.with_annotations(&s.namespace, &s.name, &mut |annotations| {
            for key in keys {
                if let Some(resource) = annotations.get(key) {
                    *counts.entry(resource.clone()).or_default() += 1;
                }
            }
            if let Some(sel) = annotations.get(NODE_SELECTOR_ANNOTATION) {
                match sel.split('=').collect::<Vec<_>>()[..] {
                    [k, v] => {
                        node_selector.insert(k.trim().to_string(), v.trim().to_string());
                    }
                    [k] => {
                        node_selector.insert(k.trim().to_string(), String::new());
                    }
                    _ => {
                        failure = Some(format!(
                            "node selector in net-attach-def {} has more than one label",
                            s.name
                        ))
                    }
                }
            }
        });
        if !found {
            return Err(Denied::Refused(format!(
                "could not find network attachment definition '{ns}/{name}': could not get Network Attachment Definition {ns}/{name}: network-attachment-definitions.k8s.cni.cncf.io \"{name}\" not found",
                ns = s.namespace,
                name = s.name
            )));
        }
        if let Some(f) = failure {
            return Err(Denied::Refused(f));
        }
    }
    Ok(())
}

fn resource_patch(
    patch: &mut Vec<Op>,
    containers: &[ContainerView],
    target: usize,
    mut counts: BTreeMap<String, i64>,
    honor: bool,
) -> Result<(), Denied> {
    let base = format!("/spec/containers/{target}/resources/");
    for which in ["requests", "limits"] {
        if !has_list(&containers[target], which) {
            patch.push(op(format!("{base}{which}"), Value::Map(BTreeMap::new())));
        }
    }
    if !honor {
        // A resource the user already asked for in any container is left alone.
        counts.retain(|r, _| {
            !containers.iter().any(|c| {
                resource_count(c, "requests", r).is_some() || resource_count(c, "limits", r).is_some()
            })
        });
    }
    for (resource, n) in counts {
        for which in ["requests", "limits"] {
            let mut total = n;
            if honor && let Some(existing) = resource_count(&containers[target], which, &resource) {
                total += existing.parse::<i64>().map_err(|_| {
                    Denied::Refused(format!(
                        "cannot add {n} to {which} {resource}={existing:?} of container {:?}: not an integer",
                        containers[target].name
                    ))
                })?;
            }
            let mut path = String::with_capacity(base.len() + which.len() + 1 + resource.len() + 4);
            path.push_str(&base);
            path.push_str(which);
            path.push('/');
            push_escaped(&mut path, &resource);
            patch.push(op(path, Value::Quantity(total)));
        }
    }
    Ok(())
}

/// Downward API items for the containers' hugepages, plus the `CONTAINER_NAME` env ops.
fn hugepages(patch: &mut Vec<Op>, containers: &[ContainerView]) -> Vec<DownwardItem> {
    let mut items = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let mut found = false;
        for (which, size, short) in [
            ("requests", "hugepages-1Gi", "1G"),
            ("requests", "hugepages-2Mi", "2M"),
            ("limits", "hugepages-1Gi", "1G"),
            ("limits", "hugepages-2Mi", "2M"),
        ] {
            if let Some(q) = resource_count(c, which, size)
                && !is_zero(q)
            {
                let kind = if which == "requests" { "request" } else { "limit" };
                items.push(DownwardItem::resource(
                    format!("hugepages_{short}_{kind}_{}", c.name),
                    c.name.to_string(),
                    format!("{which}.{size}"),
                ));
                found = true;
            }
        }
        if found {
            let env = EnvVar {
                name: "CONTAINER_NAME",
                value: c.name.to_string(),
            };
            match c.env.as_deref() {
                None | Some([]) => patch.push(op(format!("/spec/containers/{i}/env"), Value::EnvList([env]))),
                Some(list) if !list.iter().any(|e| e.name == "CONTAINER_NAME") => {
                    patch.push(op(format!("/spec/containers/{i}/env/-"), Value::Env(env)))
                }
                Some(_) => {}
            }
        }
    }
    items
}

fn volume_patch(patch: &mut Vec<Op>, pod: &PodView, annotated: bool, hugepage_items: Vec<DownwardItem>) {
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers()).unwrap_or_default();
    let mount = Mount {
        name: VOLUME_NAME,
        read_only: true,
        mount_path: MOUNT_PATH,
    };
    for (i, c) in containers.iter().enumerate() {
        match c.volume_mounts.as_deref() {
            None | Some([]) => patch.push(op(
                format!("/spec/containers/{i}/volumeMounts"),
                Value::MountList([mount.clone()]),
            )),
            Some(m) if !m.iter().any(|m| m.name == VOLUME_NAME) => patch.push(op(
                format!("/spec/containers/{i}/volumeMounts/-"),
                Value::Mount(mount.clone()),
            )),
            Some(_) => {}
        }
    }
    let volumes = spec.and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    if volumes.iter().any(|v| v.name == VOLUME_NAME) {
        return;
    }
    let mut items = Vec::with_capacity(2 + hugepage_items.len());
    if pod.metadata.labels.as_ref().is_some_and(|l| !l.is_empty()) {
        items.push(DownwardItem::field("labels", "metadata.labels"));
    }
    if annotated {
        items.push(DownwardItem::field("annotations", "metadata.annotations"));
    }
    items.extend(hugepage_items);
    let volume = Volume {
        name: VOLUME_NAME,
        downward_api: DownwardApi { items },
    };
    if volumes.is_empty() {
        patch.push(op("/spec/volumes", Value::VolumeList([volume])));
    } else {
        patch.push(op("/spec/volumes/-", Value::Volume(volume)));
    }
}

/// The whole decision for one pod CREATE. `request_namespace` is the AdmissionRequest's
/// namespace, used when the pod object carries none.
pub fn mutate(
    pod: &PodView,
    request_namespace: &str,
    nads: &dyn NadLookup,
    settings: &Settings,
    switches: &Switches,
) -> Result<Mutation, Denied> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or(request_namespace);
    let mut patch = Vec::new();

    // 1. user-defined injections: pod label `<key>: "true"` → annotations (injected keys win).
    // Borrowed unless an injection applies: a pod without networks costs no allocation.
    static NONE: StrMap<'static> = BTreeMap::new();
    let mut annotations = Cow::Borrowed(pod.metadata.annotations.as_ref().unwrap_or(&NONE));
    let labels = pod.metadata.labels.as_ref();
    let mut injected = false;
    for (label, add) in &switches.injections {
        if labels
            .and_then(|l| l.get(label.as_str()))
            .is_some_and(|v| v == "true")
        {
            annotations.to_mut().extend(
                add.iter()
                    .map(|(k, v)| (Str::from(k.as_str()), Str::from(v.as_str()))),
            );
            injected = true;
        }
    }
    if injected {
        patch.push(op("/metadata/annotations", Value::Map(owned(&annotations))));
    }

    // 2. networks
    let default_net = annotations.get(DEFAULT_NETWORK_ANNOTATION);
    let networks = annotations.get(NETWORKS_ANNOTATION);
    if default_net.is_none() && networks.is_none() {
        return Ok(Mutation {
            message: NO_NETWORKS,
            patch,
        });
    }
    let mut counts = BTreeMap::new();
    let mut node_selector = BTreeMap::new();
    let keys = &settings.resource_name_keys;
    if let Some(v) = default_net.filter(|v| !v.is_empty()) {
        let selections = network::parse(v, namespace)?;
        if selections.len() == 1 {
            tally(&selections, nads, keys, &mut counts, &mut node_selector)?;
        }
    }
    if let Some(v) = networks.filter(|v| !v.is_empty()) {
        let selections = network::parse(v, namespace)?;
        tally(&selections, nads, keys, &mut counts, &mut node_selector)?;
    }

    // 3. resources, hugepages, volume
    let containers = pod.spec.as_ref().map(|s| s.containers()).unwrap_or_default();
    let mut hugepage_items = Vec::new();
    let needs_resources = !counts.is_empty() && !containers.is_empty();
    if needs_resources {
        // Two per resource, and at most six more: the two lists, env, nodeSelector, mount, volume
        // (one container; more grow the vector).
        patch.reserve(2 * counts.len() + 6);
        let target = match annotations.get(CONTAINER_ANNOTATION) {
            None => 0,
            Some(name) => containers.iter().position(|c| &c.name == name).ok_or_else(|| {
                Denied::Refused(format!(
                    "annotation {CONTAINER_ANNOTATION} names container {name:?}, which the pod does not have"
                ))
            })?,
        };
        let honor = switches
            .honor_existing_resources
            .unwrap_or(settings.honor_resources);
        resource_patch(&mut patch, containers, target, counts, honor)?;
        if switches.hugepage_down_api.unwrap_or(settings.hugepage_down_api) {
            hugepage_items = hugepages(&mut patch, containers);
        }
    }

    // 4. node selector: merged, even without resources.
    let mut merged = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref())
        .map(owned)
        .unwrap_or_default();
    merged.extend(node_selector);
    if !merged.is_empty() {
        patch.push(op("/spec/nodeSelector", Value::Map(merged)));
    }

    if needs_resources {
        volume_patch(&mut patch, pod, !annotations.is_empty(), hugepage_items);
    }
    Ok(Mutation {
        message: "allowed",
        patch,
    })
}

#[cfg(test)]
mod tests;
