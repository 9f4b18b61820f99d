//! randomize: a word-randomizer REST service with a durable audit history.
//!
//! Layout: `config` (settings) → `startup` (server) → `middleware` (request id, problem
//! rendering, audit, log line) → `api/*` (one file per resource) → `db/*` (queries, the
//! group-commit writer, migrations). `jumble` is the pure shuffling core.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod error;
pub mod jumble;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod probe;
pub mod request_id;
pub mod startup;
pub mod state;
pub mod telemetry;
