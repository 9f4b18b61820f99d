#!/usr/bin/env python3
"""`make bench`: the release binary under wrk, on SQLite (synchronous=FULL) and PostgreSQL.

For each backend: a fresh database, cold start (process start -> /readyz 200), then each
scenario at each concurrency; peak RSS of the server; and a pgbench baseline (one
single-row INSERT per transaction, same client count, same server). Prints a table and
writes target/bench/results.json. Exits non-zero when any request failed or when the
audit history does not hold exactly one entry per API request the server answered.
"""

import argparse
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = ["health", "post", "post-key", "get", "list"]
LABELS = {
    "health": "GET /healthz",
    "post": "POST /api/randomizes",
    "post-key": "POST + Idempotency-Key",
    "get": "GET /api/randomizes/{id}",
    "list": "GET /api/randomizes?page=1",
}
TARGETS = {"sqlite_post_c64_rps": 10_000, "pg_post_vs_pgbench": 1.5, "p99_ms": 10.0,
           "rss_mb": 40.0, "cold_start_ms": 100.0}


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


class Server:
    def __init__(self, binary, database_url, workdir, **settings):
        self.binary = binary
        self.env = dict(os.environ, DATABASE_URL=database_url, BIND="127.0.0.1:0",
                        LOG_FORMAT="json", LOG_LEVEL="info", SQLITE_SYNCHRONOUS="full",
                        JWT_SECRET=secrets.token_hex(32), **settings)
        self.log_path = Path(workdir) / "server.log"
        subprocess.run([binary, "migrate"], env=self.env, check=True, cwd=workdir,
                       stdout=subprocess.DEVNULL)
        self.log = open(self.log_path, "w")
        started = time.monotonic()
        self.process = subprocess.Popen([binary, "serve"], env=self.env, cwd=workdir,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.port = self._wait_for_port()
        self.base = f"http://127.0.0.1:{self.port}"
        while True:
            try:
                if http_get(f"{self.base}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - started > 10:
                raise SystemExit("server not ready within 10 s")
        self.cold_start_ms = (time.monotonic() - started) * 1000

    def _wait_for_port(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            match = re.search(r'"message":"listening".*?"port":(\d+)', self.log_path.read_text())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                raise SystemExit(f"server exited:\n{self.log_path.read_text()}")
            time.sleep(0.005)
        raise SystemExit("server did not report its port within 10 s")

    def rss_mb(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def peak_rss_mb(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def api_requests_served(self):
        # wrk stops at its deadline with up to `c` requests still in the server; let
        # them finish (the count stops moving) before comparing with the audit.
        previous = -1
        while True:
            current = self._api_requests_counted()
            if current == previous:
                return current
            previous = current
            time.sleep(0.5)

    def _api_requests_counted(self):
        _, text = http_get(f"{self.base}/metrics")
        total = 0
        for line in text.splitlines():
            match = re.match(r'http_requests_total\{.*route="(/api/[^"]*)".*\} (\d+)', line)
            if match:
                total += int(match.group(2))
        return total

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        if code != 0:
            tail = "\n".join(self.log_path.read_text().splitlines()[-20:])
            raise SystemExit(f"server exited {code} on SIGTERM; its log ends:\n{tail}")


def wrk(base, scenario, connections, duration, ids):
    """`ids`: the record ids GET picks from, a file listing them or, when they are dense,
    their count (1..ids)."""
    env = dict(os.environ, SCENARIO=scenario,
               **({"RECORDS": str(ids)} if isinstance(ids, int) else {"IDS_FILE": str(ids)}))
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{duration}s",
         "--timeout", "5s", "-s", str(HERE / "scenario.lua"), base],
        env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    seconds = result["duration_us"] / 1e6
    return {"rps": result["requests"] / seconds, "requests": result["requests"],
            "errors": result["errors"] + result["non_2xx"],
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000}


def pgbench(url, clients, duration):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_words (word) VALUES ('pgbench');\n")
    subprocess.run(["psql", url, "-q", "-c", "SET client_min_messages = warning", "-c",
                    "CREATE TABLE IF NOT EXISTS bench_words (id bigserial PRIMARY KEY, word text NOT NULL,"
                    " created timestamp NOT NULL DEFAULT now())"], check=True)
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(duration),
                          "-f", script.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def scalar(backend, url, db_path, sql):
    """One integer from the benchmark's database, through the backend's own client."""
    if backend == "sqlite":
        with sqlite3.connect(db_path) as conn:
            return conn.execute(sql).fetchone()[0]
    out = subprocess.run(["psql", url, "-Atc", sql],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def audit_count(backend, url, db_path):
    return scalar(backend, url, db_path, "SELECT COUNT(*) FROM histories")


def write_ids(backend, url, db_path, path):
    """The ids of the stored records, one per line, for the GET scenario: ids are not
    dense (PostgreSQL's writer draws them ahead under load and drops what an idle
    wait leaves unused), and a GET of a gap would be a 404, not a read."""
    sql = "SELECT id FROM randomizes ORDER BY id"
    if backend == "sqlite":
        with sqlite3.connect(db_path) as conn:
            ids = [str(row[0]) for row in conn.execute(sql)]
    else:
        ids = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True,
                             check=True).stdout.split()
    Path(path).write_text("\n".join(ids or ["1"]) + "\n")
    return path


def run_backend(backend, binary, concurrency, duration, admin_url, scenarios=SCENARIOS):
    workdir = tempfile.mkdtemp(prefix=f"bench-{backend}-")
    db_path = Path(workdir) / "bench.sqlite3"
    database = f"bench_{os.getpid()}_{int(time.time())}"
    if backend == "sqlite":
        url = f"sqlite://{db_path}"
    else:
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {database}"], check=True)
        url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    failures = []
    result = {"backend": backend, "scenarios": []}
    try:
        server = Server(binary, url, workdir)
        result["cold_start_ms"] = server.cold_start_ms
        health = {}
        for scenario in scenarios:
            for connections in concurrency:
                ids = write_ids(backend, url, db_path, Path(workdir) / "ids.txt")
                row = wrk(server.base, scenario, connections, duration, ids)
                if scenario == "health":
                    health[connections] = row["rps"]
                row.update(scenario=scenario, connections=connections,
                           vs_health=row["rps"] / health[connections],
                           rss_mb=server.peak_rss_mb())
                result["scenarios"].append(row)
                print_row(backend, row, flush=True)
                if row["errors"]:
                    failures.append(f"{backend} {LABELS[scenario]} c={connections}: "
                                    f"{row['errors']} failed requests")
        served = server.api_requests_served()
        server.stop()
        audited = audit_count(backend, url, db_path)
        result.update(api_requests_served=served, audit_entries=audited,
                      peak_rss_mb=max(r["rss_mb"] for r in result["scenarios"]))
        if served != audited:
            failures.append(f"{backend}: {served} API requests answered but {audited} audit entries")
        if backend == "postgres" and "post" in scenarios:
            result["pgbench_tps"] = {c: pgbench(url, c, duration) for c in concurrency if c > 1}
    finally:
        if backend == "postgres":
            subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {database}"],
                           check=False)
    return result, failures


def print_row(backend, row, flush=False):
    print(f"{backend:<9}{LABELS[row['scenario']]:<29}{row['connections']:>4}"
          f"{row['rps']:>11,.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
          f"{row['errors']:>7}{row['rss_mb']:>8.1f}{row['vs_health']:>8.2f}", flush=flush)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/randomize")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 10)))
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", default=os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--out", default="target/bench/results.json")
    # An A/B of one path needs only it (and /healthz, the ceiling every row is read against).
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    scenarios = ["health"] + [s for s in args.scenarios.split(",") if s in SCENARIOS and s != "health"]

    print(f"{'backend':<9}{'scenario':<29}{'c':>4}{'req/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>7}{'RSS MB':>8}{'/health':>8}")
    results, failures = [], []
    for backend in args.backends.split(","):
        result, failed = run_backend(backend, str(Path(args.binary).resolve()), concurrency,
                                     args.duration, args.postgres, scenarios)
        results.append(result)
        failures += failed

    summary = {"machine": machine(), "binary_bytes": os.path.getsize(args.binary),
               "duration_s": args.duration, "results": results, "targets": TARGETS}
    print()
    print(f"release binary: {summary['binary_bytes'] / 1e6:.1f} MB")
    for r in results:
        print(f"{r['backend']}: cold start {r['cold_start_ms']:.0f} ms, peak RSS "
              f"{r['peak_rss_mb']:.1f} MB, audit entries {r['audit_entries']} = API requests "
              f"{r['api_requests_served']}")
        if "pgbench_tps" in r:
            top = max(r["pgbench_tps"])
            post = next(s["rps"] for s in r["scenarios"]
                        if s["scenario"] == "post" and s["connections"] == top)
            summary.setdefault("pg_post_vs_pgbench", post / r["pgbench_tps"][top])
            print(f"pgbench single-row INSERT c={top}: {r['pgbench_tps'][top]:,.0f} tps; "
                  f"POST/pgbench = {post / r['pgbench_tps'][top]:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {args.out}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), "unknown")
    return {"cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


if __name__ == "__main__":
    main()
