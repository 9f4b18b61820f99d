//! Paging of both lists (SPEC §10): `page` / `page_size` / `cursor` in; `X-Pagination`
//! (flask-smorest's shape) and `Link` out. Page mode covers the first
//! [`MAX_MATCHES`] matches; cursors walk the rest, and every response that has more
//! carries one in its `next` link.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::cursor::{CursorKey, List};
use super::query::Pairs;
use crate::db::page::{MAX_MATCHES, Order, Page, Start, Window};
use crate::error::{ApiError, FieldErrors};

const DEFAULT_PAGE_SIZE: i64 = 10;
const MAX_PAGE_SIZE: i64 = 100;
/// The query names paging itself uses; every other one is a filter a cursor is bound to.
const PAGING_NAMES: [&str; 4] = ["page", "page_size", "cursor", "order"];

/// Paging parameters of both lists. The bounds in the attributes are the constants
/// above (utoipa takes literals only; a test holds them equal).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// 1-based page number (page mode). `page × page_size` may reach 10000 at most;
    /// beyond, follow the `next` link's `cursor`. A page past the end is an empty array.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000, default = 1)]
    page: Option<String>,
    /// Items per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 10)]
    page_size: Option<String>,
    /// Opaque position from a `next` link (cursor mode): walks every match exactly once,
    /// however many rows are written meanwhile. Send it with the same filters it came
    /// with; not together with `page`.
    #[param(value_type = Option<String>, max_length = 64, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    cursor: Option<String>,
}

/// What a request asked for, checked except for the cursor itself (which needs the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paging {
    mode: Mode,
    size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Page(i64),
    Cursor(String),
}

impl PageParams {
    /// The paging asked for, adding what is wrong to `errors`.
    pub(crate) fn into_paging(self, errors: &mut FieldErrors) -> Paging {
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
        let size = read(
            "page_size",
            self.page_size,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        );
        let mode = match (self.page, self.cursor) {
            (Some(_), Some(cursor)) => {
                errors.insert(
                    "cursor".into(),
                    vec!["cannot be combined with `page`: send one of them".into()],
                );
                Mode::Cursor(cursor)
            }
            (None, Some(cursor)) => Mode::Cursor(cursor),
            (page, None) => Mode::Page(read("page", page, 1, MAX_MATCHES)),
        };
        Paging { mode, size }
    }
}

/// `order` of the history: newest first unless `asc`.
pub(crate) fn parse_order(raw: Option<String>, errors: &mut FieldErrors) -> Order {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("desc") => Order::NewestFirst,
        Some("asc") => Order::OldestFirst,
        Some(_) => {
            errors.insert("order".into(), vec!["must be `asc` or `desc`".into()]);
            Order::NewestFirst
        }
    }
}

/// A list request being answered: where it is in which list, and how to link onwards.
pub(crate) struct Listing<'a> {
    req: &'a HttpRequest,
    key: &'a CursorKey,
    list: List,
    order: Order,
    paging: Paging,
    /// The request's filters, sorted (what cursors are bound to), and the pairs kept
    /// in links (the filters and `order`).
    filters: String,
    kept: Vec<(&'a str, &'a str)>,
}

impl<'a> Listing<'a> {
    pub(crate) fn new(
        req: &'a HttpRequest,
        pairs: &'a Pairs,
        key: &'a CursorKey,
        list: List,
        order: Order,
        paging: Paging,
    ) -> Self {
        let mut kept: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "page" | "page_size" | "cursor"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        kept.sort_unstable();
        let filters: Vec<_> = kept
            .iter()
            .filter(|(k, _)| !PAGING_NAMES.contains(k))
            .collect();
        let filters = serde_urlencoded::to_string(filters).unwrap_or_default();
        Self {
            req,
            key,
            list,
            order,
            paging,
            filters,
            kept,
        }
    }

    /// The rows to read: a page-mode window within the first `MAX_MATCHES` matches, or
    /// the position a cursor this service issued for this list and these filters holds.
    pub(crate) fn window(&self) -> Result<Window, ApiError> {
        let size = self.paging.size;
        let start = match &self.paging.mode {
            Mode::Page(page) if page * size > MAX_MATCHES => {
                return Err(ApiError::PageBeyondWindow { max: MAX_MATCHES });
            }
            Mode::Page(page) => Start::Offset((page - 1) * size),
            Mode::Cursor(cursor) => self
                .key
                .open(cursor, self.list, self.order, &self.filters)
                .map(Start::After)
                .ok_or_else(|| {
                    ApiError::field(
                        "cursor",
                        "is not a cursor this service issued for this list, order and these \
                         filters; send it with the parameters of the link it came in, or start \
                         again without it",
                    )
                })?,
        };
        Ok(Window {
            order: self.order,
            start,
            size,
        })
    }

