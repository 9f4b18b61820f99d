//! randomize: a word-randomizer REST service with a durable audit history.
//!
//! Layers, top down (docs/ARCHITECTURE.md): `cli` → `config` → `startup` (server) →
//! `middleware` (request id, problem rendering, audit, log line) → `api/*` (one file per
//! resource) → `audit` → `db/*` (queries, write shapes, the group-commit writer,
//! migrations). `jumble` is the pure shuffling core; `settings` the leaf every module
//! that owns settings reads them with.

mod api;
mod audit;
pub mod auth;
mod body_deadline;
pub mod chain;
mod checkpoints;
pub mod cli;
mod client_ip;
pub mod config;
pub mod db;
mod digest;
mod error;
pub mod jumble;
mod key_expiry;
mod metrics;
mod middleware;
pub mod openapi;
mod probe;
pub mod rate_limit;
mod request_id;
mod retention;
pub mod settings;
pub mod startup;
mod state;
pub mod telemetry;
