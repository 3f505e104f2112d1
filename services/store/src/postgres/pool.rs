//! A small pool of tokio-postgres connections for [`PostgresStore`]
//! (crate::PostgresStore): at most `size` connections, each with its own
//! cache of prepared statements, every one of them opened with the store's
//! schema as its `search_path`.
//!
//! A call takes a permit and a connection ([`Lease`]); dropping the lease,
//! also while unwinding or when the calling future is cancelled, hands the
//! connection back. An open transaction that was neither committed nor
//! rolled back is rolled back by tokio-postgres before the connection's next
//! statement runs. A connection the server closed is dropped instead of
//! returned, and the next call opens a fresh one, so a restarted server or a
//! terminated backend costs one failed call, not the pool.
//!
//! This module must never hand one connection to two calls at once, and
//! never let a connection run a statement outside the store's schema.

use flagnet_core::{CoreError, CoreResult};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};

/// One connection and the statements prepared on it.
pub(crate) struct PooledConnection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

pub(crate) struct ConnectionPool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<PooledConnection>>,
    permits: Semaphore,
    size: usize,
}

impl fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("size", &self.size)
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

/// The idle list guards no invariant a panic could break, so a poisoned
/// lock is still good to use.
fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Maps a PostgreSQL failure to the core error: a lost or refused
/// connection, a serialization failure or deadlock, a lock or statement
/// timeout, a full disk or a server shutting down is `Unavailable` (the
/// caller may retry); anything else is `Internal`.
pub(crate) fn pg_error(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> CoreError {
    move |error| {
        let Some(db_error) = error.as_db_error() else {
            tracing::error!(operation, %error, source = ?std::error::Error::source(&error), "store statement failed");
            let lost = error.is_closed()
                || std::error::Error::source(&error).is_some_and(|source| source.is::<std::io::Error>())
                || error.to_string().starts_with("timeout");
            return if lost {
                CoreError::Unavailable(format!("store connection lost ({operation})"))
            } else {
                CoreError::Internal(format!("store operation {operation} failed: {error}"))
            };
        };
        let code = db_error.code().code();
        tracing::error!(operation, code, message = db_error.message(), "store statement failed");
        let transient = ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class))
            || matches!(code, "55P03" | "25006");
        if transient {
            CoreError::Unavailable(format!("store is busy or unavailable ({operation}): {code}"))
        } else {
            CoreError::Internal(format!(
                "store operation {operation} failed: {code} {}",
                db_error.message()
            ))
        }
    }
}

impl ConnectionPool {
    /// Opens `size` connections with `config` (which already carries the
    /// schema's `search_path`); fails if the first cannot be opened.
    pub(crate) async fn open(config: tokio_postgres::Config, size: usize) -> CoreResult<Self> {
        debug_assert!(size > 0, "a pool needs at least one connection");
        let pool = Self {
            config,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
            size,
        };
        let mut connections = Vec::with_capacity(size);
        for _ in 0..size {
            connections.push(pool.connect("connect").await?);
        }
        *lock_ignoring_poison(&pool.idle) = connections;
        Ok(pool)
    }

    async fn connect(&self, operation: &'static str) -> CoreResult<PooledConnection> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|error| {
            tracing::error!(operation, %error, source = ?std::error::Error::source(&error), "cannot connect to postgres");
            CoreError::Unavailable(format!("cannot connect to the store database: {error}"))
        })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "store database connection ended");
            }
        });
        Ok(PooledConnection {
            client,
            statements: HashMap::new(),
        })
    }

    /// Waits for a permit and hands out a live connection, opening a new one
    /// when the idle one was closed by the server.
    pub(crate) async fn get(&self, operation: &'static str) -> CoreResult<Lease<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CoreError::Unavailable("store is closed".into()))?;
        let idle = lock_ignoring_poison(&self.idle).pop();
        let connection = match idle {
            Some(connection) if !connection.client.is_closed() => connection,
            _ => self.connect(operation).await?,
        };
        Ok(Lease {
            connection: Some(connection),
            pool: self,
            operation,
            _permit: permit,
        })
    }
}

/// A borrowed connection; dropping it puts the connection back unless the
/// server closed it.
pub(crate) struct Lease<'p> {
    connection: Option<PooledConnection>,
    pool: &'p ConnectionPool,
    operation: &'static str,
    _permit: SemaphorePermit<'p>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && !connection.client.is_closed()
        {
            lock_ignoring_poison(&self.pool.idle).push(connection);
        }
    }
}

impl Lease<'_> {
    fn parts(&mut self) -> CoreResult<(&mut Client, &mut HashMap<&'static str, Statement>)> {
        let operation = self.operation;
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| CoreError::Internal(format!("store operation {operation} lost its connection")))?;
        Ok((&mut connection.client, &mut connection.statements))
    }

    /// Runs one statement on its own, in its own implicit transaction (one
    /// snapshot for a read, atomic for a write).
    pub(crate) async fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> CoreResult<Vec<Row>> {
        let operation = self.operation;
        let (client, statements) = self.parts()?;
        let statement = prepared(statements, client, sql, operation).await?;
        client.query(&statement, params).await.map_err(pg_error(operation))
    }

    /// Begins a read-committed transaction, for a write that locks the rows
    /// it reads; it rolls back unless [`Session::commit`] is called.
    pub(crate) async fn begin(&mut self) -> CoreResult<Session<'_>> {
        let operation = self.operation;
        let (client, statements) = self.parts()?;
        let transaction = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(pg_error(operation))?;
        Ok(Session {
            transaction,
            statements,
            operation,
        })
    }
}

/// Prepares `sql` once per connection.
async fn prepared(
    statements: &mut HashMap<&'static str, Statement>,
    client: &Client,
    sql: &'static str,
    operation: &'static str,
) -> CoreResult<Statement> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql).await.map_err(pg_error(operation))?;
    statements.insert(sql, statement.clone());
    Ok(statement)
}

/// One transaction on a leased connection, with its statements prepared
/// once per connection and every failure mapped to the core error.
pub(crate) struct Session<'l> {
    transaction: Transaction<'l>,
    statements: &'l mut HashMap<&'static str, Statement>,
    operation: &'static str,
}

impl Session<'_> {
    async fn statement(&mut self, sql: &'static str) -> CoreResult<Statement> {
        prepared(self.statements, self.transaction.client(), sql, self.operation).await
    }

    pub(crate) async fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> CoreResult<Option<Row>> {
        let statement = self.statement(sql).await?;
        self.transaction
            .query_opt(&statement, params)
            .await
            .map_err(pg_error(self.operation))
    }

    pub(crate) async fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> CoreResult<u64> {
        let statement = self.statement(sql).await?;
        self.transaction
            .execute(&statement, params)
            .await
            .map_err(pg_error(self.operation))
    }

    /// Runs statements that take no parameters and return nothing (a lock).
    pub(crate) async fn batch_execute(&mut self, sql: &'static str) -> CoreResult<()> {
        self.transaction
            .batch_execute(sql)
            .await
            .map_err(pg_error(self.operation))
    }

    pub(crate) async fn commit(self) -> CoreResult<()> {
        self.transaction.commit().await.map_err(pg_error(self.operation))
    }
}
