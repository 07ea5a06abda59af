//! `CNI_ARGS` (`KEY=VALUE;KEY=VALUE`): the pod's identity as the runtime sends it.

/// The four `K8S_*` args every Kubernetes runtime sends ("" when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct K8sArgs {
    pub namespace: String,
    pub name: String,
    pub infra_container_id: String,
    pub uid: String,
}

/// Splits `CNI_ARGS` into pairs (a value may contain `=`; a part without `=` is skipped, as
/// Multus skips it).
pub fn split(args: &str) -> Vec<(String, String)> {
    args.split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl K8sArgs {
    pub fn from_pairs(pairs: &[(String, String)]) -> K8sArgs {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        K8sArgs {
            namespace: get("K8S_POD_NAMESPACE"),
            name: get("K8S_POD_NAME"),
            infra_container_id: get("K8S_POD_INFRA_CONTAINER_ID"),
            uid: get("K8S_POD_UID"),
        }
    }

    /// `namespace/name` (and the UID when known): how errors name the pod.
    pub fn pod(&self) -> String {
        if self.uid.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{} (uid {})", self.namespace, self.name, self.uid)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn containerds_args() {
        let p = split(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;X=a=b;junk",
        );
        let k = K8sArgs::from_pairs(&p);
        assert_eq!(k.pod(), "ns/web (uid u-1)");
        assert_eq!(k.infra_container_id, "abc");
        assert_eq!(p.last().unwrap(), &("X".to_string(), "a=b".to_string()));
        assert_eq!(p.len(), 6);
    }
}
