//! sriov-cni (being built).
