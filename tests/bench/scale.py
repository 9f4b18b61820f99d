#!/usr/bin/env python3
"""`make bench-scale`: every read path of SPEC §10 on a small and a large history.

For each backend and size, a fresh database is migrated by the release binary, then
seeded directly with bulk SQL (not through the API): N records and 5N audit entries,
written at a steady 10 entries/s up to now, so "the last hour" holds as many entries
at every size. Both sizes' servers then answer each read path, their calls alternated;
the figure is the median of several calls from one client per server (each call also
commits its own audit entry, as every API request does). POST and GET-by-id throughput
come from wrk at c=64, the two servers' runs alternated too (see `throughput`); GET by
id once as seeded and once after `warm`.
PostgreSQL is a private cluster started for the run (`private_postgres.py`), unless
--admin-url names a server.

The history's life (SPEC §11) on each size: an NDJSON export of every entry (entries/s,
time to the first byte, server RSS idle and at its highest meanwhile), and POST p99 at
c=64 without and then during a background purge of the oldest fifth of the entries
(AUDIT_RETENTION set so that 1 M of 5 M are past it), with how long that purge took.

Prints one table per backend (small, large, large/small) and writes JSON. With
--migration-timing, the largest PostgreSQL database also has this release's
migrations reverted and re-applied while a client keeps inserting audit rows, to time
them and show that the CONCURRENTLY-built indexes do not block writes.
"""

import argparse
import contextlib
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, wrk  # noqa: E402
from private_postgres import PrivatePostgres  # noqa: E402

SIZES = {"10k": 10_000, "1m": 1_000_000, "10m": 10_000_000}
CALLS = 7
RATE_PER_S = 10
# This release's migrations, newest first (reverted and re-applied for the timing).
NEW_MIGRATIONS = 7


def series(backend, n):
    if backend == "sqlite":
        return (f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
                "SELECT i FROM s)")
    return f"(SELECT i FROM generate_series(1, {n}) AS g(i))"


def seed_sql(backend, n):
    """Records and entries with realistic skew: 70 % GET, 1 % DELETE, 10 % 404s,
    exactly 20 entries with status 500 and 20 of a rare subject, 5 records holding
    'qzx' (every other original is hex)."""
    entries = 5 * n
    pg = backend == "postgres"
    hexword = ("'w' || lpad(to_hex((i::bigint * 2654435761) % 4294967296), 8, '0')" if pg
               else "printf('w%08x', (i * 2654435761) % 4294967296)")
    at = (lambda total, i, step: f"(now() at time zone 'utc') - (({total} - {i}) * interval '{step} milliseconds')"
          ) if pg else (lambda total, i, step:
                        f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (({total} - {i}) * {step} / 1000.0) || ' seconds')")
    step = 1000 // RATE_PER_S
    rare = max(entries // 20, 1)
    record = f"(1 + ({'i::bigint' if pg else 'i'} * 7919) % {n})"
    method = "CASE WHEN i % 100 < 70 THEN 'GET' WHEN i % 100 < 95 THEN 'POST' WHEN i % 100 < 99 THEN 'PUT' ELSE 'DELETE' END"
    concat = "||"
    return f"""
INSERT INTO randomizes (original, original_folded, jumbled, version, created, updated)
SELECT word, word, word, 1, t, t FROM (
  SELECT CASE WHEN i % {max(n // 5, 1)} = 0 THEN 'aqzxb' {concat} i ELSE {hexword} END AS word,
         {at(n, 'i', 5 * step)} AS t
  FROM {series(backend, n)} s) r;
INSERT INTO histories (request_id, method, path, query, status, duration_ms, client_ip, user_agent,
                       subject, created, resource_id, token_id, trace_id)
SELECT 'req-' {concat} i, m,
       CASE WHEN m = 'POST' THEN '/api/randomizes'
            WHEN i % 10 = 7 THEN '/api/histories'
            ELSE '/api/randomizes/' {concat} {record} END,
       NULL,
       CASE WHEN i % {rare} = 0 THEN 500
            WHEN m = 'POST' THEN 201 WHEN m = 'DELETE' THEN 204
            WHEN i % 10 = 3 THEN 404 ELSE 200 END,
       0.4, '10.0.0.1', 'bench',
       CASE WHEN i % {rare} = 1 THEN 'rare-auditor' WHEN i % 10 = 7 THEN 'auditor' END,
       {at(entries, 'i', step)},
       CASE WHEN m <> 'POST' AND i % 10 <> 7 THEN {record} END, NULL, NULL
FROM (SELECT i, {method} AS m FROM {series(backend, entries)} s) e;
"""


def seed(backend, url, db_path, n):
    started = time.monotonic()
    sql = seed_sql(backend, n)
    if backend == "sqlite":
        conn = sqlite3.connect(db_path)
        conn.execute("PRAGMA synchronous = OFF")
        # The indexes' pages stay in memory while they fill: with the default 2 MB
        # cache, seeding 50 M entries ran past 18 minutes in page reads.
        conn.execute("PRAGMA cache_size = -2000000")
        conn.executescript("BEGIN;" + sql + "COMMIT;")
        # One transaction of N trigger inserts leaves the trigram index in as many
        # unmerged segments as its pending-terms buffer filled, and the service's first
        # record insert then merges them all in one batch (a 0.5-0.6 s stall at 1 M
        # records, a ninth of a 5 s throughput run). A history the service grew merged
        # them a little per commit; this gives the seed that state.
        conn.execute("INSERT INTO randomizes_trigram (randomizes_trigram) VALUES ('optimize')")
        conn.commit()
        conn.close()
    else:
        subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True)
        # What autovacuum does soon after a bulk load anyway.
        subprocess.run(["psql", url, "-q", "-c", "VACUUM ANALYZE"], check=True)
    return time.monotonic() - started


