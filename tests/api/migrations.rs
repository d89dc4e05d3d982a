use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use sluice_migrations::{Migrator, MigratorTrait};

use crate::helpers::TestDb;

const TABLES: [&str; 14] = [
    "api_tokens",
    "audit_log",
    "identities",
    "invitations",
    "memberships",
    "orgs",
    "project_secrets",
    "projects",
    "queue_jobs",
    "run_outbox",
    "runs",
    "sessions",
    "users",
    "webhook_deliveries",
];

async fn connect(db: &TestDb) -> DatabaseConnection {
    let conn = sluice_core::db::connect(&db.url.clone().into(), 2)
        .await
        .unwrap();
    sluice_core::db::migrate(&conn).await.unwrap();
    conn
}

async fn strings(db: &DatabaseConnection, sql: &str) -> BTreeSet<String> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn tables(db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
        }
    };
    strings(db, sql).await
}

/// Every column as `table.column NULL|NOT NULL`.
async fn columns(db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT m.name || '.' || p.name || CASE p.\"notnull\" WHEN 1 THEN ' NOT NULL' ELSE ' NULL' END \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        }
        _ => {
            "SELECT table_name || '.' || column_name || CASE is_nullable WHEN 'NO' THEN ' NOT NULL' ELSE ' NULL' END \
             FROM information_schema.columns WHERE table_schema = current_schema()"
        }
    };
    strings(db, sql).await
}

/// Named indexes (primary keys and per-column unique constraints are implicit on both).
async fn indexes(db: &DatabaseConnection) -> BTreeSet<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"
        }
        _ => {
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
             AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'"
        }
    };
    strings(db, sql).await
}

#[tokio::test]
async fn migrations_create_every_table_and_can_be_reapplied() {
    let test_db = TestDb::create().await;
    let db = connect(&test_db).await;
    let found = tables(&db).await;
    for table in TABLES {
        assert!(found.contains(table), "{table} missing from {found:?}");
    }
    assert!(found.contains("seaql_migrations"));

    // Applying again is a no-op; rolling everything back leaves no table of ours.
    sluice_core::db::migrate(&db).await.unwrap();
    assert_eq!(
        sluice_core::db::applied_migrations(&db)
            .await
            .unwrap()
            .len(),
        Migrator::migrations().len()
    );
    Migrator::down(&db, None).await.unwrap();
    let after_down = tables(&db).await;
    for table in TABLES {
        assert!(!after_down.contains(table), "{table} survived the rollback");
    }
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(tables(&db).await, found);
}

#[tokio::test]
async fn unique_and_foreign_key_constraints_are_enforced() {
    let test_db = TestDb::create().await;
    let db = connect(&test_db).await;
    db.execute_unprepared("INSERT INTO orgs (slug, name) VALUES ('acme', 'Acme')")
        .await
        .unwrap();
    let duplicate = db
        .execute_unprepared("INSERT INTO orgs (slug, name) VALUES ('acme', 'Other')")
        .await;
    assert!(duplicate.is_err(), "duplicate org slug accepted");

    let orphan = db
        .execute_unprepared(
            "INSERT INTO memberships (org_id, user_id, role) VALUES (9999, 9999, 'owner')",
        )
        .await;
    assert!(
        orphan.is_err(),
        "membership without org and user accepted: foreign keys are off"
    );

    db.execute_unprepared("INSERT INTO users (email, name) VALUES ('a@example.com', 'A')")
        .await
        .unwrap();
    db.execute_unprepared(
        "INSERT INTO projects (org_id, slug, name, repo_url, webhook_secret_enc) \
         SELECT id, 'web', 'Web', 'https://git.example/web.git', '' FROM orgs WHERE slug = 'acme'",
    )
    .await
    .unwrap();
    assert_eq!(strings(&db, "SELECT slug FROM projects").await.len(), 1);
    // Deleting an org cascades to everything it owns.
    db.execute_unprepared("DELETE FROM orgs WHERE slug = 'acme'")
        .await
        .unwrap();
    let left = strings(&db, "SELECT slug FROM projects").await;
    assert!(left.is_empty(), "projects outlived their org: {left:?}");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_on() {
    let test_db = TestDb::sqlite();
    let db = connect(&test_db).await;
    let mode = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");
    let fks = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "PRAGMA foreign_keys",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fks.try_get_by_index::<i64>(0).unwrap(), 1);
}

#[tokio::test]
async fn schema_is_the_same_on_sqlite_and_postgres() {
    let Ok(server) = std::env::var("SLUICE_TEST_DATABASE_URL") else {
        eprintln!("SLUICE_TEST_DATABASE_URL unset: this comparison runs in the PostgreSQL pass");
        return;
    };
    if !server.starts_with("postgres") {
        return;
    }
    let (pg_db, sqlite_db) = (TestDb::postgres(&server).await, TestDb::sqlite());
    let (pg, sqlite) = (connect(&pg_db).await, connect(&sqlite_db).await);
    assert_eq!(tables(&pg).await, tables(&sqlite).await);
    assert_eq!(columns(&pg).await, columns(&sqlite).await);
    assert_eq!(indexes(&pg).await, indexes(&sqlite).await);
    assert!(indexes(&pg).await.contains("uq_projects_org_slug"));
    assert!(indexes(&sqlite).await.contains("ix_runs_active"));
}
