//! The CRDs, generated from the types (never hand-written) so schema and code cannot drift.
//! `deploy/crds/*.yaml` is the checked-in output of [`crd_files`]; a test compares them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{
    NetworkAttachmentDefinition, OVSNetwork, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy,
    SriovNetworkNodeState, SriovNetworkPoolConfig, SriovOperatorConfig,
};

/// The sriov-rs CRDs (`sriovnetwork.openshift.io`), in a fixed order.
pub fn sriov_crds() -> Vec<CustomResourceDefinition> {
    [
        SriovNetworkNodePolicy::crd(),
        SriovNetworkNodeState::crd(),
        SriovNetwork::crd(),
        SriovIBNetwork::crd(),
        OVSNetwork::crd(),
        SriovOperatorConfig::crd(),
        SriovNetworkPoolConfig::crd(),
    ]
    .into_iter()
    .map(with_list_kind)
    .collect()
}

/// `names.listKind` as controller-gen writes it (`<Kind>List`); kube's derive leaves it out.
fn with_list_kind(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let names = &mut crd.spec.names;
    names.list_kind = Some(format!("{}List", names.kind));
    crd
}

/// Multus' `NetworkAttachmentDefinition` CRD, for clusters (and offline tests) without Multus.
pub fn nad_crd() -> CustomResourceDefinition {
    with_list_kind(NetworkAttachmentDefinition::crd())
}

/// Serialize one CRD as YAML.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string(crd)
}

/// `(file name, YAML)` for every CRD, as checked in under `deploy/crds/`; file names follow
/// kubebuilder's `<group>_<plural>.yaml`.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_saphyr::ser::Error> {
    let mut all = sriov_crds();
    all.push(nad_crd());
    all.iter()
        .map(|crd| {
            let name = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            Ok((name, to_yaml(crd)?))
        })
        .collect()
}
