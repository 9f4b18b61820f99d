#!/usr/bin/env python3
"""An independent re-implementation of the entry hash, written from docs/AUDIT.md alone.

It recomputes the test vectors the document publishes and fails if any differs, so
the document stays sufficient for a third party (`make test` runs it).
"""
import hashlib
import re
import struct
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path


def text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def optional(value, encode) -> bytes:
    return b"\x00" if value is None else b"\x01" + encode(value)


def integer(value: int) -> bytes:
    return struct.pack(">q", value)


def millis(rfc3339: str) -> int:
    at = datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def entry_hash(chain: int, seq: int, prev: bytes, e: dict) -> bytes:
    data = b"randomize/audit-entry/v1" + integer(chain) + integer(seq) + prev
    data += text(e["request_id"]) + text(e["method"]) + text(e["path"])
    data += optional(e["query"], text) + integer(e["status"])
    data += struct.pack(">d", e["duration_ms"])
    data += optional(e["client_ip"], text) + optional(e["user_agent"], text)
    data += optional(e["subject"], text) + integer(millis(e["created"]))
    data += optional(e["resource_id"], integer)
    data += optional(e["token_id"], text) + optional(e["trace_id"], text)
    return hashlib.sha256(data).digest()


def main() -> int:
    doc = Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md"
    published = re.findall(r"^hash of entry (\d): ([0-9a-f]{64})$", doc.read_text(), re.M)
    if len(published) != 2:
        print(f"{doc}: expected the two published vectors, found {len(published)}")
        return 1
    first = {
        "request_id": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c", "method": "POST",
        "path": "/api/randomizes", "query": None, "status": 201, "duration_ms": 0.412,
        "client_ip": "203.0.113.7", "user_agent": "curl/8.5.0", "subject": None,
        "created": "2023-05-23T02:37:57.698Z", "resource_id": 42, "token_id": None,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    second = dict(first, method="GET", path="/api/histories", query="status=500",
                  status=200, subject="auditor", resource_id=None, token_id="a1b2")
    one = entry_hash(1, 1, bytes(32), first)
    two = entry_hash(1, 2, one, second)
    computed = {"1": one.hex(), "2": two.hex()}
    failed = [n for n, value in published if computed[n] != value]
    for n in failed:
        print(f"entry {n}: docs say {dict(published)[n]}, this re-implementation computes {computed[n]}")
    if not failed:
        print("the published vectors match an independent re-implementation")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
