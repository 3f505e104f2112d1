//! The TLS listener: accepts TCP connections on loopback (or the configured
//! address), runs each rustls handshake in its own task under a deadline so a
//! slow client cannot stall the accept loop, and hands tonic a stream of
//! connections that carry the verified peer certificate as connect info.
//!
//! Each handshake takes the server config in use at that moment from the
//! [`ReloadingServerConfig`], so a reload reaches every new connection and
//! no open one. Every refused handshake is reported to the node's
//! [`TrustEventSink`] with the remote address, the reason and, where the
//! verifier saw one, the claimed identity and fingerprint. Each connection
//! is closed at the latest `max_connection_age + max_connection_age_grace`
//! after its handshake (tonic sends GOAWAY at `max_connection_age`; this
//! listener's hard deadline covers a client that keeps a call open past it),
//! so a revoked certificate cannot keep an old connection alive.
//!
//! tonic's `Request::peer_certs()` only works with its own TLS stream type;
//! flagnet carries identity in [`PeerInfo`] instead, which tonic inserts into
//! every request's extensions.

use flagnet_trust::events::{HandshakeRefusal, RefusedHandshake, TrustEvent, TrustEventSink};
use flagnet_trust::reload::ReloadingServerConfig;
use flagnet_trust::tls::{PeerCertificateInfo, peer_identity};
use flagnet_trust::{RefusedCertificate, capture_client_refusal};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// What the transport knows about the caller of a request.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote_addr: SocketAddr,
    /// `None` only if the handshake completed without a client certificate,
    /// which the verifier refuses; a request without it is unauthenticated.
    pub certificate: Option<PeerCertificateInfo>,
}

/// How long handshakes and connections may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// A handshake not done by then is dropped.
    pub handshake_timeout: Duration,
    /// A connection is closed this long after its handshake, whatever it is
    /// doing: the maximum connection age plus its grace.
    pub connection_lifetime: Duration,
}

/// One accepted, handshaken connection.
#[derive(Debug)]
pub struct TlsConnection {
    stream: AgeLimited<TlsStream<TcpStream>>,
    peer: PeerInfo,
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A stream that fails every read and write once its deadline has passed.
/// hyper always has a read pending on a served connection, so the deadline's
/// timer wakes it and the connection ends even when it is otherwise idle.
#[derive(Debug)]
pub struct AgeLimited<S> {
    inner: S,
    deadline: Pin<Box<Sleep>>,
    expired: bool,
}

impl<S> AgeLimited<S> {
    pub fn new(inner: S, lifetime: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + lifetime)),
            expired: false,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        if !self.expired && self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
        }
        if self.expired {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection reached its maximum age",
            ));
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AgeLimited<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AgeLimited<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Err(error) = self.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The stream of connections tonic serves.
pub type Incoming = ReceiverStream<Result<TlsConnection, std::io::Error>>;

/// Accepts on `listener` until the returned stream is dropped.
pub fn accept_tls(
    listener: TcpListener,
    tls: Arc<ReloadingServerConfig>,
    limits: ListenerLimits,
    events: Arc<dyn TrustEventSink>,
) -> Incoming {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, remote_addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = sender.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let sender = sender.clone();
            let events = events.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
                let (result, refused_certificate) = capture_client_refusal(handshake).await;
                let reason = match result {
                    Ok(Ok(stream)) => {
                        let certificate = peer_identity(stream.get_ref().1);
                        let peer = PeerInfo {
                            remote_addr,
                            certificate,
                        };
                        let stream = AgeLimited::new(stream, limits.connection_lifetime);
                        let _ = sender.send(Ok(TlsConnection { stream, peer })).await;
                        return;
                    }
                    Ok(Err(error)) => handshake_refusal(&error, refused_certificate.as_ref()),
                    Err(_) => HandshakeRefusal::TimedOut(limits.handshake_timeout),
                };
                events.record(TrustEvent::HandshakeRefused(RefusedHandshake {
                    at: OffsetDateTime::now_utc(),
                    remote_addr,
                    reason,
                    claimed_identity: refused_certificate
                        .as_ref()
                        .and_then(|refused| refused.claimed_identity.clone()),
                    fingerprint_sha256: refused_certificate.map(|refused| refused.fingerprint_sha256),
                }));
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// Why a handshake failed: the verifier's own finding first, then what
/// rustls or the socket said.
fn handshake_refusal(error: &std::io::Error, refused: Option<&RefusedCertificate>) -> HandshakeRefusal {
    if let Some(refused) = refused {
        return HandshakeRefusal::Certificate(refused.refusal.clone());
    }
    match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => HandshakeRefusal::NoCertificate,
        Some(tls_error) => HandshakeRefusal::Tls(tls_error.to_string()),
        None => HandshakeRefusal::Tls(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_age_limited_stream_passes_data_until_its_deadline_then_fails_an_idle_read() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut limited = AgeLimited::new(near, Duration::from_millis(300));
        far.write_all(b"ping").await.unwrap();
        let mut buffer = [0u8; 4];
        limited.read_exact(&mut buffer).await.unwrap();
        limited.write_all(b"pong").await.unwrap();
        far.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"pong");

        // nothing more arrives: the pending read ends at the deadline
        let started = std::time::Instant::now();
        let error = tokio::time::timeout(Duration::from_secs(5), limited.read(&mut buffer))
            .await
            .expect("the deadline ends the read")
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(
            limited.write_all(b"late").await.unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn a_handshake_without_a_client_certificate_is_told_apart() {
        let error = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::NoCertificatesPresented);
        assert_eq!(handshake_refusal(&error, None), HandshakeRefusal::NoCertificate);
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert_eq!(handshake_refusal(&reset, None).code(), "tls_error");
    }
}
