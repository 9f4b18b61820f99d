//! `randomize token` (SPEC §6) for every key type, and that nothing secret is logged.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::cli::randomize;
use crate::helpers::{Backend, TEST_SECRET, jwt_args, spawn_app_with, test_key};

/// Mints with the binary, verifies with a server configured like production would be.
async fn token_from_cli_is_accepted(
    algorithm: &str,
    env: &[(&str, String)],
    configure: impl FnOnce(&mut randomize::auth::JwtArgs),
) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = randomize(&dir);
    command
        .args(["token", "--subject", "ops-alice", "--ttl", "5m"])
        .env("JWT_ALGORITHM", algorithm);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{algorithm}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let mut args = jwt_args(algorithm);
    configure(&mut args);
    let verifier = args.verifier().unwrap().map(Arc::new);
    let app = spawn_app_with(Backend::Sqlite, |c| c.verifier = verifier).await;
    let response = app.get_histories("/api/histories", Some(&token)).await;
    assert_eq!(response.status(), 200, "{algorithm}");
    assert_eq!(app.db.histories()[0].subject.as_deref(), Some("ops-alice"));
}

#[tokio::test]
async fn hs256_token_from_the_cli_is_accepted() {
    token_from_cli_is_accepted("HS256", &[("JWT_SECRET", TEST_SECRET.into())], |a| {
        a.jwt_secret = Some(TEST_SECRET.into())
    })
    .await;
}

#[tokio::test]
async fn rs256_token_from_the_cli_is_accepted() {
    let private = test_key("rs256-private.pem").display().to_string();
    token_from_cli_is_accepted("RS256", &[("JWT_PRIVATE_KEY_FILE", private)], |a| {
        a.jwt_public_key_file = Some(test_key("rs256-public.pem"))
    })
    .await;
}

#[tokio::test]
async fn es256_token_from_the_cli_is_accepted() {
    let private = test_key("es256-private.pem").display().to_string();
    token_from_cli_is_accepted("ES256", &[("JWT_PRIVATE_KEY_FILE", private)], |a| {
        a.jwt_public_key_file = Some(test_key("es256-public.pem"))
    })
    .await;
}

#[tokio::test]
async fn eddsa_token_from_the_cli_is_accepted() {
    // Keys inline this time (JWT_PRIVATE_KEY rather than the _FILE form).
    let private = std::fs::read_to_string(test_key("eddsa-private.pem")).unwrap();
    token_from_cli_is_accepted("EdDSA", &[("JWT_PRIVATE_KEY", private)], |a| {
        a.jwt_public_key = Some(std::fs::read_to_string(test_key("eddsa-public.pem")).unwrap())
    })
    .await;
}

#[test]
fn key_and_algorithm_mismatches_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, String)]| {
        let mut command = randomize(&dir);
        command.args(["token", "--subject", "x"]);
        for (k, v) in env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{env:?} must fail");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let key = |name: &str| test_key(name).display().to_string();

    let wrong_kind = run(&[
        ("JWT_ALGORITHM", "ES256".into()),
        ("JWT_PRIVATE_KEY_FILE", key("rs256-private.pem")),
    ]);
    assert!(
        wrong_kind.starts_with("randomize: JWT_PRIVATE_KEY: is not a PEM private key for ES256"),
        "{wrong_kind}"
    );
    let mismatched = run(&[
        ("JWT_ALGORITHM", "EdDSA".into()),
        ("JWT_PRIVATE_KEY_FILE", key("eddsa-private.pem")),
        ("JWT_PUBLIC_KEY_FILE", key("es256-public.pem")),
    ]);
    assert!(mismatched.contains("JWT_PUBLIC_KEY"), "{mismatched}");
    let short = run(&[("JWT_SECRET", "too-short".into())]);
    assert!(
        short.contains("JWT_SECRET: must be at least 32 bytes") && !short.contains("too-short"),
        "{short}"
    );
    assert!(run(&[]).contains("JWT_SECRET: must be set"));
}

/// Captures every log line (all crates, TRACE) written while the server handles tokens.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_reach_the_log() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("this test owns its process's subscriber (nextest runs one test per process)");
    let mut args = jwt_args("HS256");
    args.jwt_secret = Some(TEST_SECRET.into());
    let verifier = args.verifier().unwrap().map(Arc::new);
    let app = spawn_app_with(Backend::Sqlite, |c| c.verifier = verifier).await;
    let signer = args.signer().unwrap();
    let valid = signer
        .sign(
            "log-check",
            "histories:read",
            std::time::Duration::from_secs(60),
            randomize::auth::unix_now(),
        )
        .unwrap();
    let invalid = format!("{valid}tampered");

    for token in [&valid, &invalid] {
        app.get_histories("/api/histories", Some(token)).await;
    }
    app.post_json(&json!({"word": "logged-body-must-not-appear"}))
        .await
        .json::<Value>()
        .await
        .unwrap();

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("/api/histories"), "the capture works: {log}");
    for part in valid.split('.') {
        assert!(!log.contains(part), "token material logged");
    }
    assert!(!log.contains(TEST_SECRET));
    assert!(
        !log.to_ascii_lowercase().contains("bearer "),
        "no Authorization header in the log"
    );
    assert!(
        !log.contains("logged-body-must-not-appear"),
        "no request body in the log"
    );
}
