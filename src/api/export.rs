//! The history as a stream (SPEC §11): every entry matching the filters, in NDJSON or
//! CSV, in constant memory.
//!
//! Under the hood it is a keyset walk — the same index-backed read as a page, a
//! thousand entries at a time, each step starting after the last id sent — so nothing
//! is held but the chunk being written, and the first bytes leave after one page read
//! however large the history. The walk ends at the newest entry that existed when the
//! export began (on PostgreSQL ids commit in order, so none below it can still
//! appear): an export under write load terminates, and two exports of one moment
//! agree. The HTTP answer and `randomize audit export` share it.

use actix_web::HttpRequest;
use actix_web::http::header::{self, Header};
use actix_web::web::Bytes;
use futures_util::stream::{self, Stream, StreamExt};

use super::entry::EntryView;
use crate::db::histories::{self, Filter};
use crate::db::page::Order;
use crate::db::{Database, StoreError};

/// Entries per step of the walk: large enough that a read and a chunk amortise their
/// overheads (≥ 100,000 entries/s), small enough that a chunk stays a few hundred KB.
const STEP: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON entry per line (`application/x-ndjson`).
    Ndjson,
    /// A header row, then one record per entry (RFC 4180, formulas defused).
    Csv,
}

impl Format {
    /// The export an `Accept` header asks for, if any (else the JSON list).
    pub(crate) fn negotiate(req: &HttpRequest) -> Option<Self> {
        let accept = header::Accept::parse(req).ok()?;
        accept
            .ranked()
            .into_iter()
            .map(|mime| match mime.essence_str() {
                "application/x-ndjson" => Some(Some(Self::Ndjson)),
                "text/csv" => Some(Some(Self::Csv)),
                "application/json" | "application/*" | "*/*" => Some(None),
                _ => None,
            })
            .find_map(|choice| choice)
            .flatten()
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8; header=present",
        }
    }

    pub(crate) fn extension(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }

    fn preamble(self) -> &'static str {
        match self {
            Self::Ndjson => "",
            Self::Csv => EntryView::CSV_HEADER,
        }
    }

    fn encode(self, view: &EntryView, out: &mut Vec<u8>) {
        match self {
            Self::Ndjson => {
                // A struct of strings and numbers: serialising it cannot fail.
                let _ = serde_json::to_writer(&mut *out, view);
                out.push(b'\n');
            }
            Self::Csv => view.csv_row(out),
        }
    }
}

/// What to export: the filters of the JSON list and an order.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub(crate) filter: Filter,
    pub(crate) order: Order,
}

/// A piece of the export: its bytes, how many entries they hold and the last one's id.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) bytes: Bytes,
    pub(crate) entries: usize,
    pub(crate) last_id: Option<i64>,
}

/// Where the walk stands.
enum Step {
    Preamble { after: i64 },
    After(i64),
    Done,
}

/// The newest id the export covers (`None`: the history is empty).
pub(crate) async fn newest_id(db: &Database) -> Result<Option<i64>, StoreError> {
    db.read(histories::newest_id).await
}

/// Every entry of `selection` up to id `through`, as chunks in `format`. A failed read
/// ends the stream with its error (an HTTP client sees the transfer cut short).
pub(crate) fn walk(
    db: Database,
    selection: Selection,
    format: Format,
    through: Option<i64>,
) -> impl Stream<Item = Result<Chunk, StoreError>> {
    let Some(through) = through else {
        let preamble = Chunk {
            bytes: Bytes::from_static(format.preamble().as_bytes()),
            entries: 0,
            last_id: None,
        };
        return stream::once(async move { Ok(preamble) }).left_stream();
    };
    let order = selection.order;
    let first = match order {
        Order::OldestFirst => 0,
        Order::NewestFirst => through.saturating_add(1),
    };
    stream::unfold(Step::Preamble { after: first }, move |step| {
        let db = db.clone();
        let filter = selection.filter.clone();
        async move {
            let (after, mut out) = match step {
                Step::Done => return None,
                Step::Preamble { after } => (after, format.preamble().as_bytes().to_vec()),
                Step::After(after) => (after, Vec::new()),
            };
            let read = db
                .read(move |conn| histories::next_batch(conn, &filter, order, after, STEP))
                .await;
            let rows = match read {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::error!(%error, "export stopped: the history could not be read");
                    return Some((Err(error), Step::Done));
                }
            };
            let fetched = rows.len();
            let mut entries = 0;
            let mut last_id = None;
            for entry in rows {
                if order == Order::OldestFirst && entry.id > through {
                    break;
                }
                last_id = Some(entry.id);
                entries += 1;
                format.encode(&EntryView::from(entry), &mut out);
            }
            let next = match last_id {
                Some(id) if entries == fetched && fetched as i64 == STEP => Step::After(id),
                _ => Step::Done,
            };
            if entries == 0 && out.is_empty() {
                return None;
            }
            let chunk = Chunk {
                bytes: Bytes::from(out),
                entries,
                last_id,
            };
            Some((Ok(chunk), next))
        }
    })
    .right_stream()
}
