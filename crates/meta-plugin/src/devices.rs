//! The devices the kubelet gave a pod (PodResources `List`), handed out to the pod's networks
//! in order, as Multus does: every container's devices of a resource together, sorted, and the
//! n-th network naming that resource gets the n-th device.

use std::collections::BTreeMap;

use sriov_device_plugin::pod_resources::PodDevices;

/// The pod's devices per resource and how many each resource has handed out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodDeviceMap {
    resources: BTreeMap<String, (Vec<String>, usize)>,
}

impl PodDeviceMap {
    /// The devices of pod `namespace/name` in `rows` (PodResources flattened).
    pub fn for_pod(rows: &[PodDevices], namespace: &str, name: &str) -> PodDeviceMap {
        let mut resources: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.namespace == namespace && r.pod == name) {
            resources
                .entry(r.resource.clone())
                .or_default()
                .0
                .extend(r.devices.iter().cloned());
        }
        for (ids, _) in resources.values_mut() {
            ids.sort();
            ids.dedup();
        }
        PodDeviceMap { resources }
    }

    /// The next device of `resource` no earlier network took; `None` when all are taken or the
    /// pod holds none.
    pub fn next(&mut self, resource: &str) -> Option<String> {
        let (ids, used) = self.resources.get_mut(resource)?;
        let id = ids.get(*used)?.clone();
        *used += 1;
        Some(id)
    }

    /// The devices the pod holds of `resource`.
    pub fn held(&self, resource: &str) -> &[String] {
        self.resources
            .get(resource)
            .map(|(ids, _)| ids.as_slice())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(ns: &str, pod: &str, c: &str, res: &str, ids: &[&str]) -> PodDevices {
        PodDevices {
            namespace: ns.into(),
            pod: pod.into(),
            container: c.into(),
            resource: res.into(),
            devices: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn next_unused_device_per_resource_across_containers() {
        let rows = [
            row("a", "web", "c2", "intel.com/vf", &["0000:01:10.4"]),
            row(
                "a",
                "web",
                "c1",
                "intel.com/vf",
                &["0000:01:10.2", "0000:01:10.0"],
            ),
            row("a", "web", "c1", "intel.com/dpdk", &["0000:02:00.1"]),
            row("a", "other", "c1", "intel.com/vf", &["0000:01:10.6"]),
            row("b", "web", "c1", "intel.com/vf", &["0000:01:10.8"]),
        ];
        let mut m = PodDeviceMap::for_pod(&rows, "a", "web");
        assert_eq!(
            m.held("intel.com/vf"),
            ["0000:01:10.0", "0000:01:10.2", "0000:01:10.4"]
        );
        assert_eq!(m.next("intel.com/vf").unwrap(), "0000:01:10.0");
        assert_eq!(m.next("intel.com/dpdk").unwrap(), "0000:02:00.1");
        assert_eq!(m.next("intel.com/vf").unwrap(), "0000:01:10.2");
        assert_eq!(m.next("intel.com/vf").unwrap(), "0000:01:10.4");
        assert_eq!(m.next("intel.com/vf"), None, "all three are taken");
        assert_eq!(m.next("intel.com/dpdk"), None);
        assert_eq!(m.next("nvidia.com/none"), None);
    }
}
