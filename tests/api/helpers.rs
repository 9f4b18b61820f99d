//! `spawn_app()` and what tests need around it. Every test gets its own database:
//! a fresh SQLite file in a temp dir, or a PostgreSQL schema (selected through
//! `options=-csearch_path=…`) that is dropped when the test ends. Schemas left by
//! crashed runs are swept when older than two hours.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::RunQueryDsl;
use diesel::prelude::*;
use randomize::config::ServerConfig;
use randomize::db::histories::Entry;
use randomize::db::{
    ConnectOptions, DatabaseConfig, DatabaseUrl, DbConnection, SqliteSynchronous, migrations,
};
use randomize::startup::Application;
use serde_json::Value;

/// Every migration, oldest first (the same names in both backends' folders).
pub const MIGRATIONS: [&str; 16] = [
    "2026-11-22-000001_create_randomizes",
    "2026-11-22-000002_create_histories",
    "2026-11-23-051804_count_randomizes",
    "2026-12-02-000001_histories_forensic_fields",
    "2026-12-02-000002_index_histories_method",
    "2026-12-02-000003_index_histories_status",
    "2026-12-02-000004_index_histories_path",
    "2026-12-02-000005_index_histories_subject",
    "2026-12-02-000006_index_histories_resource_id",
    "2026-12-02-000007_index_randomizes_original",
    "2026-12-02-000008_service_heartbeat",
    "2026-12-02-000009_audit_chains",
    "2026-12-02-000010_index_histories_chain_seq",
    "2026-12-02-000011_idempotency_keys",
    "2026-12-07-000001_index_histories_underived_resource",
    "2026-12-07-000002_drop_histories_resource_id_index",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares, for each scenario `async fn name(backend: Backend)`, the tests
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// The shared PostgreSQL server; tests create and drop their own schemas in it.
pub fn postgres_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct TestDb {
    pub url: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.sqlite3").display());
                Self {
                    url,
                    schema: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = postgres_base_url();
                let mut admin = TestDb::existing(base.clone()).try_connect().unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL tests need a server at {base} ({e}). Start it with \
                         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
                         or point TEST_DATABASE_URL elsewhere."
                    )
                });
                sweep_stale_schemas(&mut admin);
                ensure_shared_extensions(&mut admin);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let schema = format!("rt_{now}_{}", uuid::Uuid::now_v7().simple());
                diesel::sql_query(format!("CREATE SCHEMA {schema}"))
                    .execute(&mut admin)
                    .expect("create schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                // `public` after the test's own schema: the migrations find pg_trgm there.
                let url = format!("{base}{separator}options=-csearch_path%3D{schema}%2Cpublic");
                Self {
                    url,
                    schema: Some(schema),
                    _dir: None,
                }
            }
        }
    }

    /// A database someone else provides and cleans up (a throwaway cluster).
    pub fn existing(url: String) -> Self {
        Self {
            url,
            schema: None,
            _dir: None,
        }
    }

    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: DatabaseUrl::parse(&self.url).expect("test url"),
            pool_size: 4,
            timeout: Duration::from_secs(3),
            sqlite_synchronous: SqliteSynchronous::Full,
        }
    }

    pub fn migrate(&self) {
        migrations::run_pending(
            &ConnectOptions::from(&self.config()),
            Duration::from_secs(30),
        )
        .expect("migrate");
    }

    /// Through the library's connect, like every connection in the test process: it
    /// sets OpenSSL up before libpq first does (see `ConnectOptions::connect`).
    pub fn connect(&self) -> DbConnection {
        self.try_connect().expect("connect")
    }

    pub fn try_connect(&self) -> Result<DbConnection, diesel::ConnectionError> {
        ConnectOptions::from(&self.config()).connect()
    }

    /// Audit entries as stored, oldest first.
    pub fn histories(&self) -> Vec<Entry> {
        use randomize::db::schema::histories::dsl::*;
        histories
            .order(id.asc())
            .load::<Entry>(&mut self.connect())
            .expect("read histories")
    }

    pub fn count_randomizes(&self) -> i64 {
        use randomize::db::schema::randomizes::dsl::*;
        randomizes
            .count()
            .get_result(&mut self.connect())
            .expect("count")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema
            && let Ok(mut admin) = TestDb::existing(postgres_base_url()).try_connect()
        {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut admin);
        }
    }
}

