//! The few API calls the meta plugin makes, all within Multus' RBAC (`pods`, `pods/status`:
//! get and update; NADs: get): read the pod and a NAD, write network-status with a GET and an
//! update of the pod's status, as network-attachment-definition-client does.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use sriov_api::NetworkAttachmentDefinition;

use crate::status::NETWORK_STATUS_ANNOTATION;

/// Every call's limit: a CNI ADD must not hang the sandbox.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("{what}: no answer within {TIMEOUT:?}")]
    Timeout { what: String },
    #[error("pod {pod}: expected UID {want}, the API has {have}")]
    Uid { pod: String, want: String, have: String },
}

async fn timed<T>(
    what: impl Fn() -> String,
    f: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => r.map_err(|source| ApiError::Kube { what: what(), source }),
        Err(_) => Err(ApiError::Timeout { what: what() }),
    }
}

/// A client from the config's `kubeconfig`.
pub async fn client(path: &Path) -> Result<kube::Client, ApiError> {
    let err = |reason: String| ApiError::Kubeconfig {
        path: path.display().to_string(),
        reason,
    };
    let kc = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    kube::Client::try_from(cfg).map_err(|e| err(e.to_string()))
}

/// The pod, `None` when it does not exist.
pub async fn pod(client: &kube::Client, namespace: &str, name: &str) -> Result<Option<Pod>, ApiError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    timed(|| format!("GET pod {namespace}/{name}"), api.get_opt(name)).await
}

/// The NAD, `None` when it does not exist.
pub async fn nad(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), namespace);
    timed(
        || format!("GET network-attachment-definition {namespace}/{name}"),
        api.get_opt(name),
    )
    .await
}

/// Sets the network-status annotation: update of `pods/status` (Multus' ClusterRole allows
/// `get` and `update`, not `patch`), retried on a conflict with the pod read again.
/// `Ok(false)` when the pod is gone (tolerated, as Multus does).
///
/// `read` is the pod as ADD already read it (for its annotations), used for the first attempt
/// instead of a second GET: between the two the kubelet is still waiting for this ADD, so the
/// pod has rarely changed, and when it has the update gets a 409 and the loop reads it again.
pub async fn set_network_status(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: &str,
    text: &str,
    read: Option<Pod>,
) -> Result<bool, ApiError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = || format!("update pods/status {namespace}/{name}");
    let mut read = read;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut p = match read.take() {
            Some(p) => p,
            None => match pod(client, namespace, name).await? {
                Some(p) => p,
                None => return Ok(false),
            },
        };
        let have = p.metadata.uid.clone().unwrap_or_default();
        if !uid.is_empty() && have != uid {
            return Err(ApiError::Uid {
                pod: format!("{namespace}/{name}"),
                want: uid.to_string(),
                have,
            });
        }
        p.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(NETWORK_STATUS_ANNOTATION.into(), text.into());
        match timed(what, api.replace_status(name, &PostParams::default(), &p)).await {
            Ok(_) => return Ok(true),
            Err(ApiError::Kube {
                source: kube::Error::Api(ref s),
                ..
            }) if s.code == 409 && attempt < 5 => continue,
            Err(ApiError::Kube {
                source: kube::Error::Api(ref s),
                ..
            }) if s.code == 404 => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}
