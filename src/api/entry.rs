//! One audit entry as the API shows it: the JSON list, the JSON entry and each line of
//! an NDJSON export share this shape; the CSV export has its columns in this order.

use serde::Serialize;

use super::timestamp::rfc3339;
use crate::chain::encoding::hex;
use crate::db::histories::Entry;

/// One audit entry as the API shows it (SPEC §5). Never holds a token or a body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Entry, example = json!({
    "id": 7, "request_id": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c", "method": "POST", "path": "/api/randomizes",
    "query": null, "status": 201, "duration_ms": 0.412, "client_ip": "203.0.113.7",
    "user_agent": "curl/8.5.0", "subject": null, "created": "2023-05-23T02:37:57.698Z",
    "resource_id": 42, "token_id": null, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "chain": 3, "seq": 48210, "hash": "9f2c1e0b7a6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3"
}))]
pub(crate) struct EntryView {
    pub(super) id: i64,
    /// The request's `X-Request-Id`.
    request_id: String,
    method: String,
    /// As received (percent-encoded), control characters escaped.
    path: String,
    query: Option<String>,
    status: i32,
    /// Until the entry was committed.
    duration_ms: f64,
    /// Peer address, or the forwarded client when the peer is a trusted proxy.
    client_ip: Option<String>,
    user_agent: Option<String>,
    /// The token's `sub`, when a token verified.
    subject: Option<String>,
    #[schema(format = DateTime)]
    created: String,
    /// The record the request read, changed, deleted or created.
    resource_id: Option<i64>,
    /// Which credential acted: the verified token's `jti`, else the hex SHA-256 of the
    /// token presented (never the token itself).
    token_id: Option<String>,
    /// The trace id of a valid W3C `traceparent` request header.
    trace_id: Option<String>,
    /// The hash chain the entry belongs to (one per writer process); null for entries
    /// from before chaining.
    chain: Option<i64>,
    /// The entry's position in its chain: 1, 2, 3, … with no gaps.
    seq: Option<i64>,
    /// SHA-256 (hex) over the entry's fields, `chain`, `seq` and the previous entry's
    /// `hash` (docs/AUDIT.md).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    hash: Option<String>,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        Self {
            id: e.id,
            request_id: e.request_id,
            method: e.method,
            path: e.path,
            query: e.query,
            status: e.status,
            duration_ms: e.duration_ms,
            client_ip: e.client_ip,
            user_agent: e.user_agent,
            subject: e.subject,
            created: rfc3339(e.created),
            resource_id: e.resource_id,
            token_id: e.token_id,
            trace_id: e.trace_id,
            chain: e.chain,
            seq: e.seq,
            hash: e.hash.as_deref().map(hex),
        }
    }
}

impl EntryView {
    /// The CSV header row, in the columns `csv_row` writes.
    pub(super) const CSV_HEADER: &'static str = "id,request_id,method,path,query,status,\
        duration_ms,client_ip,user_agent,subject,created,resource_id,token_id,trace_id,\
        chain,seq,hash\r\n";

    /// One CSV record, CRLF included.
    pub(super) fn csv_row(&self, out: &mut Vec<u8>) {
        use super::csv::{END, comma, number, optional, text};
        number(out, self.id);
        comma(out);
        text(out, &self.request_id);
        comma(out);
        text(out, &self.method);
        comma(out);
        text(out, &self.path);
        comma(out);
        optional(out, self.query.as_deref());
        comma(out);
        number(out, self.status);
        comma(out);
        number(out, self.duration_ms);
        comma(out);
        optional(out, self.client_ip.as_deref());
        comma(out);
        optional(out, self.user_agent.as_deref());
        comma(out);
        optional(out, self.subject.as_deref());
        comma(out);
        text(out, &self.created);
        comma(out);
        if let Some(id) = self.resource_id {
            number(out, id);
        }
        comma(out);
        optional(out, self.token_id.as_deref());
        comma(out);
        optional(out, self.trace_id.as_deref());
        comma(out);
        if let Some(chain) = self.chain {
            number(out, chain);
        }
        comma(out);
        if let Some(seq) = self.seq {
            number(out, seq);
        }
        comma(out);
        optional(out, self.hash.as_deref());
        out.extend_from_slice(END);
    }
}
