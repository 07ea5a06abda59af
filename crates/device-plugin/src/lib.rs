//! sriov-device-plugin (being built).
