//! sriov-operator (being built).
