//! The TLS listener: accepts TCP connections on loopback (or the configured
//! address), runs each rustls handshake in its own task under a deadline so a
//! slow client cannot stall the accept loop, and hands tonic a stream of
//! connections that carry the verified peer certificate as connect info.
//!
//! tonic's `Request::peer_certs()` only works with its own TLS stream type;
//! flagnet carries identity in [`PeerInfo`] instead, which tonic inserts into
//! every request's extensions.

use flagnet_trust::tls::{PeerCertificateInfo, peer_identity};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
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

/// One accepted, handshaken connection.
#[derive(Debug)]
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
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

/// The stream of connections tonic serves.
pub type Incoming = ReceiverStream<Result<TlsConnection, std::io::Error>>;

/// Accepts on `listener` until the returned stream is dropped.
pub fn accept_tls(listener: TcpListener, tls: Arc<rustls::ServerConfig>, handshake_timeout: Duration) -> Incoming {
    let (sender, receiver) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls);
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
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let certificate = peer_identity(stream.get_ref().1);
                        let peer = PeerInfo {
                            remote_addr,
                            certificate,
                        };
                        let _ = sender.send(Ok(TlsConnection { stream, peer })).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(remote = %remote_addr, %error, event = "handshake_refused", "tls handshake refused");
                    }
                    Err(_) => {
                        tracing::warn!(remote = %remote_addr, timeout_ms = handshake_timeout.as_millis() as u64, event = "handshake_timeout", "tls handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
