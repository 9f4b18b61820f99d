//! `X-Request-Id`: the client's when sane, ours otherwise (SPEC §9). It ties the
//! response, the log line and the audit entry together.

use std::sync::Arc;

use actix_web::http::header::HeaderMap;

pub(crate) const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// The client's id if it is 1..=128 visible ASCII characters (nothing that could
/// forge a log line or a header), else a fresh UUID v7. Time-ordered, so ours sort by
/// time in logs, and each lands at the end of the audit index on `request_id` instead
/// of on a random page (which would dirty a page per request in every commit).
pub(crate) fn from_headers(headers: &HeaderMap) -> Arc<str> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(uuid::Uuid::now_v7().to_string()))
}

fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Runs `future` with `id` as the current request id (read by error rendering).
pub(crate) async fn scope<F: Future>(id: Arc<str>, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

pub(crate) fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(HEADER),
                value,
            );
        }
        headers
    }

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        assert_eq!(&*from_headers(&with("abc-123")), "abc-123");
        assert_ne!(&*from_headers(&with("has space")), "has space");
        assert_eq!(from_headers(&with(&"x".repeat(129))).len(), 36);
        assert_eq!(from_headers(&HeaderMap::new()).len(), 36);
    }

    #[test]
    fn generated_ids_are_time_ordered() {
        let ids: Vec<Arc<str>> = (0..100).map(|_| from_headers(&HeaderMap::new())).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}
