"""schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS).

Only valid HTTP is sent. RFC 9110 §5.5 forbids control characters in field values and
§5.1 requires field names to be tokens; schemathesis's own filter
(requests.check_header_validity) only rejects CR/LF, so it can generate extra headers with
bytes such as 0x16. actix-http's parser refuses those requests with a bare 400 before the
application runs, so they test the HTTP library, not this API's contract. Every check
still runs on everything else that is generated.
"""
import re

import schemathesis

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


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
