//! One HTTP request to `/mutate` → one HTTP answer, as upstream's `MutateHandler` gives it:
//! status codes and messages for a bad request, otherwise an AdmissionReview response with the
//! patch (base64 JSONPatch) or the denial.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mutate::{Denied, NadLookup, Settings, mutate};
use crate::pod::PodView;
use crate::switches::Switches;

/// Upstream's body limit (`http.MaxBytesReader(.., 1<<20)`).
pub const MAX_BODY: usize = 1 << 20;

/// What goes back over HTTP.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// `application/json` for an AdmissionReview, `text/plain` for an HTTP error.
    pub json: bool,
    pub body: String,
}

impl Answer {
    fn error(status: u16, message: String) -> Answer {
        tracing::warn!(status, "{message}");
        // Go's http.Error appends a newline.
        Answer {
            status,
            json: false,
            body: format!("{message}\n"),
        }
    }
}

/// The request body as read: bytes, or over [`MAX_BODY`].
pub enum Body<'a> {
    Bytes(&'a [u8]),
    TooLarge,
}

/// The AdmissionReview as read on the hot path: the pod decoded straight from the body (no
/// intermediate `serde_json::Value`). Only when that fails is the body read again as
/// [`Review<Value>`], to tell a review that is not one from a pod that does not decode.
/// The strings are borrowed from the body (copied only when they contain a JSON escape).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review<'a, O> {
    #[serde(default, borrow)]
    api_version: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    request: Option<Request<'a, O>>,
}

#[derive(Deserialize)]
struct Request<'a, O> {
    #[serde(default, borrow)]
    uid: Cow<'a, str>,
    #[serde(default, borrow)]
    namespace: Cow<'a, str>,
    #[serde(default, borrow)]
    operation: Cow<'a, str>,
    object: Option<O>,
}

/// The AdmissionReview answered, in the field order of upstream's Go types (`kind`, `apiVersion`,
/// `response`; `uid`, `allowed`, `status`, `patch`, `patchType`), serialized without building a
/// `serde_json::Value` first (see [`crate::patch`] for why).
#[derive(Serialize)]
struct ReviewOut<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: Cow<'a, str>,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    /// The JSONPatch bytes, written base64-encoded straight into the answer.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "base64_str")]
    patch: Option<Vec<u8>>,
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
}

/// metav1.Status as upstream fills it: an empty `metadata` and the message.
#[derive(Serialize)]
struct StatusOut {
    metadata: Empty,
    message: Cow<'static, str>,
}

#[derive(Serialize)]
struct Empty {}

/// `[]byte` as Go's encoder writes it: a base64 (standard alphabet, padded) JSON string.
fn base64_str<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.collect_str(&base64::display::Base64Display::new(
            b,
            &base64::engine::general_purpose::STANDARD,
        )),
        None => s.serialize_none(),
    }
}

fn status(message: impl Into<Cow<'static, str>>) -> Option<StatusOut> {
    Some(StatusOut {
        metadata: Empty {},
        message: message.into(),
    })
}

