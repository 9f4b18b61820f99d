"""A throwaway PostgreSQL cluster for `make bench-scale`, configured in the open.

At 1 M records the history's randomly-touched pages (the records, and the `path` and
`resource_id` indexes that every GET-by-id entry inserts into at a random place) are
about 660 MB. A server left at PostgreSQL's default 128 MB of shared buffers evicts a
dirty page for nearly every such insert, and then measures its own buffer pool rather
than the service; the host's server may also be tuned, loaded or shared with other
work. So the benchmark starts its own cluster with PostgreSQL's usual rule for a
dedicated host, a quarter of the RAM as shared buffers, and every other setting at its
default (autovacuum included), and removes it afterwards.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bindir():
    found = shutil.which("pg_config")
    if found:
        candidate = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise SystemExit("initdb not found: install the PostgreSQL server package "
                         "(Debian: postgresql), or pass --admin-url to use a running server")
    return Path(versions[-1]).parent


def _quarter_of_ram_mb():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024 // 4
    raise SystemExit("cannot read MemTotal from /proc/meminfo")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """`with PrivatePostgres(parent) as admin_url:` a superuser URL on a fresh cluster."""

    def __init__(self, parent=None):
        self.bindir = _bindir()
        self.home = Path(tempfile.mkdtemp(prefix="bench-postgres-", dir=parent))
        self.data = self.home / "data"
        self.port = _free_port()
        self.shared_buffers_mb = _quarter_of_ram_mb()
        # initdb and postgres refuse to run as root.
        self.as_user = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise SystemExit("running as root, and there is no `postgres` user to run "
                                 "the private PostgreSQL cluster as") from None
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd):
        subprocess.run([*self.as_user, *map(str, cmd)], check=True, capture_output=True,
                       text=True)

    def __enter__(self):
        options = (f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
                   f"-c shared_buffers={self.shared_buffers_mb}MB")
        try:
            self._run(self.bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "bench",
                      "--no-sync")
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.home / "server.log",
                      "-o", options, "-w", "start")
        except subprocess.CalledProcessError as error:
            log = self.home / "server.log"
            tail = (error.stdout or "") + (error.stderr or "")
            tail += log.read_text()[-2000:] if log.exists() else ""
            shutil.rmtree(self.home, ignore_errors=True)
            raise SystemExit(f"cannot start the private PostgreSQL cluster in {self.home} "
                             f"({error}); the postgres user must be able to reach that "
                             f"directory (BENCH_DIR)\n{tail}") from None
        return f"postgres://bench@127.0.0.1:{self.port}/postgres"

    def __exit__(self, *_):
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def describe(self):
        version = subprocess.run([self.bindir / "postgres", "--version"], capture_output=True,
                                 text=True).stdout.strip()
        return (f"a private cluster ({version}, shared_buffers {self.shared_buffers_mb} MB, "
                "every other setting at its default)")
