//! sriov-daemon (being built).