    /// `page` answered 200 with `Link` and, in page mode, `X-Pagination`. `last_id` is
    /// the id of the page's last row.
    pub(crate) fn respond<T: Serialize>(
        &self,
        window: &Window,
        page: &Page<T>,
        last_id: Option<i64>,
    ) -> Result<HttpResponse, ApiError> {
        let mut response = HttpResponse::Ok();
        let mut links = Vec::new();
        if let Mode::Page(number) = self.paging.mode {
            let pagination = PaginationHeader::new(number, self.paging.size, page);
            response.insert_header((
                HeaderName::from_static("x-pagination"),
                serde_json::to_string(&pagination)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ));
            for (rel, target) in [
                ("first", Some(1)),
                ("prev", pagination.previous_page),
                ("last", pagination.last_page),
            ] {
                if let Some(target) = target {
                    links.push((rel, self.url("page", &target.to_string())));
                }
            }
        }
        if let Some(after) = self.next_after(window, page, last_id) {
            let cursor = self.key.issue(self.list, self.order, after, &self.filters);
            links.push(("next", self.url("cursor", &cursor)));
        }
        // first, prev, next, last: the order RFC 8288 readers usually show.
        links.sort_by_key(|(rel, _)| {
            ["first", "prev", "next", "last"]
                .iter()
                .position(|r| r == rel)
        });
        if !links.is_empty() {
            let header: Vec<String> = links
                .iter()
                .map(|(rel, url)| format!("<{url}>; rel=\"{rel}\""))
                .collect();
            response.insert_header((header::LINK, header.join(", ")));
        }
        Ok(response.json(&page.rows))
    }

    /// Where the `next` link continues: after the last row while more match. An
    /// ascending walk (a collector's feed) always has one, to poll from its end.
    fn next_after<R>(&self, window: &Window, page: &Page<R>, last_id: Option<i64>) -> Option<i64> {
        match (self.order, last_id, window.start) {
            (Order::NewestFirst, Some(last), _) if page.more => Some(last),
            (Order::NewestFirst, _, _) => None,
            (Order::OldestFirst, Some(last), _) => Some(last),
            (Order::OldestFirst, None, Start::After(after)) => Some(after),
            // An empty first page of the feed: poll from the very beginning.
            (Order::OldestFirst, None, Start::Offset(0)) => Some(0),
            (Order::OldestFirst, None, Start::Offset(_)) => None,
        }
    }

    fn url(&self, name: &str, value: &str) -> String {
        let size = self.paging.size.to_string();
        let mut query = self.kept.clone();
        query.push((name, value));
        query.push(("page_size", &size));
        let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
        format!("{}?{encoded}", self.req.path())
    }
}

/// `X-Pagination`. The totals are present when the list knows them cheaply (at most
/// `MAX_MATCHES` matches, or the unfiltered record list's counter).
#[derive(Debug, Serialize, PartialEq, Eq)]
struct PaginationHeader {
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_pages: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_page: Option<i64>,
    /// Only while the next page is still in page mode's window; past it, `Link` has
    /// the cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page: Option<i64>,
}

impl PaginationHeader {
    fn new<R>(number: i64, size: i64, page: &Page<R>) -> Self {
        let last = page.total.map(|total| (total + size - 1) / size);
        // A page past the end still reports the totals, but no `page` or neighbours.
        let inside = !page.rows.is_empty();
        let next = number + 1;
        Self {
            total: page.total,
            total_pages: last,
            first_page: (page.total != Some(0)).then_some(1),
            last_page: last.filter(|&last| last > 0),
            page: inside.then_some(number),
            previous_page: (inside && number > 1).then(|| number - 1),
            next_page: (inside && page.more && next * size <= MAX_MATCHES).then_some(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: usize, more: bool, total: Option<i64>) -> Page<()> {
        Page {
            rows: vec![(); rows],
            more,
            total,
        }
    }

    #[test]
    fn middle_page_has_both_neighbours() {
        let h = PaginationHeader::new(2, 10, &page(10, true, Some(42)));
        assert_eq!(
            (h.total_pages, h.page, h.previous_page, h.next_page),
            (Some(5), Some(2), Some(1), Some(3))
        );
    }

    #[test]
    fn empty_and_past_the_end() {
        let empty = PaginationHeader::new(1, 10, &page(0, false, Some(0)));
        assert_eq!(
            (empty.total_pages, empty.first_page, empty.last_page),
            (Some(0), None, None)
        );
        let past = PaginationHeader::new(9, 10, &page(0, false, Some(42)));
        assert_eq!(
            (past.page, past.next_page, past.last_page),
            (None, None, Some(5))
        );
    }

    #[test]
    fn many_matches_hide_the_totals_and_the_window_ends_next_page() {
        let h = PaginationHeader::new(3, 100, &page(100, true, None));
        assert_eq!((h.total, h.last_page, h.next_page), (None, None, Some(4)));
        let edge = PaginationHeader::new(100, 100, &page(100, true, None));
        assert_eq!((edge.page, edge.next_page), (Some(100), None));
    }

    #[test]
    fn bad_params_are_reported() {
        let mut errors = FieldErrors::new();
        let params = PageParams {
            page: Some("0".into()),
            page_size: Some("101".into()),
            cursor: None,
        };
        params.into_paging(&mut errors);
        assert_eq!(errors.len(), 2);
        let mut errors = FieldErrors::new();
        let both = PageParams {
            page: Some("1".into()),
            page_size: None,
            cursor: Some("x".into()),
        };
        both.into_paging(&mut errors);
        assert!(errors.contains_key("cursor"));
    }

    #[test]
    fn documented_bounds_are_the_enforced_ones() {
        use utoipa::IntoParams;
        let documented = serde_json::to_value(PageParams::into_params(|| None))
            .unwrap_or_else(|e| panic!("{e}"));
        let bound = |index: usize, key: &str| documented[index]["schema"][key].as_i64();
        assert_eq!(bound(0, "maximum"), Some(MAX_MATCHES));
        assert_eq!(bound(1, "maximum"), Some(MAX_PAGE_SIZE));
        assert_eq!(bound(1, "default"), Some(DEFAULT_PAGE_SIZE));
    }
}
