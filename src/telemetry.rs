//! Logging setup: JSON lines in production, human-readable in development.

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, LogFormat, TelemetryArgs};

pub fn init(args: &TelemetryArgs) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| ConfigError::new("LOG_LEVEL", format!("not a level or filter: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let installed = match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    // Already installed (tests start several servers in one process): keep the first.
    drop(installed);
    Ok(())
}
