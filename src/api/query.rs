//! Query strings, parsed into the structs that also document them (`IntoParams`).
//!
//! Every parameter arrives as text (`Option<String>` fields) and the handler's types turn
//! it into values, so a request with several bad parameters hears about all of them. A
//! name that no struct declares is a 422, so a typo (`pagesize=50`) is reported instead
//! of silently ignored. Ambiguity is refused too (SPEC §14): a repeated name and a value
//! with a control character (NUL included, which PostgreSQL cannot store and SQLite
//! would cut the pattern at) are 422, naming the parameter.

use std::collections::HashSet;

use actix_web::HttpRequest;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use crate::error::{ApiError, FieldErrors};

/// The query's parameters, each name once, in the order received.
pub(crate) type Pairs = Vec<(String, String)>;

/// The query as `A` and `B` (say, paging and filters), plus its pairs.
pub(crate) fn parse<A, B>(req: &HttpRequest) -> Result<(A, B, Pairs), ApiError>
where
    A: DeserializeOwned,
    B: DeserializeOwned,
{
    let raw = req.query_string();
    let pairs: Pairs = serde_urlencoded::from_str(raw).map_err(malformed)?;
    let known: Vec<&str> = fields_of::<A>()
        .iter()
        .chain(fields_of::<B>())
        .copied()
        .collect();
    let mut errors = FieldErrors::new();
    let unknown = format!("is not a known parameter (known: {})", known.join(", "));
    // A set, not a scan of the pairs: a query may carry thousands of names.
    let mut seen = HashSet::with_capacity(pairs.len());
    for (name, value) in &pairs {
        let problem = if !known.contains(&name.as_str()) {
            unknown.clone()
        } else if !seen.insert(name.as_str()) {
            "is given more than once; give it once".to_owned()
        } else if value.chars().any(char::is_control) {
            "must not contain control characters".to_owned()
        } else {
            continue;
        };
        errors
            .entry(name.chars().filter(|c| !c.is_control()).take(64).collect())
            .or_insert_with(|| vec![problem]);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let a = serde_urlencoded::from_str(raw).map_err(malformed)?;
    let b = serde_urlencoded::from_str(raw).map_err(malformed)?;
    Ok((a, b, pairs))
}

fn malformed(error: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("malformed query string: {error}"))
}

/// The field names a derived `Deserialize` struct reads, taken from the derive itself
/// (it hands them to `deserialize_struct`), so no list of names is kept by hand.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields;
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl std::fmt::Display for Found {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names")
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Found(&[])
        }
    }
    impl<'de> Deserializer<'de> for Fields {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    match T::deserialize(Fields) {
        Err(Found(fields)) => fields,
        Ok(_) => &[],
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Paging {
        page: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct Filter {
        original: Option<String>,
    }

    fn parsed(query: &str) -> Result<(Paging, Filter, Pairs), ApiError> {
        parse(&TestRequest::with_uri(&format!("/x?{query}")).to_http_request())
    }

    #[test]
    fn names_come_from_the_structs() {
        assert_eq!(fields_of::<Paging>(), ["page"]);
        let Err(ApiError::Validation(errors)) = parsed("pagesize=5&page=2") else {
            panic!("an unknown name is a validation error");
        };
        assert_eq!(
            errors["pagesize"],
            ["is not a known parameter (known: page, original)"]
        );
    }

    #[test]
    fn each_struct_reads_its_own_names() {
        let (paging, filter, pairs) =
            parsed("original=a%20b&page=2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paging.page.as_deref(), Some("2"));
        assert_eq!(filter.original.as_deref(), Some("a b"));
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn a_repeated_name_or_a_control_character_is_refused_by_name() {
        let Err(ApiError::Validation(errors)) = parsed("page=2&page=3&original=a%00b") else {
            panic!("ambiguity and control characters are validation errors");
        };
        assert_eq!(errors["page"], ["is given more than once; give it once"]);
        assert_eq!(errors["original"], ["must not contain control characters"]);
        let Err(ApiError::Validation(errors)) = parsed("original=%1B%5B2J") else {
            panic!("an escape sequence is a control character too");
        };
        assert!(errors.contains_key("original"));
    }
}
