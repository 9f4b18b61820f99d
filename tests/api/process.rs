//! The real `randomize` binary (or `entrypoint.sh` around it) as a child process, with
//! its output forwarded line by line so tests wait for what it says it did.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub const LIMIT: Duration = Duration::from_secs(20);

pub struct Process {
    child: Child,
    pub pid: u32,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far, stdout and stderr interleaved.
    pub seen: Vec<String>,
}

impl Process {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        forward(child.stdout.take().unwrap(), tx.clone());
        forward(child.stderr.take().unwrap(), tx);
        Self {
            child,
            pid,
            lines,
            seen: Vec::new(),
        }
    }

    /// `randomize serve` on `database_url`, on a free port, logging JSON.
    pub fn serve(database_url: &str, dir: &tempfile::TempDir) -> Self {
        Self::serve_with(database_url, dir, &[])
    }

    /// `serve`, with more environment (settings under test).
    pub fn serve_with(database_url: &str, dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_randomize"));
        command
            .arg("serve")
            .current_dir(dir.path())
            .env("DATABASE_URL", database_url)
            .env("BIND", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env("SHUTDOWN_TIMEOUT", "15s")
            .envs(env.iter().copied());
        Self::spawn(command)
    }

    /// The first line from now on containing `needle`.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(LIMIT, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("output ended before {needle:?}:\n{}", self.seen.join("\n")),
            Err(_) => panic!("no {needle:?} within {LIMIT:?}:\n{}", self.seen.join("\n")),
        }
    }

    /// Waits for the server's JSON "listening" line and returns its port.
    pub async fn port(&mut self) -> u16 {
        let line = self.wait_for("\"listening\"").await;
        let listening: serde_json::Value = serde_json::from_str(&line).unwrap();
        u16::try_from(listening["port"].as_u64().unwrap()).unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits (bounded) for the process to exit; returns its status and all its output.
    pub async fn exit(mut self) -> (ExitStatus, Vec<String>) {
        let status = tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("exits in time")
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

fn forward(stream: impl AsyncRead + Unpin + Send + 'static, tx: mpsc::UnboundedSender<String>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
}
