//! Storage: connections, schema, queries, migrations and the group-commit writer.
//!
//! Queries are plain sync functions taking `&mut DbConnection`. Reads run on the pool
//! (`Database::read`); every write is a [`Job`] for the single writer
//! (`Database::writer`). Each table's module owns its row types and its write shape.

pub mod batch;
pub mod chain;
mod config;
mod connection;
mod database;
mod error;
pub(crate) mod footprint;
mod heartbeat;
mod histogram;
pub mod histories;
pub mod idempotency;
pub mod ledger;
pub mod migrations;
pub mod page;
pub mod randomizes;
pub(crate) mod retention;
pub mod schema;
pub(crate) mod secrets;
mod shape;
mod sqlite_rows;
mod status;
mod url;
mod values;
mod writer;

pub use config::{DatabaseArgs, DatabaseConfig, SqliteSynchronous};
pub use connection::{ConnectOptions, DbConnection};
pub use database::Database;
pub(crate) use database::ping;
pub use error::{StoreError, Unwritable};
pub use ledger::Ledger;
pub use status::{Refused, WriterStatus};
pub use url::DatabaseUrl;
pub use values::now;
pub(crate) use writer::{Done, Job, Writer, page_is_bounded};
