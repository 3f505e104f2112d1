//! A small pool of tokio-postgres connections for
//! [`PostgresStore`](crate::PostgresStore): at most `size` connections, each with its own
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

/// Whether `error` means the connection itself is gone (closed, broken, or
/// the server ending the session), so it must not be used again.
fn connection_is_lost(error: &tokio_postgres::Error) -> bool {
    if let Some(db_error) = error.as_db_error() {
        let code = db_error.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    error.is_closed() || std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// Maps a PostgreSQL failure to the core error: a lost or refused
/// connection, a serialization failure or deadlock, a lock or statement
/// timeout, a full disk or a server shutting down is `Unavailable` (the
/// caller may retry); anything else is `Internal`.
pub(crate) fn pg_error(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> CoreError {
    move |error| {
        let Some(db_error) = error.as_db_error() else {
            tracing::error!(operation, %error, source = ?std::error::Error::source(&error), "store statement failed");
            let lost = connection_is_lost(&error) || error.to_string().starts_with("timeout");
            return if lost {
                CoreError::Unavailable(format!("store connection lost ({operation})"))
            } else {
                CoreError::Internal(format!("store operation {operation} failed: {error}"))
            };
        };
        let code = db_error.code().code();
        tracing::error!(operation, code, message = db_error.message(), "store statement failed");
        let transient =
            ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class)) || matches!(code, "55P03" | "25006");
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
    /// schema's `search_path`); fails, `Unavailable`, if any cannot be opened.
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
            broken: false,
            pool: self,
            operation,
            _permit: permit,
        })
    }
}

/// A borrowed connection; dropping it puts the connection back unless the
/// server closed it or a statement found it lost. (The closed flag alone is
/// not enough: it can lag the failed statement by a moment.)
pub(crate) struct Lease<'p> {
    connection: Option<PooledConnection>,
    broken: bool,
    pool: &'p ConnectionPool,
    operation: &'static str,
    _permit: SemaphorePermit<'p>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && !self.broken
            && !connection.client.is_closed()
        {
            lock_ignoring_poison(&self.pool.idle).push(connection);
        }
    }
}

impl Lease<'_> {
    fn parts(&mut self) -> CoreResult<Parts<'_>> {
        let operation = self.operation;
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| CoreError::Internal(format!("store operation {operation} lost its connection")))?;
        Ok(Parts {
            client: &mut connection.client,
            statements: &mut connection.statements,
            broken: &mut self.broken,
            operation,
        })
    }

    /// Runs one statement on its own, in its own implicit transaction (one
    /// snapshot for a read, atomic for a write).
    pub(crate) async fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> CoreResult<Vec<Row>> {
        let parts = self.parts()?;
        let result = match prepared(parts.statements, parts.client, sql).await {
            Ok(statement) => parts.client.query(&statement, params).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| failed(parts.broken, parts.operation, error))
    }

    /// Begins a read-committed transaction, for a write that locks the rows
    /// it reads; it rolls back unless [`Session::commit`] is called.
    pub(crate) async fn begin(&mut self) -> CoreResult<Session<'_>> {
        let parts = self.parts()?;
        let started = parts
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await;
        let transaction = match started {
            Ok(transaction) => transaction,
            Err(error) => return Err(failed(parts.broken, parts.operation, error)),
        };
        Ok(Session {
            transaction,
            statements: parts.statements,
            broken: parts.broken,
            operation: parts.operation,
        })
    }
}

/// A lease's connection taken apart, so a transaction can borrow the client
/// while the statement cache and the broken flag stay usable.
struct Parts<'l> {
    client: &'l mut Client,
    statements: &'l mut HashMap<&'static str, Statement>,
    broken: &'l mut bool,
    operation: &'static str,
}

/// Maps a failure, remembering when it means the connection is lost.
fn failed(broken: &mut bool, operation: &'static str, error: tokio_postgres::Error) -> CoreError {
    if connection_is_lost(&error) {
        *broken = true;
    }
    pg_error(operation)(error)
}

/// Prepares `sql` once per connection.
async fn prepared(
    statements: &mut HashMap<&'static str, Statement>,
    client: &Client,
    sql: &'static str,
) -> Result<Statement, tokio_postgres::Error> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql).await?;
    statements.insert(sql, statement.clone());
    Ok(statement)
}

/// One transaction on a leased connection, with its statements prepared
/// once per connection and every failure mapped to the core error.
pub(crate) struct Session<'l> {
    transaction: Transaction<'l>,
    statements: &'l mut HashMap<&'static str, Statement>,
    broken: &'l mut bool,
    operation: &'static str,
}

impl Session<'_> {
    fn failed(&mut self, error: tokio_postgres::Error) -> CoreError {
        failed(self.broken, self.operation, error)
    }

    async fn statement(&mut self, sql: &'static str) -> CoreResult<Statement> {
        match prepared(self.statements, self.transaction.client(), sql).await {
            Ok(statement) => Ok(statement),
            Err(error) => Err(self.failed(error)),
        }
    }

    pub(crate) async fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> CoreResult<Option<Row>> {
        let statement = self.statement(sql).await?;
        let result = self.transaction.query_opt(&statement, params).await;
        result.map_err(|error| self.failed(error))
    }

    pub(crate) async fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> CoreResult<u64> {
        let statement = self.statement(sql).await?;
        let result = self.transaction.execute(&statement, params).await;
        result.map_err(|error| self.failed(error))
    }

    /// Runs statements that take no parameters and return nothing (a lock).
    pub(crate) async fn batch_execute(&mut self, sql: &'static str) -> CoreResult<()> {
        let result = self.transaction.batch_execute(sql).await;
        result.map_err(|error| self.failed(error))
    }

    pub(crate) async fn commit(self) -> CoreResult<()> {
        let Session {
            transaction,
            broken,
            operation,
            ..
        } = self;
        transaction
            .commit()
            .await
            .map_err(|error| failed(broken, operation, error))
    }
}
