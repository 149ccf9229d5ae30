//! The database's own ceilings, through the driver the server uses (sqlx, under sea-orm):
//! pgbench's TPC-B-like transaction at the same concurrency, and the rows `ListTickets` sends
//! streamed straight to a client.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
    sqlx::{
        self, postgres::PgConnectOptions, postgres::PgPoolOptions, sqlite::SqliteConnectOptions,
        sqlite::SqlitePoolOptions,
    },
};
use tokio_stream::StreamExt;

use crate::{
    Args, BenchError,
    load::{Measured, gather, summarise},
};

/// pgbench's sizes at scale 1: one branch, ten tellers, 100,000 accounts.
const TELLERS: i64 = 10;
const ACCOUNTS: i64 = 100_000;

/// The tables, as `pgbench -i` makes them (with primary keys), under names of their own.
const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS ceiling_branches \
     (bid INT PRIMARY KEY, bbalance INT NOT NULL, filler CHAR(88))",
    "CREATE TABLE IF NOT EXISTS ceiling_tellers \
     (tid INT PRIMARY KEY, bid INT NOT NULL, tbalance INT NOT NULL, filler CHAR(84))",
    "CREATE TABLE IF NOT EXISTS ceiling_accounts \
     (aid INT PRIMARY KEY, bid INT NOT NULL, abalance INT NOT NULL, filler CHAR(84))",
    "CREATE TABLE IF NOT EXISTS ceiling_history \
     (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler CHAR(22))",
];

/// pgbench's TPC-B-like transaction ("tpcb-like", its default script), between BEGIN and
/// COMMIT.
const TRANSACTION: [&str; 5] = [
    "UPDATE ceiling_accounts SET abalance = abalance + $1 WHERE aid = $2",
    "SELECT abalance FROM ceiling_accounts WHERE aid = $1",
    "UPDATE ceiling_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
    "UPDATE ceiling_branches SET bbalance = bbalance + $1 WHERE bid = $2",
    "INSERT INTO ceiling_history (tid, bid, aid, delta, mtime) \
     VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
];

/// `sql` with `$n` parameters in the placeholders of `backend` (each appears once, in order).
fn placeholders(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Sqlite => {
            (1..=4).fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?"))
        }
        _ => sql.to_owned(),
    }
}

/// Where the write ceiling runs: on PostgreSQL the benchmark's database itself, on SQLite a
/// file of its own beside the server's, opened with the server's settings.
fn ceiling_url(url: &str) -> Result<String, BenchError> {
    if !url.starts_with("sqlite:") {
        return Ok(url.to_owned());
    }
    let options: SqliteConnectOptions = url.parse()?;
    let file = options.get_filename().with_extension("ceiling.db");
    Ok(format!("sqlite://{}?mode=rwc", file.display()))
}

