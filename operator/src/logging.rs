//! Structured logs: JSON lines by default (for log pipelines), text for terminals.

use tracing_subscriber::{EnvFilter, fmt};

use crate::settings::LogFormat;

/// Installs the global subscriber. Fails on an unreadable filter.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("--log-level {filter:?}: {e}"))?;
    let builder = fmt().with_env_filter(filter).with_target(true);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
