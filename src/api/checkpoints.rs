//! `GET /api/histories/checkpoints`: the signed checkpoints of the audit chains
//! (SPEC §12), newest first, for holders of a `histories:read` token.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::bearer::HistoriesReader;
use super::cursor::{self, List};
use super::pagination::{Listing, PageParams};
use super::problems::ProblemResponse;
use super::query;
use super::timestamp::rfc3339;
use crate::chain::encoding::hex;
use crate::db::chain::{self as store, StoredCheckpoint};
use crate::db::page::Order;
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// Narrows the checkpoints.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CheckpointFilter {
    /// Only this chain's checkpoints.
    #[param(value_type = Option<i64>, minimum = 1)]
    chain: Option<String>,
}

/// A chain's `seq` and `hash` at `created`, signed by the service (docs/AUDIT.md).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Checkpoint, example = json!({
    "id": 12, "chain": 3, "seq": 48210,
    "hash": "9f2c1e0b7a6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3",
    "created": "2026-12-02T10:15:00.000Z", "kind": "interval",
    "signature": "5b1f…(128 hex digits)"
}))]
pub(crate) struct CheckpointView {
    id: i64,
    /// The chain (one per writer process).
    chain: i64,
    /// The chain's newest entry at `created`.
    seq: i64,
    /// That entry's hash, hex.
    hash: String,
    #[schema(format = DateTime)]
    created: String,
    /// `interval`, `shutdown`, or `cut` (retention removed the chain's entries up to
    /// `seq`: verification starts after it).
    #[schema(pattern = "^(interval|shutdown|cut)$")]
    kind: String,
    /// Ed25519 signature (hex) over the canonical encoding; null when the service has
    /// no `AUDIT_SIGNING_KEY`.
    signature: Option<String>,
}

impl From<StoredCheckpoint> for CheckpointView {
    fn from(c: StoredCheckpoint) -> Self {
        Self {
            id: c.id,
            chain: c.chain,
            seq: c.seq,
            hash: hex(&c.hash),
            created: rfc3339(c.created),
            kind: c.kind,
            signature: c.signature.as_deref().map(hex),
        }
    }
}

#[utoipa::path(
    get, path = "/api/histories/checkpoints", tag = "histories", operation_id = "list_checkpoints",
    summary = "Read the signed checkpoints of the audit chains, newest first",
    description = "Each writer appends to its own hash chain; at most every `CHECKPOINT_INTERVAL`, at every \
        retention cut and at shutdown it records the chain's newest `seq` and `hash`, signed with \
        `AUDIT_SIGNING_KEY`, here and as one line in its log. `randomize audit verify` checks the \
        history against them. Paging as on `/api/histories`. Same JWT rule.",
    params(PageParams, CheckpointFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of checkpoints", body = Vec<CheckpointView>,
            headers(("X-Pagination" = String, description = "Page mode only; as on `/api/histories`"),
                    ("Link" = String, description = "RFC 8288; `next` as a `cursor` while more match"))),
        ProblemResponse<401>, ProblemResponse<403>, ProblemResponse<422>, ProblemResponse<503>,
    )
)]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    _: HistoriesReader,
) -> Result<HttpResponse, ApiError> {
    let (paging, filter, pairs) = query::parse::<PageParams, CheckpointFilter>(&req)?;
    let mut errors = FieldErrors::new();
    let paging = paging.into_paging(&mut errors);
    let chain = match filter.chain.map(|raw| raw.parse::<i64>()) {
        None => None,
        Some(Ok(chain)) if chain >= 1 => Some(chain),
        Some(_) => {
            errors.insert(
                "chain".into(),
                vec!["must be a chain id (a positive integer)".into()],
            );
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let key = cursor::key(&state).await?;
    let listing = Listing::new(
        &req,
        &pairs,
        key,
        List::Checkpoints,
        Order::NewestFirst,
        paging,
    );
    let window = listing.window()?;
    let page = state
        .db
        .read(move |conn| store::list_checkpoints(conn, chain, &window))
        .await?;
    let last_id = page.rows.last().map(|c| c.id);
    listing.respond(&window, &page.map(CheckpointView::from), last_id)
}
