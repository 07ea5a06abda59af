//! The part of an admitted pod the mutation reads, decoded straight from the AdmissionReview.
//!
//! Why not `k8s_openapi::api::core::v1::Pod`: decoding the whole pod allocates a string for every
//! field the injector never looks at (images, commands, probes, security contexts...), and its
//! deserializers are a large share of the binary's code, which issue #13 counts as resident memory
//! (the kernel maps text in 64 KiB windows around every executed function). serde skips the
//! fields not named here without allocating. The apiserver sends webhooks pods it has already
//! decoded and re-encoded, so the fields read here have the Pod schema's types; a body where they
//! do not is answered as "pod could not be decoded", as before.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer};

/// A string of the admitted pod: borrowed from the request body, copied only when the JSON
/// spells it with an escape. Why not `Cow<'a, str>`: serde borrows a `Cow` only when it is a
/// struct's own field, never inside an `Option`, a `Vec` or a map (serde#1497), which is where
/// these strings are. An admission used to allocate every one of them (issue #13).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by `Str` are looked up by `&str` (`Cow<str>` orders and hashes as `str`).
impl Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Str(Cow::Borrowed(s))
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str(Cow::Owned(s))
    }
}

impl PartialEq<str> for Str<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A string-to-string map of the pod (labels, annotations, quantities, node selector).
pub type StrMap<'a> = BTreeMap<Str<'a>, Str<'a>>;

/// `metadata` and `spec` of a pod, as far as the mutation needs them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PodView<'a> {
    #[serde(default, borrow)]
    pub metadata: PodMetadata<'a>,
    #[serde(borrow)]
    pub spec: Option<PodSpecView<'a>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct PodMetadata<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow)]
    pub namespace: Option<Str<'a>>,
    #[serde(borrow)]
    pub labels: Option<StrMap<'a>>,
    #[serde(borrow)]
    pub annotations: Option<StrMap<'a>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecView<'a> {
    #[serde(borrow)]
    pub containers: Option<Vec<ContainerView<'a>>>,
    #[serde(borrow)]
    pub volumes: Option<Vec<Named<'a>>>,
    #[serde(borrow)]
    pub node_selector: Option<StrMap<'a>>,
}

impl<'a> PodSpecView<'a> {
    pub fn containers(&self) -> &[ContainerView<'a>] {
        self.containers.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView<'a> {
    #[serde(default, borrow)]
    pub name: Str<'a>,
    #[serde(borrow)]
    pub resources: Option<Resources<'a>>,
    #[serde(borrow)]
    pub env: Option<Vec<Named<'a>>>,
    #[serde(borrow)]
    pub volume_mounts: Option<Vec<Named<'a>>>,
}

/// `resources.requests` / `resources.limits`: quantities as the apiserver writes them (strings).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Resources<'a> {
    #[serde(borrow)]
    pub requests: Option<StrMap<'a>>,
    #[serde(borrow)]
    pub limits: Option<StrMap<'a>>,
}

/// An env var, volume or volume mount: the mutation only compares names.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Named<'a> {
    #[serde(default, borrow)]
    pub name: Str<'a>,
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
        let text = v.to_string();
        let view: PodView = serde_json::from_str(&text).unwrap();
        let full: k8s_openapi::api::core::v1::Pod = serde_json::from_value(v).unwrap();
        let spec = full.spec.unwrap();
        let c = &spec.containers[0];
        let vc = &view.spec.as_ref().unwrap().containers()[0];
        let owned = |m: &Option<StrMap>| {
            m.as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        assert_eq!(view.metadata.name.as_deref(), full.metadata.name.as_deref());
        assert_eq!(
            view.metadata.namespace.as_deref(),
            full.metadata.namespace.as_deref()
        );
        assert_eq!(owned(&view.metadata.labels), full.metadata.labels);
        assert_eq!(owned(&view.metadata.annotations), full.metadata.annotations);
        assert_eq!(*vc.name, c.name);
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
        assert_eq!(owned(&vr.requests), quantities(r.requests.as_ref()));
        assert_eq!(owned(&vr.limits), quantities(r.limits.as_ref()));
        assert_eq!(*vc.env.as_ref().unwrap()[0].name, c.env.as_ref().unwrap()[0].name);
        assert_eq!(
            *vc.volume_mounts.as_ref().unwrap()[0].name,
            c.volume_mounts.as_ref().unwrap()[0].name
        );
        let vs = view.spec.as_ref().unwrap();
        assert_eq!(
            *vs.volumes.as_ref().unwrap()[0].name,
            spec.volumes.as_ref().unwrap()[0].name
        );
        assert_eq!(owned(&vs.node_selector), spec.node_selector);
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_naming_it() {
        let e = serde_json::from_str::<PodView>(r#"{"spec": {"containers": [{"name": 7}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type: integer `7`"), "{e}");
    }

    /// Strings are borrowed from the body, except one written with a JSON escape, which is
    /// decoded into a copy; both read the same.
    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let text = r#"{"metadata": {"name": "p", "annotations": {"k8s.v1.cni.cncf.io/networks": "[{\"name\":\"a\"}]", "plain": "net-a"}}}"#;
        let view: PodView = serde_json::from_str(text).unwrap();
        let annotations = view.metadata.annotations.as_ref().unwrap();
        assert!(matches!(
            view.metadata.name.as_ref().unwrap().0,
            Cow::Borrowed("p")
        ));
        assert!(matches!(annotations["plain"].0, Cow::Borrowed("net-a")));
        let escaped = &annotations["k8s.v1.cni.cncf.io/networks"];
        assert!(matches!(escaped.0, Cow::Owned(_)));
        assert_eq!(**escaped, *r#"[{"name":"a"}]"#);
    }
}
