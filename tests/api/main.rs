//! Integration tests: the real server on a random port, over HTTP, on SQLite and on
//! PostgreSQL (`both_backends!` runs each scenario once per backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// One binary, nothing exported: `pub` here only shares helpers between its modules.
#![allow(unreachable_pub)]

mod helpers;

mod audit;
mod bearer;
mod cli;
mod cors;
mod entrypoint;
mod errors;
mod export;
mod faults;
mod feed;
mod forensics;
mod histories;
mod hostile;
mod idempotency;
mod lists;
mod metrics;
mod migrations;
mod openapi;
mod paging;
mod process;
mod randomizes;
mod rate_limit;
mod retention;
mod roles;
mod shutdown;
mod tamper;
mod throwaway_pg;
mod token;