class Client:
    """One keep-alive connection, as an auditor's script would hold."""

    def __init__(self, base, token):
        parsed = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, target):
        started = time.perf_counter()
        self.conn.request("GET", target, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"GET {target}: {response.status} {body[:300]!r}")
        return elapsed, response, body

    def next_link(self, target):
        _, response, _ = self.get(target)
        for part in (response.getheader("Link") or "").split(", "):
            url, _, rel = part.partition("; ")
            if rel == 'rel="next"':
                return url.strip("<>")
        raise SystemExit(f"{target}: no next link")


def targets(client, n):
    """The read paths of SPEC §10 on a history of `n` records: (label, target)."""
    hour_ago = urllib.parse.quote((datetime.now(timezone.utc) - timedelta(hours=1))
                                  .strftime("%Y-%m-%dT%H:%M:%SZ"))
    mid = n * 5 // 2
    deep_history = client.next_link("/api/histories?page=99&page_size=100")
    deep_records = client.next_link("/api/randomizes?page=99&page_size=100")
    feed = client.next_link("/api/histories?order=asc")
    paths = [
        ("histories page=1", "/api/histories?page=1"),
        ("histories status=500 (rare)", "/api/histories?status=500"),
        ("histories status=404", "/api/histories?status=404"),
        ("histories method=DELETE", "/api/histories?method=DELETE"),
        ("histories path=/api/randomizes/77", "/api/histories?path=/api/randomizes/77"),
        ("histories subject (rare)", "/api/histories?subject=rare-auditor"),
        ("histories resource_id=77", "/api/histories?resource_id=77"),
        ("histories request_id", f"/api/histories?request_id=req-{mid}"),
        ("histories since=1h ago", f"/api/histories?since={hour_ago}"),
        ("histories until=1h ago", f"/api/histories?until={hour_ago}"),
        ("histories page=99 (size 100)", "/api/histories?page=99&page_size=100"),
        ("histories cursor at 9,900", deep_history),
        ("histories order=asc", "/api/histories?order=asc"),
        ("histories order=asc next", feed),
        ("histories/{id}", f"/api/histories/{mid}"),
        ("randomizes page=1", "/api/randomizes?page=1"),
        ("randomizes original=qzx", "/api/randomizes?original=qzx"),
        ("randomizes page=99 (size 100)", "/api/randomizes?page=99&page_size=100"),
        ("randomizes cursor at 9,900", deep_records),
        ("randomizes/{id}", f"/api/randomizes/{n // 2}"),
    ]
    return paths


