//! A black-holed peer: a listener on a stopped peer's address that accepts
//! every connection and then never reads or writes, as a host behind a
//! dropped route or a hung process would. A TLS handshake to it never
//! finishes, so only the caller's deadline ends the call.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Accepting and holding connections until dropped.
#[derive(Debug)]
pub struct BlackHole {
    task: JoinHandle<()>,
}

impl BlackHole {
    /// Binds `addr` (retrying for a few seconds while the stopped peer's
    /// socket goes away) and starts swallowing connections.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    tracing::debug!(%error, %addr, "black hole waits for the address");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error),
            }
        };
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Ok(Self { task })
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        // the listener and every held connection go with the task
        self.task.abort();
    }
}
