//! docs/AUDIT.md's PostgreSQL role setup, run as written: an owner that migrates and a
//! service role that does not own the tables. The service must become ready and serve
//! on exactly the grants the document lists, and the history must refuse it an UPDATE.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::helpers::{TestDb, init_test_logging, postgres_base_url, server_config, spawn_on};

/// Throwaway roles and schema named after the test; dropped with everything they own.
struct Roles {
    owner: String,
    app: String,
    schema: String,
}

impl Roles {
    fn new() -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Self {
            owner: format!("owner_{id}"),
            app: format!("app_{id}"),
            schema: format!("roles_{id}"),
        }
    }

    /// The document's SQL for these names: (as the superuser, as the owner after migrating).
    fn documented_sql(&self, database: &str) -> (String, String) {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/AUDIT.md"))
            .expect("docs/AUDIT.md");
        let block = doc
            .split("PostgreSQL role setup")
            .nth(1)
            .and_then(|rest| rest.split("```sql\n").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("docs/AUDIT.md has a ```sql role setup block");
        let sql = block
            .replace("randomize_owner", &self.owner)
            .replace("randomize_app", &self.app)
            .replace("'…'", "'unused-under-trust-auth'")
            .replace("ON DATABASE randomize", &format!("ON DATABASE {database}"))
            .replace("SCHEMA randomize", &format!("SCHEMA {}", self.schema))
            .replace(
                "search_path = randomize,",
                &format!("search_path = {},", self.schema),
            );
        let (roles, grants) = sql
            .split_once(&format!("-- as {},", self.owner))
            .expect("the block says where the owner takes over");
        let grants = grants.split_once('\n').map_or("", |(_, rest)| rest);
        for part in [roles, grants] {
            assert!(
                !part.contains("randomize ") && !part.contains("randomize,"),
                "a name in the role setup this test does not know: {part}"
            );
        }
        (roles.to_owned(), grants.to_owned())
    }

    fn url(&self, role: &str) -> String {
        let base = postgres_base_url();
        let (_, rest) = base.split_once("://").expect("a URL");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("postgres://{role}@{host}")
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        if let Ok(mut admin) = TestDb::existing(postgres_base_url()).try_connect() {
            let _ = admin.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; \
                 DROP OWNED BY {owner}, {app}; DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {app};",
                schema = self.schema,
                owner = self.owner,
                app = self.app,
            ));
        }
    }
}

#[tokio::test]
async fn the_documented_service_role_is_ready_serves_and_cannot_rewrite_history() {
    init_test_logging();
    let roles = Roles::new();
    let mut admin = TestDb::existing(postgres_base_url()).connect();
    let database: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "current_database()",
    ))
    .get_result(&mut admin)
    .expect("current_database()");
    let (as_superuser, as_owner) = roles.documented_sql(&database);
    admin.batch_execute(&as_superuser).expect("the role setup");

    let owner = TestDb::existing(roles.url(&roles.owner));
    owner.migrate();
    owner
        .connect()
        .batch_execute(&as_owner)
        .expect("the owner's grants");

    let app_db = TestDb::existing(roles.url(&roles.app));
    let config = server_config(&app_db);
    let app = spawn_on(app_db, config);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let record = app.create("granted").await;
    let read = app.get(&format!("/api/randomizes/{}", record["id"])).await;
    assert_eq!(read.status(), 200);

    let refused = diesel::sql_query("UPDATE histories SET status = 200")
        .execute(&mut app.db.connect())
        .expect_err("the service role may not UPDATE the history");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
}
