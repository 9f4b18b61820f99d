//! `page` / `page_size` in, `X-Pagination` and `Link` out (same shape as flask-smorest).

use std::collections::HashMap;

use actix_web::HttpRequest;
use serde::Serialize;

use crate::error::FieldErrors;

pub const DEFAULT_PAGE_SIZE: i64 = 10;
pub const MAX_PAGE_SIZE: i64 = 100;
/// Keeps `offset` far from overflow on every backend.
pub const MAX_PAGE: i64 = i32::MAX as i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub page_size: i64,
}

impl PageRequest {
    /// Reads both parameters, adding what is wrong to `errors`.
    pub fn from_params(params: &HashMap<String, String>, errors: &mut FieldErrors) -> Self {
        let mut read = |name: &str, default: i64, max: i64| match params.get(name) {
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
        Self {
            page: read("page", 1, MAX_PAGE),
            page_size: read("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        }
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.page_size
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PaginationHeader {
    pub total: i64,
    pub total_pages: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<i64>,
}

impl PaginationHeader {
    /// A page past the end still reports the totals, but no `page` or neighbours.
    pub fn new(request: PageRequest, total: i64) -> Self {
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
    pub fn link(
        &self,
        req: &HttpRequest,
        params: &HashMap<String, String>,
        page_size: i64,
    ) -> Option<String> {
        let mut kept: Vec<(&str, &str)> = params
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
        let params = HashMap::from([
            ("page".to_owned(), "0".to_owned()),
            ("page_size".to_owned(), "101".to_owned()),
        ]);
        PageRequest::from_params(&params, &mut errors);
        assert_eq!(errors.len(), 2);
    }
}
