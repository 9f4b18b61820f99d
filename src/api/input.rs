//! Turning request bytes into typed input: JSON bodies (415 / 400 / 422) and query
//! strings. Handlers receive parsed values and never re-check them.

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};
use crate::jumble::Word;

/// The body of POST and PUT on `/api/randomizes`, as documented. Requests are parsed by
/// `WordInput::parse`, which reports every bad field at once.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"word": "string", "seed": 42}))]
#[allow(dead_code)] // documentation only
pub struct RandomizeRequest {
    /// 1 to `MAX_WORD_GRAPHEMES` (default 256) grapheme clusters after NFC normalisation;
    /// no control characters; no leading or trailing whitespace.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    word: String,
    /// Makes the result reproducible: same word + same seed = same result, forever.
    #[schema(minimum = 0, maximum = 18446744073709551615_u64, format = "uint64")]
    seed: Option<u64>,
}

/// A parsed, valid body of POST and PUT on `/api/randomizes`.
#[derive(Debug)]
pub struct WordInput {
    pub word: Word,
    pub seed: Option<u64>,
}

impl WordInput {
    pub fn parse(req: &HttpRequest, body: &[u8], max_graphemes: usize) -> Result<Self, ApiError> {
        let object = json_object(req, body)?;
        let mut errors = FieldErrors::new();
        let word = match object.get("word") {
            None | Some(Value::Null) => Err("is required".to_owned()),
            Some(Value::String(raw)) => Word::parse(raw, max_graphemes).map_err(|e| e.to_string()),
            Some(_) => Err("must be a string".to_owned()),
        };
        let seed = match object.get("seed") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(_) => Err(format!("must be an integer from 0 to {}", u64::MAX)),
        };
        for key in object
            .keys()
            .filter(|k| !matches!(k.as_str(), "word" | "seed"))
        {
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

/// The body as a JSON object: 415 unless declared JSON, 400 unless well-formed JSON,
/// 422 unless an object.
fn json_object(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
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
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::field("body", "must be a JSON object")),
        Err(e) if e.is_data() => Err(ApiError::field("body", "must be a JSON object")),
        Err(e) => Err(ApiError::BadRequest(format!("malformed JSON: {e}"))),
    }
}

/// Query parameters; the first occurrence of a name wins. A name outside `known` is a
/// 422, so a typo (`pagesize=50`) is reported instead of silently ignored.
pub fn query_params(
    req: &HttpRequest,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
    let mut params = HashMap::with_capacity(pairs.len());
    let mut errors = FieldErrors::new();
    for (key, value) in pairs {
        if !known.contains(&key.as_str()) {
            errors.insert(
                truncate(&key),
                vec![format!(
                    "is not a known parameter (known: {})",
                    known.join(", ")
                )],
            );
        }
        params.entry(key).or_insert(value);
    }
    if errors.is_empty() {
        Ok(params)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The `{id}` path segment; anything that is not a positive integer names no record.
pub fn record_id(req: &HttpRequest) -> Result<i64, ApiError> {
    req.match_info()
        .get("id")
        .and_then(|raw| raw.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)
}

fn truncate(key: &str) -> String {
    key.chars().take(64).collect()
}
