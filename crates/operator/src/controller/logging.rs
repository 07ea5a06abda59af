//! Structured logs: upstream's zap flags mapped onto `tracing` (`--zap-encoder=json|console`,
//! `--zap-log-level=debug|info|warn|error|N`), `RUST_LOG` overriding the level when set, and
//! the level changeable at run time the way upstream follows `SriovOperatorConfig.spec.logLevel`
//! ([`set_operator_log_level`]: 0 info, 1 debug, 2 and above trace, for the operator's crates).

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// How each log line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (zap's `console`, upstream's default).
    Console,
    /// One JSON object per line: `timestamp`, `level`, `fields.message`, the other fields,
    /// and the span context.
    Json,
}

/// A log flag that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogFlagError {
    #[error("--zap-encoder {0:?}: expected json or console")]
    Encoder(String),
    #[error("--zap-log-level {0:?}: expected debug, info, warn, error, panic or a verbosity number")]
    Level(String),
}

/// `--zap-encoder`.
pub fn parse_encoder(text: &str) -> Result<LogFormat, LogFlagError> {
    match text {
        "json" => Ok(LogFormat::Json),
        "console" => Ok(LogFormat::Console),
        other => Err(LogFlagError::Encoder(other.into())),
    }
}

// Verbose levels apply to the operator's own crates: at trace, kube's and hyper's per-request
// logs would drown everything else.
const DEBUG: &str = "info,sriov_operator=debug,sriov_api=debug";
const TRACE: &str = "info,sriov_operator=trace,sriov_api=trace";

/// `--zap-log-level` as a `tracing` filter directive.
pub fn level_directive(text: &str) -> Result<&'static str, LogFlagError> {
    Ok(match text {
        "debug" => DEBUG,
        "info" => "info",
        "warn" => "warn",
        "error" | "dpanic" | "panic" | "fatal" => "error",
        n => match n.parse::<u8>() {
            Ok(0) => "info",
            Ok(1) => DEBUG,
            Ok(_) => TRACE,
            Err(_) => return Err(LogFlagError::Level(n.into())),
        },
    })
}

/// `SriovOperatorConfig.spec.logLevel` (0..=2) as a filter directive.
pub fn operator_level_directive(level: i32) -> &'static str {
    match level {
        i32::MIN..=0 => "info",
        1 => DEBUG,
        _ => TRACE,
    }
}

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber, writing to stderr (as zap does): `RUST_LOG` when set, else
/// `directive`. Call once.
pub fn init(format: LogFormat, directive: &str) -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directive));
    let (filter, handle) = reload::Layer::new(filter);
    let json = format == LogFormat::Json;
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(std::io::stderr)
        }))
        .with((!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr)))
        .try_init();
    let _ = FILTER.set(handle);
    result
}

/// Changes the level of the subscriber [`init`] installed (no-op before it); for the
/// SriovOperatorConfig controller, as upstream's `SetLogLevel`.
pub fn set_operator_log_level(level: i32) {
    if let Some(handle) = FILTER.get() {
        let directive = operator_level_directive(level);
        if let Err(e) = handle.modify(|f| *f = EnvFilter::new(directive)) {
            tracing::warn!(error = %e, "cannot change the log level");
        } else {
            tracing::info!(level, directive, "log level set");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zap_flags_map_onto_tracing() {
        assert_eq!(parse_encoder("json"), Ok(LogFormat::Json));
        assert_eq!(parse_encoder("console"), Ok(LogFormat::Console));
        assert_eq!(parse_encoder("yaml"), Err(LogFlagError::Encoder("yaml".into())));
        assert_eq!(level_directive("info"), Ok("info"));
        assert_eq!(level_directive("panic"), Ok("error"));
        assert_eq!(level_directive("1"), Ok(DEBUG));
        assert_eq!(level_directive("debug"), Ok(DEBUG));
        assert_eq!(level_directive("3"), Ok(TRACE));
        assert!(level_directive("loud").is_err());
    }

    #[test]
    fn operator_config_levels() {
        assert_eq!(operator_level_directive(0), "info");
        assert_eq!(operator_level_directive(1), DEBUG);
        assert_eq!(operator_level_directive(2), TRACE);
        assert_eq!(operator_level_directive(-5), "info");
    }
}
