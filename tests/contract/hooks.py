"""schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS).

Only valid HTTP is sent. RFC 9110 §5.5 forbids control characters in field values and
§5.1 requires field names to be tokens; schemathesis's own filter
(requests.check_header_validity) only rejects CR/LF, so it can generate extra headers with
bytes such as 0x16. actix-http's parser refuses those requests with a bare 400 before the
application runs, so they test the HTTP library, not this API's contract. Every check
still runs on everything else that is generated.
"""
import re
import uuid

import schemathesis

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def filter_headers(context, headers):
    # Negative generation wraps the mapping (GeneratedValue.value).
    headers = getattr(headers, "value", headers)
    if not isinstance(headers, dict):
        return True
    return all(
        _TOKEN.match(str(name)) and not _CONTROL.search(str(value))
        for name, value in headers.items()
    )


# Page mode reaches the first 10000 matches (SPEC §10); OpenAPI cannot state a bound
# on the product of two parameters, only each one's own.
_PAGE_WINDOW = 10000


@schemathesis.hook
def before_call(context, case, **kwargs):
    """Keeps positive (schema-valid) list cases within what the API documents but
    OpenAPI cannot express, so the positive-data check tests the rest:

    * `cursor` is an opaque position only the server issues (HMAC-signed): a generated
      one is rightly refused with 422, so it is dropped;
    * `page × page_size` above 10000 is refused with 422 naming `cursor` (described on
      the parameter), so `page` is lowered into the window.

    * an `Idempotency-Key` names one request (SPEC §13): a generated key such as `0`,
      sent again with another body, is rightly refused with 422, so positive cases get a
      fresh key each.

    Negative cases are sent as generated. Forged cursors, the window and key reuse are
    also covered by the Rust tests (tests/api/paging.rs, tests/api/idempotency.rs)."""
    meta = getattr(case, "meta", None)
    positive = meta is not None and meta.generation.mode.is_positive
    # Stateful runs carry no generation mode: a key that is itself valid is made fresh
    # whatever the mode (an invalid one stays, for the negative checks).
    if case.headers is not None and hasattr(case.headers, "keys"):
        for name in list(case.headers.keys()):
            value = str(case.headers[name])
            if str(name).lower() == "idempotency-key" and _KEY.match(value):
                case.headers[name] = f"contract-{uuid.uuid4()}"
    if not positive or not isinstance(case.query, dict):
        return
    query = case.query
    query.pop("cursor", None)
    try:
        page = int(query.get("page", 1))
        size = int(query.get("page_size", 10))
    except (TypeError, ValueError):
        return
    if size > 0 and page * size > _PAGE_WINDOW:
        query["page"] = max(1, _PAGE_WINDOW // size)