/// Extensions belong to the database, not to a schema: created once in `public`, where
/// every test schema's migrations find them (`CREATE EXTENSION IF NOT EXISTS` is then a
/// no-op), instead of inside the first test's schema and dropped with it.
fn ensure_shared_extensions(admin: &mut DbConnection) {
    for _ in 0..3 {
        // Two test processes may race to create it; the loser's error is harmless.
        let _ = diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
            .execute(admin);
        let present: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT COUNT(*) FROM pg_extension WHERE extname = 'pg_trgm')",
        ))
        .get_result(admin)
        .expect("query pg_extension");
        if present == 1 {
            return;
        }
    }
    panic!(
        "cannot create the pg_trgm extension in the test database (is postgresql-contrib installed?)"
    );
}

fn sweep_stale_schemas(admin: &mut DbConnection) {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        nspname: String,
    }
    let cutoff = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        - 2 * 3600;
    let names: Vec<Name> =
        diesel::sql_query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rt\\_%'")
            .load(admin)
            .unwrap_or_default();
    for Name { nspname } in names {
        let created = nspname
            .split('_')
            .nth(1)
            .and_then(|t| t.parse::<u64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {nspname} CASCADE"))
                .execute(admin);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Ends the server task with the test rather than with the runtime.
        self.server.abort();
    }
}

pub fn server_config(db: &TestDb) -> ServerConfig {
    ServerConfig::local(db.config())
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A migrated database and a running server, configured by `adjust`.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    init_test_logging();
    let db = TestDb::new(backend);
    db.migrate();
    let mut config = server_config(&db);
    adjust(&mut config);
    spawn_on(db, config)
}

/// A server on `db` as it is (migrated or not, reachable or not).
pub fn spawn_on(db: TestDb, config: ServerConfig) -> TestApp {
    let app = Application::build(config).expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        server,
    }
}

pub fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/randomizes"))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Creates a record and returns its JSON.
    pub async fn create(&self, word: &str) -> Value {
        let response = self.post_json(&serde_json::json!({ "word": word })).await;
        assert_eq!(response.status(), 201, "creating {word:?}");
        response.json().await.expect("record JSON")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }
}

/// Asserts `response` is a problem+json with `status`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        header_id.as_deref(),
        "request_id in body and header"
    );
    body
}

/// A JWT configuration as the server and `randomize token` read it.
pub fn jwt_args(algorithm: &str) -> randomize::auth::JwtArgs {
    randomize::auth::JwtArgs {
        jwt_algorithm: algorithm.into(),
        jwt_secret: None,
        jwt_secret_file: None,
        jwt_public_key: None,
        jwt_public_key_file: None,
        jwt_private_key: None,
        jwt_private_key_file: None,
        jwt_issuer: None,
        jwt_audience: None,
        jwt_leeway: Duration::from_secs(30),
    }
}

pub const TEST_SECRET: &str = "test-only-secret-0123456789abcdef";

/// A committed, test-only PEM key (tests/fixtures/test-only-keys).
pub fn test_key(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/test-only-keys")
        .join(name)
}

/// A server that verifies HS256 tokens signed with `TEST_SECRET`.
pub async fn spawn_app_with_jwt(
    backend: Backend,
    adjust: impl FnOnce(&mut randomize::auth::JwtArgs),
) -> TestApp {
    let mut args = jwt_args("HS256");
    args.jwt_secret = Some(TEST_SECRET.into());
    adjust(&mut args);
    let verifier = args.verifier().expect("verifier").map(std::sync::Arc::new);
    spawn_app_with(backend, |c| c.verifier = verifier).await
}

impl TestApp {
    pub async fn get_histories(
        &self,
        path_and_query: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.get(self.url(path_and_query));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("GET histories")
    }
}
