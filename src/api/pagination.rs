//! `page` / `page_size` in, `X-Pagination` and `Link` out (same shape as flask-smorest):
//! the paging of both lists, and the one place a list response is assembled.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::query::Pairs;
use crate::error::{ApiError, FieldErrors};

const DEFAULT_PAGE_SIZE: i64 = 10;
const MAX_PAGE_SIZE: i64 = 100;
/// Keeps `offset` far from overflow on every backend.
const MAX_PAGE: i64 = i32::MAX as i64;

/// Paging parameters of both lists. The bounds in the attributes are the constants
/// above (utoipa takes literals only; a test holds them equal).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// 1-based page number; a page past the end is an empty array.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 2147483647, default = 1)]
    page: Option<String>,
    /// Items per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 10)]
    page_size: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub(crate) page: i64,
    pub(crate) page_size: i64,
}

impl PageParams {
    /// The page asked for, adding what is wrong to `errors`.
    pub(crate) fn into_request(self, errors: &mut FieldErrors) -> PageRequest {
        let mut read = |name: &str, raw: Option<String>, default: i64, max: i64| match raw {
            None => default,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    errors.insert(
                        name.into(),
                        vec![format!("must be an integer from 1 to {max}")],
                    );
                    default
                }
            },
        };
        PageRequest {
            page: read("page", self.page, 1, MAX_PAGE),
            page_size: read(
                "page_size",
                self.page_size,
                DEFAULT_PAGE_SIZE,
                MAX_PAGE_SIZE,
            ),
        }
    }
}

impl PageRequest {
    pub(crate) fn offset(&self) -> i64 {
        (self.page - 1) * self.page_size
    }
}

/// A page of `items` answered 200 with `X-Pagination` and `Link`.
pub(crate) fn page_response<T: Serialize>(
    req: &HttpRequest,
    pairs: &Pairs,
    request: PageRequest,
    total: i64,
    items: &[T],
) -> Result<HttpResponse, ApiError> {
    let pagination = PaginationHeader::new(request, total);
    let mut response = HttpResponse::Ok();
    response.insert_header((
        HeaderName::from_static("x-pagination"),
        serde_json::to_string(&pagination).map_err(|e| ApiError::Internal(e.to_string()))?,
    ));
    if let Some(link) = pagination.link(req, pairs, request.page_size) {
        response.insert_header((header::LINK, link));
    }
    Ok(response.json(items))
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct PaginationHeader {
    total: i64,
    total_pages: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page: Option<i64>,
}

impl PaginationHeader {
    /// A page past the end still reports the totals, but no `page` or neighbours.
    fn new(request: PageRequest, total: i64) -> Self {
        if total == 0 {
            return Self {
                total,
                total_pages: 0,
                first_page: None,
                last_page: None,
                page: None,
                previous_page: None,
                next_page: None,
            };
        }
        let last = (total - 1) / request.page_size + 1;
        let inside = request.page <= last;
        Self {
            total,
            total_pages: last,
            first_page: Some(1),
            last_page: Some(last),
            page: inside.then_some(request.page),
            previous_page: (inside && request.page > 1).then(|| request.page - 1),
            next_page: (inside && request.page < last).then(|| request.page + 1),
        }
    }

    /// RFC 8288 `Link` with first/prev/next/last, keeping the request's other parameters.
    fn link(&self, req: &HttpRequest, pairs: &Pairs, page_size: i64) -> Option<String> {
        let mut kept: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "page" | "page_size"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        kept.sort_unstable();
        let url = |page: i64| {
            let mut query = kept.clone();
            let page = page.to_string();
            let size = page_size.to_string();
            query.push(("page", &page));
            query.push(("page_size", &size));
            let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
            format!("{}?{encoded}", req.path())
        };
        let links: Vec<String> = [
            ("first", self.first_page),
            ("prev", self.previous_page),
            ("next", self.next_page),
            ("last", self.last_page),
        ]
        .into_iter()
        .filter_map(|(rel, page)| page.map(|p| format!("<{}>; rel=\"{rel}\"", url(p))))
        .collect();
        (!links.is_empty()).then(|| links.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(page: i64, page_size: i64) -> PageRequest {
        PageRequest { page, page_size }
    }

    #[test]
    fn middle_page_has_both_neighbours() {
        let h = PaginationHeader::new(page(2, 10), 42);
        assert_eq!(
            (h.total_pages, h.page, h.previous_page, h.next_page),
            (5, Some(2), Some(1), Some(3))
        );
    }

    #[test]
    fn empty_and_past_the_end() {
        assert_eq!(PaginationHeader::new(page(1, 10), 0).total_pages, 0);
        let past = PaginationHeader::new(page(9, 10), 42);
        assert_eq!(
            (past.page, past.next_page, past.last_page),
            (None, None, Some(5))
        );
    }

    #[test]
    fn bad_params_are_reported() {
        let mut errors = FieldErrors::new();
        let params = PageParams {
            page: Some("0".into()),
            page_size: Some("101".into()),
        };
        params.into_request(&mut errors);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn documented_bounds_are_the_enforced_ones() {
        use utoipa::IntoParams;
        let documented = serde_json::to_value(PageParams::into_params(|| None))
            .unwrap_or_else(|e| panic!("{e}"));
        let bound = |index: usize, key: &str| documented[index]["schema"][key].as_i64();
        assert_eq!(bound(0, "maximum"), Some(MAX_PAGE));
        assert_eq!(bound(1, "maximum"), Some(MAX_PAGE_SIZE));
        assert_eq!(bound(1, "default"), Some(DEFAULT_PAGE_SIZE));
    }
}
