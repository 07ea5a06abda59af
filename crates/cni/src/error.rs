//! CNI error results: `{"code":N,"msg":"...","details":"..."}` on stdout, exit non-zero.
//! Codes are the spec's (SPEC.md "Error"): 1 incompatible version, 2 unsupported field,
//! 3 container unknown, 4 invalid environment, 5 I/O, 6 decode, 7 invalid config, 11 try later;
//! 999 for failures of the kernel or a delegated plugin (as upstream).

use serde::Serialize;

/// Spec error codes used by this plugin.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const INTERNAL: u32 = 999;
}

/// A CNI error result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }
    /// Invalid network configuration (code 7).
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }
    /// Invalid environment (code 4).
    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_ENV, msg)
    }
    /// Kernel / delegate failure (code 999).
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, msg)
    }
    /// Adds context in front of the message.
    pub fn context(mut self, what: &str) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
    /// The JSON error object, with `cniVersion` as the spec asks.
    pub fn to_json(&self, cni_version: &str) -> String {
        let mut v = serde_json::json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if !self.details.is_empty() {
            v["details"] = self.details.clone().into();
        }
        serde_json::to_string_pretty(&v).unwrap_or_else(|_| String::from("{}"))
    }
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;