/// Handles one `/mutate` request.
pub fn answer(
    content_type: Option<&str>,
    body: Body<'_>,
    nads: &dyn NadLookup,
    settings: &Settings,
    switches: &Switches,
) -> Answer {
    let bytes = match body {
        Body::Bytes(b) if !b.is_empty() => b,
        Body::Bytes(_) => return Answer::error(400, "Error reading HTTP request: empty body".into()),
        Body::TooLarge => {
            return Answer::error(
                400,
                format!("Error reading HTTP request: body larger than {MAX_BODY} bytes"),
            );
        }
    };
    let content_type = content_type.unwrap_or("");
    if content_type != "application/json" {
        return Answer::error(
            415,
            format!("Invalid Content-Type='{content_type}', expected 'application/json'"),
        );
    }
    // Fast path: the pod as a typed object; on failure, the generic read says what is wrong.
    // The pod borrows its strings from the body, or in that second read from `object`.
    let object: Option<Value>;
    let (review, pod) = match serde_json::from_slice::<Review<PodView>>(bytes) {
        Ok(mut r) => {
            let pod = Ok(r.request.as_mut().and_then(|q| q.object.take()));
            (r, pod)
        }
        Err(_) => match serde_json::from_slice::<Review<Value>>(bytes) {
            Err(e) => return Answer::error(400, format!("error deserializing AdmissionReview: {e}")),
            Ok(mut r) => {
                object = r.request.as_mut().and_then(|q| q.object.take());
                let pod = object.as_ref().map(PodView::deserialize).transpose();
                let review = Review::<PodView> {
                    api_version: r.api_version,
                    kind: r.kind,
                    request: r.request.map(|q| Request {
                        uid: q.uid,
                        namespace: q.namespace,
                        operation: q.operation,
                        object: None,
                    }),
                };
                (review, pod)
            }
        },
    };
    if review.kind != "AdmissionReview" {
        return Answer::error(
            400,
            "error deserializing AdmissionReview: received object is not an AdmissionReview".into(),
        );
    }
    let Some(request) = review.request else {
        return Answer::error(
            400,
            "error preparing AdmissionResponse: received empty AdmissionReview request".into(),
        );
    };
    let mut response = ResponseOut {
        uid: request.uid,
        allowed: true,
        status: None,
        patch: None,
        patch_type: None,
    };
    if request.operation != "CREATE" && !request.operation.is_empty() {
        // Only pod CREATE is registered; anything else passes untouched.
        response.status = status("allowed");
    } else {
        match pod {
            Err(e) => {
                response.allowed = false;
                response.status = status(format!("pod could not be decoded: {e}"));
            }
            Ok(None) => {
                response.allowed = false;
                response.status = status("AdmissionReview request has no object");
            }
            Ok(Some(pod)) => match mutate(&pod, &request.namespace, nads, settings, switches) {
                Err(Denied::BadAnnotation(e)) => return Answer::error(400, e.to_string()),
                Err(Denied::Refused(message)) => {
                    tracing::info!(
                        pod = pod.metadata.name.as_deref().unwrap_or(""),
                        "denied: {message}"
                    );
                    response.allowed = false;
                    response.status = status(message);
                }
                Ok(m) => {
                    response.status = status(m.message);
                    if !m.patch.is_empty() {
                        // About 90 bytes an operation (the bench's 8 make 740).
                        let mut bytes = Vec::with_capacity(128 * m.patch.len());
                        match serde_json::to_writer(&mut bytes, &m.patch) {
                            Ok(()) => {
                                response.patch = Some(bytes);
                                response.patch_type = Some("JSONPatch");
                            }
                            Err(e) => return Answer::error(500, format!("error encoding the patch: {e}")),
                        }
                    }
                }
            },
        }
    }
    let api_version = if review.api_version.is_empty() {
        "admission.k8s.io/v1"
    } else {
        &review.api_version
    };
    let out = ReviewOut {
        kind: "AdmissionReview",
        api_version,
        response,
    };
    // One buffer sized for the answer: base64 is 4/3 of the patch, the rest under 256 bytes
    // unless the uid or a message is long (then the buffer grows).
    let patch_len = out.response.patch.as_ref().map_or(0, Vec::len);
    let mut body = Vec::with_capacity(256 + patch_len.div_ceil(3) * 4);
    match serde_json::to_writer(&mut body, &out).map(|()| String::from_utf8(body)) {
        Ok(Ok(body)) => Answer {
            status: 200,
            json: true,
            body,
        },
        Ok(Err(e)) => Answer::error(500, format!("error encoding the AdmissionReview: {e}")),
        Err(e) => Answer::error(500, format!("error encoding the AdmissionReview: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use base64::Engine;

    type Nads = BTreeMap<(String, String), BTreeMap<String, String>>;

    fn nads() -> Nads {
        let mut n = Nads::new();
        n.insert(
            ("default".into(), "net-a".into()),
            [(
                "k8s.v1.cni.cncf.io/resourceName".to_string(),
                "intel.com/sriov".to_string(),
            )]
            .into(),
        );
        n
    }

    fn review(networks: &str) -> String {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-1", "namespace": "default", "operation": "CREATE",
            "object": {"metadata": {"name": "p", "annotations": {"k8s.v1.cni.cncf.io/networks": networks}},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
        .to_string()
    }

    fn run(ct: Option<&str>, body: Body<'_>) -> Answer {
        answer(ct, body, &nads(), &Settings::default(), &Switches::default())
    }

    #[test]
    fn allowed_with_a_base64_json_patch() {
        let body = review("net-a");
        let a = run(Some("application/json"), Body::Bytes(body.as_bytes()));
        assert_eq!(a.status, 200);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["response"]["uid"], "u-1");
        assert_eq!(v["response"]["allowed"], true);
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            patch[2]["path"],
            "/spec/containers/0/resources/requests/intel.com~1sriov"
        );
    }

    /// The whole answer, byte for byte: upstream's field order, the patch base64-encoded.
    #[test]
    fn the_answer_bytes_are_upstreams() {
        let body = review("net-a");
        let a = run(Some("application/json"), Body::Bytes(body.as_bytes()));
        let patch = concat!(
            r#"[{"op":"add","path":"/spec/containers/0/resources/requests","value":{}},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/limits","value":{}},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/requests/intel.com~1sriov","value":"1"},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/limits/intel.com~1sriov","value":"1"},"#,
            r#"{"op":"add","path":"/spec/containers/0/volumeMounts","value":[{"name":"podnetinfo","readOnly":true,"mountPath":"/etc/podnetinfo"}]},"#,
            r#"{"op":"add","path":"/spec/volumes","value":[{"name":"podnetinfo","downwardAPI":{"items":[{"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}}]}}]}]"#
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(patch);
        assert_eq!(
            a.body,
            format!(
                r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{{"uid":"u-1","allowed":true,"status":{{"metadata":{{}},"message":"allowed"}},"patch":"{encoded}","patchType":"JSONPatch"}}}}"#
            )
        );
        let denied = run(Some("application/json"), Body::Bytes(review("nope").as_bytes()));
        assert_eq!(
            denied.body,
            r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":"u-1","allowed":false,"status":{"metadata":{},"message":"could not find network attachment definition 'default/nope': could not get Network Attachment Definition default/nope: network-attachment-definitions.k8s.cni.cncf.io \"nope\" not found"}}}"#
        );
    }

    #[test]
    fn missing_nad_is_a_denial_inside_a_200() {
        let body = review("nope");
        let a = run(Some("application/json"), Body::Bytes(body.as_bytes()));
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(v["response"]["allowed"], false);
        assert!(
            v["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .starts_with("could not find network attachment definition 'default/nope'")
        );
    }

    #[test]
    fn http_errors_are_upstreams() {
        let body = review("net-a");
        let a = run(Some("text/plain"), Body::Bytes(body.as_bytes()));
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                415,
                "Invalid Content-Type='text/plain', expected 'application/json'\n"
            )
        );
        assert_eq!(run(Some("application/json"), Body::Bytes(b"")).status, 400);
        assert_eq!(run(Some("application/json"), Body::TooLarge).status, 400);
        let a = run(Some("application/json"), Body::Bytes(b"{not json"));
        assert_eq!(a.status, 400);
        assert!(
            a.body.starts_with("error deserializing AdmissionReview"),
            "{}",
            a.body
        );
        let bad = review("x/y/z");
        let a = run(Some("application/json"), Body::Bytes(bad.as_bytes()));
        assert_eq!(a.status, 400);
        assert!(
            a.body.contains("more than one '/' rune in: 'x/y/z'"),
            "{}",
            a.body
        );
    }
}
