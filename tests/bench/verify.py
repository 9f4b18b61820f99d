#!/usr/bin/env python3
"""How long `randomize audit verify` takes on a large history (SPEC §12: seconds on 5 M).

Migrates a fresh database per backend with the release binary, seeds N chained entries
spread over several chains (hashes computed by the independent implementation in
tests/audit/reimplement.py, so this also checks the service agrees with it at scale),
one checkpoint at each chain's end, then times `randomize audit verify` (median of
--runs) and reports entries/s and the verifier's peak RSS.
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "audit"))
from reimplement import entry_hash  # noqa: E402

EPOCH_MS = 1_764_633_600_000  # 2025-12-02T00:00:00Z


def rows(entries, chains):
    """(request_id, method, path, status, duration_ms, created, chain, seq, hash) in id order."""
    tips = {c: (0, bytes(32)) for c in range(1, chains + 1)}
    for n in range(entries):
        chain = n % chains + 1
        seq, prev = tips[chain]
        seq += 1
        ms = EPOCH_MS + n
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
        fields = {
            "request_id": f"seed-{n}", "method": "GET" if n % 10 else "POST",
            "path": f"/api/randomizes/{n % 1000}", "query": None, "status": 200 if n % 7 else 404,
            "duration_ms": 0.25, "client_ip": None, "user_agent": None, "subject": None,
            "created": created, "resource_id": None, "token_id": None, "trace_id": None,
        }
        digest = entry_hash(chain, seq, prev, fields)
        tips[chain] = (seq, digest)
        yield (fields["request_id"], fields["method"], fields["path"], fields["status"],
               fields["duration_ms"], created.replace("T", " ").rstrip("Z"), chain, seq, digest)
    yield tips


def migrate(binary, url, workdir):
    subprocess.run([binary, "migrate"], env=dict(os.environ, DATABASE_URL=url, LOG_LEVEL="warn"),
                   cwd=workdir, check=True, capture_output=True)


def seed_sqlite(path, entries, chains):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    generator = rows(entries, chains)
    batch = []
    tips = None
    for row in generator:
        if isinstance(row, dict):
            tips = row
            break
        batch.append(row)
        if len(batch) == 50_000:
            conn.executemany(INSERT_SQLITE, batch)
            batch.clear()
    conn.executemany(INSERT_SQLITE, batch)
    for chain, (seq, digest) in tips.items():
        conn.execute("INSERT INTO audit_chains (id, started) VALUES (?, '2025-12-02 00:00:00')", (chain,))
        conn.execute("INSERT INTO audit_checkpoints (chain, seq, hash, created, kind) "
                     "VALUES (?, ?, ?, '2025-12-03 00:00:00', 'interval')", (chain, seq, digest))
    conn.commit()
    conn.close()


INSERT_SQLITE = ("INSERT INTO histories (request_id, method, path, status, duration_ms, created, "
                 "chain, seq, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def seed_postgres(url, entries, chains):
    copy = subprocess.Popen(
        ["psql", url, "-qc", "COPY histories (request_id, method, path, status, duration_ms, "
         "created, chain, seq, hash) FROM STDIN"], stdin=subprocess.PIPE, text=True)
    tips = None
    for row in rows(entries, chains):
        if isinstance(row, dict):
            tips = row
            break
        *head, digest = row
        copy.stdin.write("\t".join(str(v) for v in head) + "\t\\\\x" + digest.hex() + "\n")
    copy.stdin.close()
    if copy.wait() != 0:
        raise SystemExit("COPY failed")
    values = ", ".join(f"({c}, {s}, '\\x{d.hex()}', '2025-12-03 00:00:00', 'interval')"
                       for c, (s, d) in tips.items())
    subprocess.run(["psql", url, "-qc",
                    f"INSERT INTO audit_checkpoints (chain, seq, hash, created, kind) VALUES {values};"
                    " ANALYZE histories"], check=True)


def time_verify(binary, url, workdir, runs):
    """Median wall time and the verifier's own peak RSS. RSS is GNU time's report: a child
    of this process would also count the pages it shared with us before exec."""
    times, peaks = [], []
    rss_file = Path(workdir) / "rss"
    for _ in range(runs):
        command = [binary, "audit", "verify"]
        if Path("/usr/bin/time").exists():
            command = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command]
        began = time.monotonic()
        done = subprocess.run(command, cwd=workdir, capture_output=True,
                              text=True, env=dict(os.environ, DATABASE_URL=url, LOG_LEVEL="warn"))
        times.append(time.monotonic() - began)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
        if done.returncode != 0:
            raise SystemExit(f"verify failed: {summary}")
        if rss_file.exists():
            peaks.append(int(rss_file.read_text().split()[-1]) / 1024)
    return statistics.median(times), max(peaks, default=float("nan")), summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/randomize")
    parser.add_argument("--entries", type=int, default=5_000_000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", default=os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())
    for backend in args.backends.split(","):
        workdir = tempfile.mkdtemp(prefix=f"verify-{backend}-")
        database = f"verify_{os.getpid()}_{int(time.time())}"
        if backend == "sqlite":
            path = Path(workdir) / "verify.sqlite3"
            url = f"sqlite://{path}"
        else:
            subprocess.run(["psql", args.postgres, "-qc", f"CREATE DATABASE {database}"], check=True)
            url = args.postgres.rsplit("/", 1)[0] + f"/{database}"
        try:
            migrate(binary, url, workdir)
            began = time.monotonic()
            if backend == "sqlite":
                seed_sqlite(path, args.entries, args.chains)
            else:
                seed_postgres(url, args.entries, args.chains)
            seeded = time.monotonic() - began
            median, rss, summary = time_verify(binary, url, workdir, args.runs)
            print(f"{backend}: {args.entries:,} entries in {args.chains} chains (seeded in {seeded:.0f} s): "
                  f"verify median {median:.2f} s of {args.runs} = {args.entries / median:,.0f} entries/s, "
                  f"peak RSS {rss:.1f} MB\n  {summary}", flush=True)
        finally:
            if backend == "postgres":
                subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {database}"],
                               check=False)


if __name__ == "__main__":
    main()
