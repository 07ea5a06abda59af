//! The part of an admitted pod the mutation reads, decoded straight from the AdmissionReview.
//!
//! Why not `k8s_openapi::api::core::v1::Pod`: decoding the whole pod allocates a string for every
//! field the injector never looks at (images, commands, probes, security contexts...), and its
//! deserializers are a large share of the binary's code, which issue #13 counts as resident memory
//! (the kernel maps text in 64 KiB windows around every executed function). serde skips the
//! fields not named here without allocating. The apiserver sends webhooks pods it has already
//! decoded and re-encoded, so the fields read here have the Pod schema's types; a body where they
//! do not is answered as "pod could not be decoded", as before.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `metadata` and `spec` of a pod, as far as the mutation needs them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PodView {
    #[serde(default)]
    pub metadata: PodMetadata,
    pub spec: Option<PodSpecView>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PodMetadata {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecView {
    pub containers: Option<Vec<ContainerView>>,
    pub volumes: Option<Vec<Named>>,
    pub node_selector: Option<BTreeMap<String, String>>,
}

impl PodSpecView {
    pub fn containers(&self) -> &[ContainerView] {
        self.containers.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    #[serde(default)]
    pub name: String,
    pub resources: Option<Resources>,
    pub env: Option<Vec<Named>>,
    pub volume_mounts: Option<Vec<Named>>,
}

/// `resources.requests` / `resources.limits`: quantities as the apiserver writes them (strings).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Resources {
    pub requests: Option<BTreeMap<String, String>>,
    pub limits: Option<BTreeMap<String, String>>,
}

/// An env var, volume or volume mount: the mutation only compares names.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Named {
    #[serde(default)]
    pub name: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// The view agrees with k8s-openapi's Pod on every field it reads, for a pod that has them all.
    #[test]
    fn reads_what_k8s_openapi_reads() {
        let v = json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"},
                         "annotations": {"k": "v"}, "uid": "u"},
            "spec": {
                "containers": [{"name": "c", "image": "i", "command": ["x"],
                    "resources": {"requests": {"cpu": "100m", "hugepages-2Mi": "2Mi"}, "limits": {"memory": "1Gi"}},
                    "env": [{"name": "E", "value": "1"}],
                    "volumeMounts": [{"name": "m", "mountPath": "/m"}]}],
                "volumes": [{"name": "m", "emptyDir": {}}],
                "nodeSelector": {"n": "1"},
                "restartPolicy": "Never"
            },
            "status": {"phase": "Pending"}
        });
        let view: PodView = serde_json::from_value(v.clone()).unwrap();
        let full: k8s_openapi::api::core::v1::Pod = serde_json::from_value(v).unwrap();
        let spec = full.spec.unwrap();
        let c = &spec.containers[0];
        let vc = &view.spec.as_ref().unwrap().containers()[0];
        assert_eq!(view.metadata.name, full.metadata.name);
        assert_eq!(view.metadata.namespace, full.metadata.namespace);
        assert_eq!(view.metadata.labels, full.metadata.labels);
        assert_eq!(view.metadata.annotations, full.metadata.annotations);
        assert_eq!(vc.name, c.name);
        let quantities =
            |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
                m.map(|m| {
                    m.iter()
                        .map(|(k, q)| (k.clone(), q.0.clone()))
                        .collect::<BTreeMap<_, _>>()
                })
            };
        let r = c.resources.as_ref().unwrap();
        let vr = vc.resources.as_ref().unwrap();
        assert_eq!(vr.requests, quantities(r.requests.as_ref()));
        assert_eq!(vr.limits, quantities(r.limits.as_ref()));
        assert_eq!(vc.env.as_ref().unwrap()[0].name, c.env.as_ref().unwrap()[0].name);
        assert_eq!(
            vc.volume_mounts.as_ref().unwrap()[0].name,
            c.volume_mounts.as_ref().unwrap()[0].name
        );
        let vs = view.spec.as_ref().unwrap();
        assert_eq!(
            vs.volumes.as_ref().unwrap()[0].name,
            spec.volumes.as_ref().unwrap()[0].name
        );
        assert_eq!(vs.node_selector, spec.node_selector);
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_naming_it() {
        let e = serde_json::from_value::<PodView>(json!({"spec": {"containers": [{"name": 7}]}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type: integer `7`"), "{e}");
    }
}