/// The composed write ceiling's database part: pgbench's TPC-B-like transaction by
/// `args.concurrency` clients through sqlx. On PostgreSQL each client has a connection of its
/// own, as pgbench's do; on SQLite the clients share one connection with the settings of the
/// server's writer connection and take turns to write as the server's requests do (a queue,
/// then `BEGIN IMMEDIATE`), one transaction at a time.
pub async fn write_ceiling(args: &Args, url: &str) -> Result<Measured, BenchError> {
    let url = ceiling_url(url)?;
    let sqlite = url.starts_with("sqlite:");
    let concurrency = args.concurrency.max(1);
    let mut connect = ConnectOptions::new(&url);
    connect
        .max_connections(if sqlite { 1 } else { concurrency as u32 })
        .min_connections(1)
        .sqlx_logging(false)
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(clientele::store::sqlite_writer_settings);
    let db = Database::connect(connect).await?;
    let backend = db.get_database_backend();
    prepare_tables(&db).await?;
    let writer = sqlite.then(|| Arc::new(tokio::sync::Mutex::new(())));
    let statements: Arc<Vec<String>> = Arc::new(
        TRANSACTION
            .iter()
            .map(|sql| placeholders(backend, sql))
            .collect(),
    );
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (db, writer, statements, counter) = (
            db.clone(),
            writer.clone(),
            statements.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            loop {
                let begun = Instant::now();
                if begun >= end {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919) as i64;
                let turn = match &writer {
                    Some(writer) => Some(writer.lock().await),
                    None => None,
                };
                let done = tpcb(&db, backend, &statements, n).await;
                drop(turn);
                if begun >= measure_from {
                    match done {
                        Ok(()) => latencies.push(begun.elapsed()),
                        Err(error) => {
                            if errors == 0 {
                                eprintln!("  a ceiling transaction failed: {error}");
                            }
                            errors += 1;
                        }
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let (latencies, errors) = gather(tasks).await;
    db.close().await?;
    Ok(summarise(latencies, errors, args.duration, None))
}

/// One TPC-B-like transaction: the account, teller and branch of `n`, a random-looking delta.
async fn tpcb(
    db: &DatabaseConnection,
    backend: DbBackend,
    statements: &[String],
    n: i64,
) -> Result<(), sea_orm::DbErr> {
    let aid = n.rem_euclid(ACCOUNTS) + 1;
    let tid = (n / 7).rem_euclid(TELLERS) + 1;
    let bid = 1_i64;
    let delta = n.rem_euclid(10_001) - 5_000;
    let statement = |index: usize, values: Vec<Value>| {
        Statement::from_sql_and_values(backend, statements[index].as_str(), values)
    };
    let tx = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    tx.execute_raw(statement(0, vec![delta.into(), aid.into()]))
        .await?;
    tx.query_one_raw(statement(1, vec![aid.into()])).await?;
    tx.execute_raw(statement(2, vec![delta.into(), tid.into()]))
        .await?;
    tx.execute_raw(statement(3, vec![delta.into(), bid.into()]))
        .await?;
    tx.execute_raw(statement(
        4,
        vec![tid.into(), bid.into(), aid.into(), delta.into()],
    ))
    .await?;
    tx.commit().await
}

/// Makes and fills the ceiling's tables unless an earlier run did.
async fn prepare_tables(db: &DatabaseConnection) -> Result<(), BenchError> {
    let backend = db.get_database_backend();
    for sql in SCHEMA {
        db.execute_unprepared(sql).await?;
    }
    let filled = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM ceiling_branches",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if filled > 0 {
        return Ok(());
    }
    let fill = [
        "INSERT INTO ceiling_branches (bid, bbalance) VALUES (1, 0)".to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {TELLERS}) \
             INSERT INTO ceiling_tellers (tid, bid, tbalance) SELECT i, 1, 0 FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ACCOUNTS}) \
             INSERT INTO ceiling_accounts (aid, bid, abalance, filler) SELECT i, 1, 0, '' FROM n"
        ),
    ];
    for sql in fill {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// The stream ceiling: every ticket row, in `ListTickets`' default order (by number), streamed
/// by the database to one client of sqlx. Rows per second; p50 is the time to the first row.
pub async fn stream_ceiling(url: &str) -> Result<Measured, BenchError> {
    const SQL: &str = "SELECT * FROM tickets ORDER BY number";
    let started = Instant::now();
    let mut first = None;
    let mut count = 0_u64;
    let mut seen = |count: &mut u64| {
        if first.is_none() {
            first = Some(started.elapsed());
        }
        *count += 1;
    };
    if url.starts_with("sqlite:") {
        let options = clientele::store::sqlite_settings(url.parse::<SqliteConnectOptions>()?);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut rows = sqlx::query(SQL).fetch(&pool);
        while let Some(row) = rows.next().await {
            row?;
            seen(&mut count);
        }
        drop(rows);
        pool.close().await;
    } else {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut rows = sqlx::query(SQL).fetch(&pool);
        while let Some(row) = rows.next().await {
            row?;
            seen(&mut count);
        }
        drop(rows);
        pool.close().await;
    }
    let took = started.elapsed();
    Ok(Measured {
        rate: count as f64 / took.as_secs_f64(),
        p50: first.unwrap_or_default(),
        p99: took,
        errors: 0,
        count,
        peak_memory: None,
    })
}
