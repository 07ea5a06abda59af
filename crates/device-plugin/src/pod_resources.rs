//! Reading the kubelet's PodResources API (`<kubelet root>/pod-resources/kubelet.sock`, v1
//! `List`): which pod and container holds which device of which resource. This is what Kuryr and
//! Multus read to learn a pod's VF; `sriovctl pod-resources` shows it, and the tests on the real
//! kubelet use it to check what sriovdp allocated.
//!
//! [`flatten`] (pure) turns the kubelet's nested answer into one row per container and resource;
//! [`list`] is the I/O around it.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tonic::transport::Endpoint;

use crate::podresources as api;

/// The kubelet's default PodResources socket.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// One container's devices of one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PodDevices {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub resource: String,
    /// Device ids as the device plugin advertised them (PCI addresses for SR-IOV VFs), sorted.
    pub devices: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PodResourcesError {
    #[error("invalid PodResources socket path {0}")]
    Path(String),
    #[error("cannot connect to the kubelet's PodResources socket {path}: {source}")]
    Connect {
        path: String,
        source: tonic::transport::Error,
    },
    #[error("PodResources List on {path} failed: {status}")]
    List { path: String, status: tonic::Status },
}

/// One row per (pod, container, resource) that holds devices, sorted by namespace, pod,
/// container and resource. The kubelet sends one `ContainerDevices` entry per device group (one
/// device each on the real kubelet, seen in the lab); they are merged. `resource` keeps only that
/// resource's rows.
pub fn flatten(resp: &api::ListPodResourcesResponse, resource: Option<&str>) -> Vec<PodDevices> {
    let mut rows: std::collections::BTreeMap<(&str, &str, &str, &str), Vec<String>> = Default::default();
    for p in &resp.pod_resources {
        for c in &p.containers {
            for d in &c.devices {
                if d.device_ids.is_empty() || resource.is_some_and(|r| d.resource_name != r) {
                    continue;
                }
                rows.entry((&p.namespace, &p.name, &c.name, &d.resource_name))
                    .or_default()
                    .extend(d.device_ids.iter().cloned());
            }
        }
    }
    rows.into_iter()
        .map(|((namespace, pod, container, resource), mut devices)| {
            devices.sort();
            devices.dedup();
            PodDevices {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
                resource: resource.into(),
                devices,
            }
        })
        .collect()
}

/// Calls `List` on the kubelet's PodResources socket.
pub async fn list(
    socket: &Path,
    timeout: Duration,
) -> Result<api::ListPodResourcesResponse, PodResourcesError> {
    let path = socket.display().to_string();
    let ep = Endpoint::from_shared(format!("unix://{path}"))
        .map_err(|_| PodResourcesError::Path(path.clone()))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = ep.connect().await.map_err(|source| PodResourcesError::Connect {
        path: path.clone(),
        source,
    })?;
    let mut client = api::pod_resources_lister_client::PodResourcesListerClient::new(channel);
    client
        .list(api::ListPodResourcesRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| PodResourcesError::List { path, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(resource: &str, ids: &[&str]) -> api::ContainerDevices {
        api::ContainerDevices {
            resource_name: resource.into(),
            device_ids: ids.iter().map(|s| s.to_string()).collect(),
            topology: None,
        }
    }

    fn container(name: &str, devs: Vec<api::ContainerDevices>) -> api::ContainerResources {
        api::ContainerResources {
            name: name.into(),
            devices: devs,
            ..Default::default()
        }
    }

    #[test]
    fn one_row_per_container_and_resource_sorted_and_filtered() {
        let resp = api::ListPodResourcesResponse {
            pod_resources: vec![
                api::PodResources {
                    name: "web".into(),
                    namespace: "b".into(),
                    containers: vec![container(
                        "c",
                        vec![
                            devices("intel.com/vf", &["0000:01:10.3", "0000:01:10.1"]),
                            devices("intel.com/empty", &[]),
                        ],
                    )],
                },
                api::PodResources {
                    name: "db".into(),
                    namespace: "a".into(),
                    containers: vec![
                        container("sidecar", vec![]),
                        container("main", vec![devices("intel.com/dpdk", &["0000:01:10.5"])]),
                    ],
                },
            ],
        };
        let rows = flatten(&resp, None);
        assert_eq!(
            rows.iter()
                .map(|r| (r.pod.as_str(), r.container.as_str(), r.resource.as_str()))
                .collect::<Vec<_>>(),
            [("db", "main", "intel.com/dpdk"), ("web", "c", "intel.com/vf")]
        );
        assert_eq!(rows[1].devices, ["0000:01:10.1", "0000:01:10.3"]);
        let only = flatten(&resp, Some("intel.com/vf"));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].namespace, "b");
    }
}
