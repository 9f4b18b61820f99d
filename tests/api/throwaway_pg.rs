//! A PostgreSQL cluster of the test's own — `initdb` in a temp dir, served on a free
//! port — for fault tests that stop and restart the database. The shared server is
//! never touched. Fails loudly (never skips) when the server binaries are missing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct ThrowawayPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl ThrowawayPostgres {
    /// Creates the cluster and starts it.
    pub fn start() -> Self {
        let bin = bindir();
        let dir = tempfile::tempdir().unwrap();
        if running_as_root() {
            // initdb refuses root; the cluster belongs to the `postgres` system user.
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let cluster = Self {
            port: free_port(),
            bin,
            dir,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        cluster.resume();
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again, on the same port) and returns once it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server the way a crash or an OOM kill would: no checkpoint, every
    /// connection cut.
    pub fn crash(&self) {
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        if !self
            .command(tool)
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
        {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            panic!("{tool} {args:?} failed; server log:\n{log}");
        }
    }

    /// `tool` from the server binaries, run as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        // Already stopped is fine; the temp dir goes either way.
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

/// `PG_BINDIR`, else what `pg_config` says, else the newest `/usr/lib/postgresql/*/bin`.
fn bindir() -> PathBuf {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("PG_BINDIR").map(PathBuf::from) {
        assert!(
            has_initdb(&dir),
            "PG_BINDIR={} has no initdb",
            dir.display()
        );
        return dir;
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    candidates.sort_by_key(|dir| {
        dir.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    from_pg_config
        .into_iter()
        .chain(candidates.into_iter().rev())
        .find(|dir| has_initdb(dir))
        .unwrap_or_else(|| {
            panic!(
                "the PostgreSQL fault test needs the server binaries (initdb, pg_ctl): install \
                 the postgresql package or set PG_BINDIR"
            )
        })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn run(command: &mut Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?} failed: {status}");
}
