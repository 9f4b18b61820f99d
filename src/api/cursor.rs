//! Paging cursors (SPEC §10): opaque to clients, unforgeable, and bound to the list,
//! the order and the filters they were issued for.
//!
//! A cursor is base64url of `version ‖ list ‖ order ‖ after-id (8 bytes, big-endian)`
//! followed by an HMAC-SHA-256 tag (16 bytes) over those bytes and the request's
//! filters. The key lives in the database (`service_secrets`), so every replica accepts
//! every other's cursors. A cursor someone edited, or one sent with other filters, fails
//! the tag: the walk it would continue is not the one it came from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::page::Order;
use crate::db::secrets;
use crate::error::ApiError;
use crate::state::AppState;

const VERSION: u8 = 1;
const TAG_BYTES: usize = 16;
const BODY_BYTES: usize = 3 + 8;

/// Which list a cursor walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Records = 1,
    Histories = 2,
    Checkpoints = 3,
}

/// The key cursors are signed with.
#[derive(Clone)]
pub(crate) struct CursorKey(Hmac<Sha256>);

impl CursorKey {
    /// `None` for a secret too short to sign with.
    pub(crate) fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < 16 {
            return None;
        }
        <Hmac<Sha256> as Mac>::new_from_slice(secret).ok().map(Self)
    }

    fn mac(&self, body: &[u8], filters: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(body);
        mac.update(filters.as_bytes());
        mac
    }

    /// A cursor continuing `list` in `order` after `after`, for exactly `filters`.
    pub(crate) fn issue(&self, list: List, order: Order, after: i64, filters: &str) -> String {
        let body = body(list, order, after);
        let tag = self.mac(&body, filters).finalize().into_bytes();
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The id a cursor continues after, if this service issued it for `list`, `order`
    /// and `filters`.
    pub(crate) fn open(
        &self,
        cursor: &str,
        list: List,
        order: Order,
        filters: &str,
    ) -> Option<i64> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        if bytes.len() != BODY_BYTES + TAG_BYTES {
            return None;
        }
        let (received, tag) = bytes.split_at(BODY_BYTES);
        let after = i64::from_be_bytes(received[3..].try_into().ok()?);
        let expected = body(list, order, after);
        // The tag compares in constant time; list and order are no secret.
        let signed = self
            .mac(&expected, filters)
            .verify_truncated_left(tag)
            .is_ok();
        (signed && received == expected).then_some(after)
    }
}

/// The service's cursor key, read from the database the first time a list needs it.
pub(crate) async fn key(state: &AppState) -> Result<&CursorKey, ApiError> {
    state
        .cursor_key
        .get_or_try_init(|| async {
            let secret = state
                .db
                .read(|conn| secrets::get(conn, secrets::CURSOR))
                .await?;
            CursorKey::new(&secret)
                .ok_or_else(|| ApiError::Internal("the stored cursor key is too short".into()))
        })
        .await
}

fn body(list: List, order: Order, after: i64) -> [u8; BODY_BYTES] {
    let mut body = [0; BODY_BYTES];
    body[0] = VERSION;
    body[1] = list as u8;
    body[2] = match order {
        Order::NewestFirst => 0,
        Order::OldestFirst => 1,
    };
    body[3..].copy_from_slice(&after.to_be_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(&[7; 32]).unwrap_or_else(|| panic!("a 32-byte key"))
    }

    #[test]
    fn a_cursor_opens_only_where_it_was_issued() {
        let cursor = key().issue(List::Histories, Order::NewestFirst, 42, "status=500");
        let open = |list, order, filters| key().open(&cursor, list, order, filters);
        assert_eq!(
            open(List::Histories, Order::NewestFirst, "status=500"),
            Some(42)
        );
        assert_eq!(
            open(List::Histories, Order::NewestFirst, "status=404"),
            None
        );
        assert_eq!(
            open(List::Histories, Order::OldestFirst, "status=500"),
            None
        );
        assert_eq!(open(List::Records, Order::NewestFirst, "status=500"), None);
        let other = CursorKey::new(&[8; 32]).unwrap_or_else(|| panic!("a 32-byte key"));
        assert_eq!(
            other.open(&cursor, List::Histories, Order::NewestFirst, "status=500"),
            None
        );
    }

    #[test]
    fn edited_or_made_up_cursors_do_not_open() {
        let cursor = key().issue(List::Records, Order::NewestFirst, 42, "");
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap_or_default();
        bytes[10] ^= 1;
        let edited = URL_SAFE_NO_PAD.encode(&bytes);
        for forged in [
            edited.as_str(),
            "",
            "abc",
            "!!!!",
            &cursor[..cursor.len() - 1],
        ] {
            assert_eq!(
                key().open(forged, List::Records, Order::NewestFirst, ""),
                None,
                "{forged}"
            );
        }
    }
}
