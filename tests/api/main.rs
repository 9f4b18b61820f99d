//! Integration tests: the real server on a random port, over HTTP, on SQLite and on
//! PostgreSQL (`both_backends!` runs each scenario once per backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod audit;
mod cli;
mod cors;
mod entrypoint;
mod errors;
mod faults;
mod histories;
mod metrics;
mod openapi;
mod process;
mod randomizes;
mod shutdown;
mod throwaway_pg;
mod token;
