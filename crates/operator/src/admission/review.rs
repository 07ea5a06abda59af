//! The `AdmissionReview` wire format (`admission.k8s.io/v1`, and `v1beta1`, which has the same
//! shape) around [`mutate`](super::mutate) and the validators, shared by the HTTPS webhook and
//! `sriovctl validate` / `sriovctl mutate`.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::objects::{
    self, Cluster, Network, OperatorConfig, Policy, PoolConfig, policy_name, policy_namespace,
};
use super::{AdmissionError, Settings, Verdict, dynamic, mutate, others, policy};

/// Which webhook path is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `/mutating-custom-resource`.
    Mutate,
    /// `/validating-custom-resource`.
    Validate,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Gvk {
    #[serde(default)]
    kind: String,
}

/// The fields of `request` admission uses (the rest is ignored).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: Gvk,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
}

fn envelope(field: &str, reason: impl Into<String>) -> AdmissionError {
    AdmissionError::Review {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Answers one `AdmissionReview` (as JSON) with the `AdmissionReview` carrying the response.
/// `Err` only when the envelope itself is unusable (the HTTPS server answers 400 then); an
/// object that cannot be decoded is a denial naming the object and field.
pub fn review(
    hook: Hook,
    review: &Value,
    settings: &Settings,
    cluster: &Cluster,
) -> Result<Value, AdmissionError> {
    let api_version = review.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !matches!(api_version, "admission.k8s.io/v1" | "admission.k8s.io/v1beta1") {
        return Err(envelope(
            "apiVersion",
            format!("{api_version:?} is not admission.k8s.io/v1 (or v1beta1)"),
        ));
    }
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" {
        return Err(envelope("kind", format!("{kind:?} is not AdmissionReview")));
    }
    let request = review
        .get("request")
        .filter(|r| !r.is_null())
        .ok_or_else(|| envelope("request", "missing"))?;
    let request: Request = serde_path_to_error::deserialize(request)
        .map_err(|e| envelope(&format!("request.{}", e.path()), e.into_inner().to_string()))?;
    let verdict = match hook {
        Hook::Mutate => mutate_request(&request)?,
        Hook::Validate => validate_request(&request, settings, cluster)?,
    };
    Ok(json!({
        "kind": "AdmissionReview",
        "apiVersion": api_version,
        "response": response(&request.uid, &verdict),
    }))
}

/// The `response` object, fields in upstream's order.
fn response(uid: &str, verdict: &Verdict) -> Value {
    let mut r = Map::new();
    r.insert("uid".into(), uid.into());
    r.insert("allowed".into(), verdict.allowed().into());
    if let Some(text) = &verdict.denied {
        // Upstream puts the text in `reason`; `message` too, so that kubectl prints it in the
        // sentence ("denied the request: <text>") instead of "without explanation".
        r.insert(
            "status".into(),
            json!({ "metadata": {}, "message": text, "reason": text }),
        );
    }
    if let Some(patch) = &verdict.patch {
        let bytes = serde_json::to_vec(patch).unwrap_or_else(|_| b"[]".to_vec());
        r.insert(
            "patch".into(),
            base64::engine::general_purpose::STANDARD.encode(bytes).into(),
        );
        r.insert("patchType".into(), "JSONPatch".into());
    }
    if !verdict.warnings.is_empty() {
        r.insert("warnings".into(), verdict.warnings.clone().into());
    }
    Value::Object(r)
}

/// The object under review: `oldObject` for DELETE, else `object`.
fn object_of(request: &Request) -> Result<&Value, AdmissionError> {
    let (field, obj) = if request.operation == "DELETE" {
        ("request.oldObject", request.old_object.as_ref())
    } else {
        ("request.object", request.object.as_ref())
    };
    obj.filter(|o| o.is_object())
        .ok_or_else(|| envelope(field, "missing or not an object"))
}

fn mutate_request(request: &Request) -> Result<Verdict, AdmissionError> {
    if !matches!(request.kind.kind.as_str(), "SriovNetworkNodePolicy" | "") {
        return Ok(Verdict::allow());
    }
    Ok(mutate::mutate_policy(object_of(request)?))
}

/// Decodes the object as `T`; a decode failure becomes a denial naming object and field.
fn decoded<T: serde::de::DeserializeOwned + Default>(kind: &str, obj: &Value) -> Result<T, Verdict> {
    objects::decode(kind, obj).map_err(|e| Verdict::deny(e.to_string()))
}

fn validate_request(
    request: &Request,
    settings: &Settings,
    cluster: &Cluster,
) -> Result<Verdict, AdmissionError> {
    let kind = request.kind.kind.as_str();
    let obj = object_of(request)?;
    let ns = &settings.namespace;
    let req_ns = request.namespace.clone().unwrap_or_default();
    let fill_ns = |meta: &mut objects::Meta| {
        if meta.namespace.is_empty() {
            meta.namespace = req_ns.clone();
        }
    };
    let delete = request.operation == "DELETE";
    let verdict = match kind {
        "SriovNetworkNodePolicy" => match decoded::<Policy>(kind, obj) {
            Err(v) => v,
            Ok(mut p) => {
                if policy_namespace(&p).is_empty() {
                    p.metadata.namespace = Some(req_ns.clone());
                }
                match policy::raw_schema_check(&p, obj) {
                    Err(text) if !delete => Verdict::deny(text),
                    _ => validate_policy(&p, delete, settings, cluster),
                }
            }
        },
        "SriovOperatorConfig" if !delete => match decoded::<OperatorConfig>(kind, obj) {
            Err(v) => v,
            Ok(mut c) => {
                if c.metadata.namespace.as_deref().unwrap_or("").is_empty() {
                    c.metadata.namespace = Some(req_ns.clone());
                }
                let old: Option<OperatorConfig> = match &request.old_object {
                    Some(o) if o.is_object() => objects::decode(kind, o).ok(),
                    _ => None,
                };
                let previous = cluster.operator_config.as_ref().or(old.as_ref());
                match others::check_operator_config(&c, previous, cluster, ns) {
                    Ok(warnings) => Verdict {
                        warnings,
                        ..Verdict::allow()
                    },
                    Err((text, warnings)) => Verdict {
                        warnings,
                        ..Verdict::deny(text)
                    },
                }
            }
        },
        "SriovNetworkPoolConfig" => match decoded::<PoolConfig>(kind, obj) {
            Err(v) => v,
            Ok(p) => others::check_pool_config(&p).map_or_else(Verdict::deny, |()| Verdict::allow()),
        },
        "SriovNetwork" | "SriovIBNetwork" | "OVSNetwork" => match decoded::<Network>(kind, obj) {
            Err(v) => v,
            Ok(mut n) => {
                fill_ns(&mut n.metadata);
                others::check_network(&n, ns).map_or_else(Verdict::deny, |()| Verdict::allow())
            }
        },
        _ => Verdict::allow(),
    };
    Ok(verdict)
}

/// Upstream `validateSriovNetworkNodePolicy`: namespace warning, then (not for DELETE) the
/// schema, static and dynamic rules.
pub fn validate_policy(p: &Policy, delete: bool, settings: &Settings, cluster: &Cluster) -> Verdict {
    let (name, ns) = (policy_name(p), &settings.namespace);
    if name == "default" && policy_namespace(p) == ns {
        return Verdict::allow();
    }
    let mut warnings = Vec::new();
    if policy_namespace(p) != ns {
        warnings.push(format!(
            "{name} is created or updated but not used. Only policy in {ns} namespace is respected."
        ));
    }
    if delete {
        return Verdict {
            warnings,
            ..Verdict::allow()
        };
    }
    let checked = policy::schema_check(p)
        .and_then(|()| policy::static_check(p, settings, &cluster.nics))
        .and_then(|mut w| {
            w.extend(dynamic::dynamic_check(p, cluster, settings)?);
            Ok(w)
        });
    match checked {
        Ok(more) => {
            warnings.extend(more);
            Verdict {
                warnings,
                ..Verdict::allow()
            }
        }
        Err(text) => Verdict {
            warnings,
            ..Verdict::deny(text)
        },
    }
}
