//! A small pool of blocking SQLite connections. Each store call takes a
//! permit, borrows one connection and runs its statements on tokio's blocking
//! threads, so a statement costs microseconds and never stalls the async
//! workers.
//!
//! Writes also take an in-process write gate: SQLite has one writer at a time
//! anyway, and waiting on a mutex is cheaper and fairer than sleeping in
//! SQLite's busy handler. `busy_timeout` still covers other processes.
//!
//! This module must never hand one connection to two calls at once, and
//! never lose a connection when a call fails or panics.

use flagnet_core::{CoreError, CoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections not in use, behind a mutex that is held only to push or pop.
type IdleConnections = Arc<Mutex<Vec<Connection>>>;

pub(crate) struct ConnectionPool {
    idle: IdleConnections,
    permits: Arc<Semaphore>,
    write_gate: Arc<Mutex<()>>,
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

/// A borrowed connection; dropping it (also while unwinding) puts the
/// connection back before the permit is released.
struct Lease {
    connection: Option<Connection>,
    idle: IdleConnections,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            lock_ignoring_poison(&self.idle).push(connection);
        }
    }
}

/// The pool's mutexes guard no invariant a panic could break (a `Vec` of
/// connections, a unit), so a poisoned lock is still good to use.
fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ConnectionPool {
    pub(crate) fn new(connections: Vec<Connection>) -> Self {
        let size = connections.len();
        debug_assert!(size > 0, "a pool needs at least one connection");
        Self {
            idle: Arc::new(Mutex::new(connections)),
            permits: Arc::new(Semaphore::new(size)),
            write_gate: Arc::new(Mutex::new(())),
            size,
        }
    }

    /// Runs `work` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T, F>(&self, operation: &'static str, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> CoreResult<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| CoreError::Unavailable("store is closed".into()))?;
        let idle = Arc::clone(&self.idle);
        let task = tokio::task::spawn_blocking(move || {
            let connection = lock_ignoring_poison(&idle).pop();
            let Some(connection) = connection else {
                // a permit is only ever held with a connection out, so this
                // would be a bookkeeping bug, not a busy pool
                return Err(CoreError::Internal(format!(
                    "store operation {operation} found no idle connection"
                )));
            };
            let mut lease = Lease {
                connection: Some(connection),
                idle,
                _permit: permit,
            };
            let Some(connection) = lease.connection.as_mut() else {
                return Err(CoreError::Internal(format!(
                    "store operation {operation} lost its connection"
                )));
            };
            work(connection)
        });
        match task.await {
            Ok(result) => result,
            Err(join_error) => {
                tracing::error!(operation, error = %join_error, "store operation panicked or was cancelled");
                Err(CoreError::Internal(format!(
                    "store operation {operation} did not complete"
                )))
            }
        }
    }

    /// Runs `work` in one immediate (write-locking) transaction and commits
    /// it when `work` succeeds; any error rolls everything back.
    pub(crate) async fn write<T, F>(&self, operation: &'static str, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> CoreResult<T> + Send + 'static,
    {
        let write_gate = Arc::clone(&self.write_gate);
        self.run(operation, move |connection| {
            let _gate = lock_ignoring_poison(&write_gate);
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(crate::sqlite::sql_error(operation))?;
            let value = work(&transaction)?;
            transaction.commit().map_err(crate::sqlite::sql_error(operation))?;
            Ok(value)
        })
        .await
    }

    /// Runs `work` in one read transaction, so every statement sees the same
    /// snapshot.
    pub(crate) async fn read<T, F>(&self, operation: &'static str, work: F) -> CoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> CoreResult<T> + Send + 'static,
    {
        self.run(operation, move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(crate::sqlite::sql_error(operation))?;
            let value = work(&transaction)?;
            // a read transaction has nothing to keep: ending it is all
            transaction.rollback().map_err(crate::sqlite::sql_error(operation))?;
            Ok(value)
        })
        .await
    }
}
