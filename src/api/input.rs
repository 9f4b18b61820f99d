//! Request bodies and path ids, parsed into typed input (415 / 400 / 422). The body type
//! is also what the OpenAPI document shows; handlers receive parsed values and never
//! re-check them.

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use crate::error::{ApiError, FieldErrors};
use crate::jumble::Word;

// Fields arrive as raw JSON so that every bad one is reported at once; `WordInput::parse`
// turns them into values. `openapi::document_for` adds `maxLength` (the configured
// `MAX_WORD_GRAPHEMES`) and `additionalProperties: false` to what is derived here.
/// The body of POST and PUT on `/api/randomizes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"word": "string", "seed": 42}))]
pub(crate) struct RandomizeRequest {
    /// 1 to `MAX_WORD_GRAPHEMES` (default 256) grapheme clusters after NFC normalisation;
    /// no control characters; no leading or trailing whitespace.
    #[schema(
        value_type = String,
        min_length = 1,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    word: Option<Value>,
    /// Makes the result reproducible: same word + same seed = same result, forever. An
    /// integer in JSON Schema's sense: `7.0` is the seed 7.
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 18446744073709551615_u64, format = "uint64")]
    seed: Option<Value>,
    /// Anything else, refused by name.
    #[serde(flatten)]
    #[schema(ignore)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A parsed, valid body of POST and PUT on `/api/randomizes`.
#[derive(Debug)]
pub(crate) struct WordInput {
    pub(crate) word: Word,
    pub(crate) seed: Option<u64>,
}

impl WordInput {
    pub(crate) fn parse(
        req: &HttpRequest,
        body: &[u8],
        max_graphemes: usize,
    ) -> Result<Self, ApiError> {
        let request = json_body::<RandomizeRequest>(req, body)?;
        let mut errors = FieldErrors::new();
        let word = match request.word {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::String(raw)) => Word::parse(&raw, max_graphemes).map_err(|e| e.to_string()),
            Some(_) => Err("must be a string".to_owned()),
        };
        let seed = match request.seed {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => integer(&n)
                .map(Some)
                .ok_or_else(|| format!("must be an integer from 0 to {}", u64::MAX)),
            Some(_) => Err(format!("must be an integer from 0 to {}", u64::MAX)),
        };
        for key in request.unknown.keys() {
            errors.insert(truncate(key), vec!["is not a known field".to_owned()]);
        }
        match (word, seed) {
            (Ok(word), Ok(seed)) if errors.is_empty() => Ok(Self { word, seed }),
            (word, seed) => {
                if let Err(message) = word {
                    errors.insert("word".into(), vec![message]);
                }
                if let Err(message) = seed {
                    errors.insert("seed".into(), vec![message]);
                }
                Err(ApiError::Validation(errors))
            }
        }
    }
}

/// A JSON number that is an unsigned 64-bit integer, written as one (`7`) or with a zero
/// fraction (`7.0`, which JSON Schema's `integer` also accepts). Floats are taken only
/// where they are exact, below 2^53.
fn integer(n: &serde_json::Number) -> Option<u64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..EXACT).contains(f))
            .map(|f| f as u64)
    })
}

/// The body as `T`: 415 unless declared JSON, 400 unless well-formed JSON, 422 unless a
/// JSON object with each key once.
fn json_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let is_json = declared.as_deref().is_some_and(|ct| {
        let mut parts = ct.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        let json = essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        let utf8 = parts.all(|p| {
            !p.starts_with("charset=") || matches!(p, "charset=utf-8" | "charset=\"utf-8\"")
        });
        json && utf8
    });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as Content-Type: application/json (UTF-8)".into(),
        ));
    }
    // First the whole document, for a repeated key at any depth: serde keeps the last
    // value of a flattened struct's key, and `{"word":"abc","word":"xyz"}` must not
    // store `xyz` while the client's log says `abc` (SPEC §14).
    serde_json::from_slice::<UniqueKeys>(body).map_err(|e| {
        if e.is_data() {
            ApiError::field("body", "must not repeat a key")
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })?;
    serde_json::from_slice::<T>(body).map_err(|e| {
        if e.is_data() {
            ApiError::field("body", "must be a JSON object")
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })
}

/// Any JSON value in which no object repeats a key.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.into_owned()) {
                return Err(serde::de::Error::custom("a repeated key"));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// The `{id}` path segment; anything that is not a positive integer names nothing.
pub(crate) fn path_id<P>(req: &HttpRequest) -> Result<i64, ApiError>
where
    P: DeserializeOwned + Into<i64>,
{
    req.match_info()
        .load::<P>()
        .ok()
        .map(Into::into)
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)
}

fn truncate(key: &str) -> String {
    key.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_repeated_at_any_depth_is_found() {
        let unique = |raw: &str| serde_json::from_str::<UniqueKeys>(raw).is_ok();
        assert!(unique(r#"{"word":"abc","seed":1,"x":[{"a":1},{"a":2}]}"#));
        assert!(!unique(r#"{"word":"abc","word":"xyz"}"#));
        assert!(!unique(r#"{"a":[{"b":1,"b":2}]}"#));
        // Escapes decode before comparing: "w\u006frd" is "word".
        assert!(!unique(r#"{"word":"abc","w\u006frd":"xyz"}"#));
    }

    #[test]
    fn integral_floats_are_integers_only_where_exact() {
        let number = |raw: &str| serde_json::from_str::<serde_json::Number>(raw).ok();
        let parsed = |raw: &str| number(raw).and_then(|n| integer(&n));
        assert_eq!(parsed("236853"), Some(236_853));
        assert_eq!(parsed("236853.0"), Some(236_853));
        assert_eq!(parsed("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parsed("1.5"), None);
        assert_eq!(parsed("-1"), None);
        assert_eq!(parsed("1e300"), None);
        assert_eq!(parsed("18446744073709551615.0"), None);
    }
}
