//! Data access only: the connection pool, entities, DataLoaders and one file of
//! queries per domain. Knows nothing of HTTP or GraphQL; `sea_orm::DbErr` never
//! leaves this module (it becomes a [`StoreError`]).

pub mod audit;
pub mod batch;
pub mod bulk;
pub mod changes;
pub mod entities;
pub mod loaders;
pub mod organizations;
pub mod page;
pub mod people;
pub mod seed;
pub(crate) mod sql;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// Errors of the data layer. Callers decide what a caller of theirs is told; the
/// cause stays attached for the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached (refused, timed out, pool exhausted).
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr, Logged),
    /// A statement failed for another reason: a bug or a schema mismatch.
    #[error("a database statement failed")]
    Query(#[source] DbErr, Logged),
    /// A row violated a constraint (unique key, foreign key).
    #[error("the change conflicts with existing data: {0}")]
    Conflict(String),
    /// A page was asked to start after a cursor of another ordering (the
    /// cursor's sort value and the ordering's sort column do not match).
    #[error("the cursor does not belong to this list and order")]
    BadCursor,
    /// `seed` was pointed at a database that already has data; nothing was
    /// written.
    #[error(
        "the database is already seeded: it has {organizations} organizations; seed fills an empty database (point BACKPLANE_DATABASE_URL at a new one)"
    )]
    AlreadySeeded { organizations: u64 },
    /// Seeding stopped part-way (a writer failed or was stopped): some of the
    /// data is written, the rest is not.
    #[error("seeding failed part-way; drop the database and seed it again")]
    SeedIncomplete(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A prune of the audit log could not be vouched for (its checkpoint
    /// could not be signed or written): nothing was removed.
    #[error("the prune was not vouched for, nothing was removed: {0}")]
    Unvouched(String),
}

/// Whether a failure was logged yet. A DataLoader's failure is one
/// `Arc<StoreError>` shared by every resolver that waited on the batch; each
/// turns it into its own GraphQL error, and only the first logs it: one
/// failed statement, one log line.
#[derive(Debug, Default)]
pub struct Logged(AtomicBool);

impl Logged {
    /// True the first time it is asked, false ever after.
    pub fn first_time(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                StoreError::Unavailable(err, Logged::default())
            }
            DbErr::Exec(e) | DbErr::Query(e) if is_connection_error(&e.to_string()) => {
                StoreError::Unavailable(err, Logged::default())
            }
            _ => match err.sql_err() {
                Some(sea_orm::SqlErr::UniqueConstraintViolation(m))
                | Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(m)) => {
                    StoreError::Conflict(m)
                }
                _ => StoreError::Query(err, Logged::default()),
            },
        }
    }
}

fn is_connection_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection refused",
        "connection reset",
        "broken pipe",
        "pool timed out",
        "terminating connection",
        "connection closed",
        "unexpected eof",
        "error communicating with database",
        "the database system is shutting down",
        "the database system is starting up",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// The most SQLite connections worth opening: SQLite does a statement's work
/// on its connection's own thread, so past one connection per core (and the
/// audit writer's, and one for a long export) more connections only add
/// threads that take turns on the same cores, each with its own page cache.
/// On 2 cores, with 4 connections instead of 8, the compiled admin list page
/// served 515–564 requests a second instead of 395–469, the deep page about
/// as many, and the server peaked at 60 MiB instead of 76 (`bench/analysis.md`).
fn sqlite_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores + 2).unwrap_or(u32::MAX).min(8)
}

/// The size SQLite cuts its WAL file back to once it starts it over
/// (`journal_size_limit`). Without it the file keeps the largest size it
/// ever reached, for as long as the database is open: the demo seed leaves
/// ~75 MB. Under steady reads (each one's audit event a commit) a checkpoint
/// cannot copy back what a reader still reads, and the WAL runs past the
/// 1,000 pages SQLite checkpoints at: in the benchmark it grew from 36 to
/// 82 MB in two 12-second runs of the admin list page without the limit,
/// and stayed at 16–26 MB with it.
const SQLITE_WAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// A pooled connection idle at least this long is pinged before it is used.
const POOL_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How to open the database.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a statement may wait for a pooled connection.
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The pooled connection and the statement counter. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// Every statement sent, counted by sea-orm's metric callback: the tests compare
    /// it before and after a request to prove one statement per nesting level.
    statements: Arc<AtomicU64>,
    /// The part of `statements` that wrote or read the audit log.
    audit_statements: Arc<AtomicU64>,
    /// The rest: one counter, so that a reader never sees one of the two
    /// above moved and the other not yet.
    other_statements: Arc<AtomicU64>,
}