def read_paths(clients, sizes):
    """Each read path's median of CALLS calls per size, the sizes' calls alternated
    (after two unmeasured calls each), so that the machine's drift falls on both."""
    lists = {label: targets(client, sizes[label]) for label, client in clients.items()}
    result = {label: {} for label in clients}
    for row in zip(*lists.values()):
        # One read path: (label, target) per size, in the order of `clients`.
        calls = [(clients[label], target, label) for label, (_, target) in zip(clients, row)]
        for client, target, _ in calls:
            client.get(target)
            client.get(target)
        times = {label: [] for label in clients}
        for _ in range(CALLS):
            for client, target, label in calls:
                times[label].append(client.get(target)[0])
        for label in clients:
            result[label][row[0][0]] = statistics.median(times[label])
    return result


# The relations a GET by id touches at random on PostgreSQL (every other one it writes
# is appended at its right edge): the records, their key, and the `path` index its
# entry lands in.
GET_TOUCHES = ("randomizes", "randomizes_pkey", "histories_path_id_idx")


def warm(backend, url, db_path):
    """Brings the large database's randomly-read pages into memory, as a server that
    has been answering GETs for a while holds them. A bulk seed leaves whatever its own
    writes left behind: on SQLite at 10 M records 3 GB of a 13 GB file outside the page
    cache, so that a GET-by-id run measured the disk refilling it (docs/PERFORMANCE.md,
    "What a GET at size waits for"). SQLite: the file read once through the OS cache;
    PostgreSQL: `pg_prewarm` of `GET_TOUCHES` into shared buffers. Returns seconds."""
    started = time.monotonic()
    if backend == "sqlite":
        with open(db_path, "rb", buffering=0) as db:
            while db.read(1 << 20):
                pass
    else:
        relations = ", ".join(f"pg_prewarm('{name}')" for name in GET_TOUCHES)
        subprocess.run(["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1",
                        "-c", "CREATE EXTENSION IF NOT EXISTS pg_prewarm",
                        "-c", f"SELECT {relations}"],
                       check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def throughput(servers, sizes, scenarios=("post", "get"), suffix=""):
    """POST and GET-by-id at c=64 on the small and the large history, alternated: both
    servers run, and each round times 5 s on one and then on the other, three rounds
    per scenario, after 3 s of each unmeasured (the first requests after a start fetch
    the write path's pages: a one-off, not the rate). This machine's speed drifts by
    up to a third within minutes; alternating puts the drift on both sides alike.
    Returns, per size, the median of its three runs."""
    result = {label: {} for label in servers}
    for scenario in scenarios:
        for label, server in servers.items():
            wrk(server.base, scenario, 64, 3, sizes[label])
        runs = {label: [] for label in servers}
        for _ in range(3):
            for label, server in servers.items():
                runs[label].append(wrk(server.base, scenario, 64, 5, sizes[label])["rps"])
        for label in servers:
            result[label][f"{scenario} c=64 req/s{suffix}"] = statistics.median(runs[label])
    return result


def export_all(server, token):
    """Streams every entry as NDJSON; samples the server's RSS while it does."""
    parsed = urllib.parse.urlparse(server.base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    idle = server.rss_mb()
    highest = [idle]
    done = threading.Event()

    def sample():
        while not done.is_set():
            highest[0] = max(highest[0], server.rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    conn.request("GET", "/api/histories", headers={
        "Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"})
    response = conn.getresponse()
    first = response.read(1)
    first_byte_ms = (time.perf_counter() - started) * 1000
    lines = first.count(b"\n")
    while chunk := response.read(1 << 20):
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if response.status != 200:
        raise SystemExit(f"export: {response.status}")
    return {"export entries/s": lines / seconds, "export first byte ms": first_byte_ms,
            "export entries": lines, "export rss idle MB": idle,
            "export rss highest MB": highest[0]}


def purge_under_load(binary, url, workdir, n):
    """POST p99 at c=64 on a server without retention, then on one whose
    AUDIT_RETENTION puts the oldest fifth of the entries past the cut."""
    server = Server(binary, url, workdir)
    try:
        before = wrk(server.base, "post", 64, 10, n)["p99_ms"]
    finally:
        server.stop()
    purged = 5 * n // 5
    keep_s = (5 * n - purged) // RATE_PER_S
    server = Server(binary, url, workdir, AUDIT_RETENTION=f"{keep_s}s")
    try:
        token = subprocess.run([binary, "token", "--subject", "bench", "--ttl", "1h"],
                               env=server.env, capture_output=True, text=True,
                               check=True).stdout.strip()
        during = wrk(server.base, "post", 64, 10, n)["p99_ms"]
        client = Client(server.base, token)
        deadline = time.monotonic() + 600
        while True:
            _, _, body = client.get("/api/histories?method=PURGE")
            entries = json.loads(body)
            if entries:
                break
            if time.monotonic() > deadline:
                raise SystemExit("no PURGE entry within 10 minutes")
            time.sleep(0.5)
    finally:
        server.stop()
    query = urllib.parse.parse_qs(entries[0]["query"])
    return {"POST p99 ms, no purge": before, "POST p99 ms, during purge": during,
            "purge removed": int(query["removed"][0]),
            "purge took s": entries[0]["duration_ms"] / 1000}


def sqlite_path(workdir, label):
    return Path(workdir) / f"{label}.sqlite3"


def create(backend, binary, label, n, admin_url, workdir):
    """A migrated, seeded database of `n` records; its URL."""
    if backend == "postgres":
        database = f"bench_scale_{label}"
        subprocess.run(["psql", admin_url, "-qc", "SET client_min_messages = warning", "-c",
                        f"DROP DATABASE IF EXISTS {database}"], check=True)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {database}"], check=True)
        url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    else:
        url = f"sqlite://{sqlite_path(workdir, label)}"
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([binary, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = seed(backend, url, sqlite_path(workdir, label), n)
    print(f"  {backend} {label}: seeded {n:,} records and {5 * n:,} entries in {seconds:.0f} s",
          flush=True)
    return url


def drop(backend, label, admin_url, workdir):
    if backend == "postgres":
        subprocess.run(["psql", admin_url, "-qc", "SET client_min_messages = warning", "-c",
                        f"DROP DATABASE IF EXISTS bench_scale_{label}"])
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{sqlite_path(workdir, label)}{suffix}").unlink(missing_ok=True)


def token_for(binary, server):
    return subprocess.run([binary, "token", "--subject", "bench", "--ttl", "1h"],
                          env=server.env, capture_output=True, text=True,
                          check=True).stdout.strip()


def run(backend, binary, sizes, admin_url, workdir, migration_timing, phases):
    """Every phase on both sizes of one backend: {label: figures}, and the migration
    timing on the large one when asked for."""
    results = {label: {} for label in sizes}
    large = list(sizes)[-1]
    urls, servers = {}, {}
    try:
        for label, n in sizes.items():
            urls[label] = create(backend, binary, label, n, admin_url, workdir)
        for label in sizes:
            home = Path(workdir) / label
            home.mkdir(exist_ok=True)
            servers[label] = Server(binary, urls[label], home)
        tokens = {label: token_for(binary, server) for label, server in servers.items()}
        if "reads" in phases:
            clients = {label: Client(server.base, tokens[label])
                       for label, server in servers.items()}
            for label, figures in read_paths(clients, sizes).items():
                results[label].update(figures)
            # GET by id once as seeded, then with the large history's randomly read
            # pages in memory (`warm`), as a server that has been answering holds them.
            for label, figures in throughput(servers, sizes, ("get",), " (as seeded)").items():
                results[label].update(figures)
            seconds = warm(backend, urls[large], sqlite_path(workdir, large))
            print(f"  {backend} {large}: warmed in {seconds:.0f} s", flush=True)
            for label, figures in throughput(servers, sizes).items():
                results[label].update(figures)
        if "life" in phases:
            for label, server in servers.items():
                results[label].update(export_all(server, tokens[label]))
        while servers:
            servers.popitem()[1].stop()
        if "life" in phases:
            for label, n in sizes.items():
                results[label].update(purge_under_load(binary, urls[label], Path(workdir) / label, n))
        migration = migrate_under_writes(binary, urls[large]) if migration_timing else None
        return results, migration
    finally:
        for server in servers.values():
            server.stop()
        for label in urls:
            drop(backend, label, admin_url, workdir)


def migrate_under_writes(binary, url):
    """Reverts this release's migrations on the seeded database, then re-applies them
    while another session inserts audit rows one per transaction; reports the
    migration's time and the slowest insert meanwhile."""
    env = dict(os.environ, DATABASE_URL=url)
    for _ in range(NEW_MIGRATIONS):
        subprocess.run([binary, "migrate", "--revert"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    latencies = []
    done = threading.Event()

    def insert_until_done():
        psql = subprocess.Popen(["psql", url, "-qX"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1)
        psql.stdin.write("\\timing on\n")
        while not done.is_set():
            psql.stdin.write("INSERT INTO histories (request_id, method, path, status, duration_ms, created)"
                             " VALUES ('during', 'GET', '/api', 200, 0.1, now());\n")
            line = psql.stdout.readline()
            if line.startswith("Time:"):
                latencies.append(float(line.split()[1]))
        psql.stdin.close()
        psql.wait(timeout=30)

    writer = threading.Thread(target=insert_until_done)
    writer.start()
    time.sleep(1)
    started = time.monotonic()
    try:
        subprocess.run([binary, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    finally:
        seconds = time.monotonic() - started
        time.sleep(1)
        done.set()
        writer.join()
    return {"migration_s": round(seconds, 1), "inserts_meanwhile": len(latencies),
            "slowest_insert_ms": round(max(latencies, default=0), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/randomize")
    parser.add_argument("--scale", default="1m", choices=sorted(SIZES))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL"),
                        help="a PostgreSQL superuser URL to seed in; default: a private "
                        "cluster started for the run (tests/bench/private_postgres.py)")
    parser.add_argument("--migration-timing", action="store_true")
    parser.add_argument("--phases", default="reads,life",
                        help="reads (SPEC §10 read paths, throughput), life (export, purge)")
    parser.add_argument("--out", default="target/bench/scale.json")
    args = parser.parse_args()
    args.binary = str(Path(args.binary).resolve())
    results = {}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")))
        if "postgres" in args.backends.split(",") and not args.admin_url:
            cluster = PrivatePostgres(os.environ.get("BENCH_DIR"))
            args.admin_url = stack.enter_context(cluster)
            print(f"PostgreSQL: {cluster.describe()}", flush=True)
        sizes = {"10k": SIZES["10k"], args.scale: SIZES[args.scale]}
        for backend in args.backends.split(","):
            timing = args.migration_timing and backend == "postgres"
            results[backend], migration = run(backend, args.binary, sizes, args.admin_url,
                                              workdir, timing, args.phases.split(","))
            if migration:
                results[backend]["migration"] = migration
            print_table(backend, results[backend], args.scale)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


def print_table(backend, figures, scale):
    small, large = figures["10k"], figures[scale]
    print(f"\n{backend}: median of {CALLS} calls, one client per size, sizes alternated (ms); "
          "c=64: median of 3 alternated 5 s runs (req/s)")
    print(f"| read path | 10k / 50k | {scale} / {5 * SIZES[scale] // 1_000_000}M | ratio |")
    print("|---|---:|---:|---:|")
    for label in small:
        ratio = large[label] / small[label] if small[label] else float("nan")
        print(f"| {label} | {small[label]:,.2f} | {large[label]:,.2f} | {ratio:.2f} |")
    if "migration" in figures:
        m = figures["migration"]
        print(f"\nmigrations re-applied on {5 * SIZES[scale]:,} entries: {m['migration_s']} s; "
              f"{m['inserts_meanwhile']:,} inserts meanwhile, slowest {m['slowest_insert_ms']} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
