//! Logging setup: JSON lines in production, human-readable in development.

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::settings::ConfigError;

#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log filter: a level (`info`) or tracing directives (`randomize=debug,actix_web=info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// `json` (one object per line, for production) or `pretty` (for humans); any case.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", ignore_case = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

const DISPATCHER_OFF: &str = "actix_http::h1::dispatcher=off";

pub(crate) fn init(args: &TelemetryArgs) -> Result<(), ConfigError> {
    let mut filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| ConfigError::new("LOG_LEVEL", format!("not a level or filter: {e}")))?;
    if !args.log_level.contains("actix_http") {
        // actix logs every malformed request it refuses (a bare 400 / 431) at ERROR: any
        // client could write ERROR lines at will. `LOG_LEVEL=…,actix_http=error` brings
        // them back.
        filter = filter.add_directive(DISPATCHER_OFF.parse().map_err(|e| {
            ConfigError::new("LOG_LEVEL", format!("internal filter directive: {e}"))
        })?);
    }
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