impl Store {
    /// Opens the pool (creating a SQLite file if it is missing) and checks that the
    /// database answers.
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        let url = normalize_url(&options.url);
        let is_sqlite = url.starts_with("sqlite:");
        let mut opts = ConnectOptions::new(url);
        opts.max_connections(if is_sqlite {
            options.max_connections.min(sqlite_connections())
        } else {
            options.max_connections
        })
        .min_connections(1)
        .connect_timeout(options.acquire_timeout)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        // A connection in steady use is handed out as it is: pinging it on
        // every checkout (sqlx's default) costs a round trip to the server per
        // statement, as much kernel and server work as a small read itself.
        // One that sat idle long enough to have been dropped by the server, a
        // proxy or a firewall is pinged first, and replaced if dead.
        .test_before_acquire_if_idle_for(POOL_PING_AFTER_IDLE)
        .map_sqlx_sqlite_opts(|o| o.pragma("journal_size_limit", SQLITE_WAL_SIZE_LIMIT.to_string()))
        .sqlx_logging(false);

        let mut db = Database::connect(opts).await.map_err(StoreError::from)?;
        if db.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers proceed while a writer commits; the setting is stored
            // in the file, so one connection setting it is enough.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        let statements = Arc::new(AtomicU64::new(0));
        let audit_statements = Arc::new(AtomicU64::new(0));
        let other_statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        let audit_counter = audit_statements.clone();
        let other_counter = other_statements.clone();
        db.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::Relaxed);
            crate::metrics::statement_sent();
            let sql = &info.statement.sql;
            if sql.contains("audit_events") || sql.contains("pg_advisory_xact_lock") {
                audit_counter.fetch_add(1, Ordering::Relaxed);
            } else {
                other_counter.fetch_add(1, Ordering::Relaxed);
            }
            // The text only: bound values (which may be personal data) are not logged.
            tracing::trace!(
                target: "backplane::sql",
                statement = %info.statement.sql,
                elapsed_ms = info.elapsed.as_millis() as u64,
                failed = info.failed,
                "statement"
            );
        });
        Ok(Self {
            db,
            statements,
            audit_statements,
            other_statements,
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await.map_err(StoreError::from)
    }

    /// Runs a trivial statement: readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    /// Statements sent since start-up.
    pub fn statements_sent(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Of those, the statements that appended to or read the audit log.
    pub fn audit_statements_sent(&self) -> u64 {
        self.audit_statements.load(Ordering::Relaxed)
    }

    /// Of those, the statements that did not touch the audit log (what a
    /// request sent; the audit writer's run beside it).
    pub fn request_statements_sent(&self) -> u64 {
        self.other_statements.load(Ordering::Relaxed)
    }

    /// Counts a statement sent through sqlx directly (an export's rows), as
    /// sea-orm's callback counts the others.
    pub fn count_statement(&self, sql: &str) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        crate::metrics::statement_sent();
        self.other_statements.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(target: "backplane::sql", statement = %sql, "statement");
    }

    /// `sqlite` or `postgres`, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            _ => "other",
        }
    }

    /// Connections in the pool: (open, idle).
    pub fn pool_stats(&self) -> (u32, usize) {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        }
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that read first would fail,
    /// not wait, when another writer committed in between.
    pub(crate) async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, StoreError> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
        let options = TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: (self.db.get_database_backend() == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
        };
        Ok(self.db.begin_with_options(options).await?)
    }
}

/// A SQLite URL without a `mode` opens read-write and creates the file.
fn normalize_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(normalize_url("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            normalize_url("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(normalize_url("postgres://x/y"), "postgres://x/y");
    }

    /// A large write (a seed, a bulk change) grows the WAL file; once later
    /// commits have checkpointed it and started over, the file is cut back to
    /// the limit instead of keeping its largest size for good.
    #[tokio::test]
    async fn the_sqlite_wal_shrinks_back_after_a_large_write() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("wal.db");
        let store = Store::connect(&StoreOptions::new(format!("sqlite://{}", path.display())))
            .await
            .expect("the store");
        let db = store.db();
        db.execute_unprepared("CREATE TABLE t (x TEXT)")
            .await
            .expect("the table");
        // About 21 MiB of rows in one transaction: all of it goes to the WAL.
        db.execute_unprepared(
            "INSERT INTO t SELECT printf('%.200c', 'x') FROM \
             (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
              SELECT i FROM n)",
        )
        .await
        .expect("the large write");
        let wal = dir.path().join("wal.db-wal");
        let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(
            size() > SQLITE_WAL_SIZE_LIMIT,
            "the WAL took {} bytes",
            size()
        );
        // Small commits: the automatic checkpoints copy the WAL into the
        // file and the next commit starts the WAL over.
        for i in 0..200 {
            db.execute_unprepared(&format!("INSERT INTO t VALUES ('{i}')"))
                .await
                .expect("a small write");
        }
        assert!(
            size() <= SQLITE_WAL_SIZE_LIMIT,
            "the WAL is still {} bytes",
            size()
        );
    }

    #[test]
    fn connection_failures_are_recognised() {
        assert!(is_connection_error("Connection refused (os error 111)"));
        assert!(!is_connection_error("syntax error at or near"));
    }
}
