//! The baseline server: a bare tonic service that answers each call with a
//! payload of the size asked, behind exactly the node's TLS listener
//! ([`flagnet_server::incoming::accept_tls`] with the node's own reloading
//! rustls config, handshake timeout and connection age) and presenting the
//! home node's certificate, so a client reaches it as it reaches the node.
//! What a lookup costs beyond an echo of the same size is flagnet's work.
//!
//! It must never do anything per call but allocate its reply.

use crate::BenchError;
use flagnet_server::NodeConfig;
use flagnet_server::incoming::{ListenerLimits, accept_tls};
use flagnet_server::tls_reload::trust_paths;
use flagnet_trust::events::LogSink;
use flagnet_trust::reload::ReloadingServerConfig;
use prost::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// The `flagnet.bench.v1` package.
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic, missing_debug_implementations)]
    tonic::include_proto!("flagnet.bench.v1");
}

/// The largest reply the server builds.
const MAX_REPLY_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
struct EchoService;

#[tonic::async_trait]
impl pb::echo_server::Echo for EchoService {
    async fn echo(&self, request: Request<pb::EchoRequest>) -> Result<Response<pb::EchoReply>, Status> {
        let reply_bytes = (request.get_ref().reply_bytes as usize).min(MAX_REPLY_BYTES);
        Ok(Response::new(pb::EchoReply {
            payload: vec![0x5a; reply_bytes],
        }))
    }
}

/// A running echo server.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl EchoServer {
    /// Serves on a free loopback port with the TLS setup of the node whose
    /// config this is.
    pub async fn start(config: &NodeConfig) -> Result<Self, BenchError> {
        let tls = Arc::new(
            ReloadingServerConfig::load(trust_paths(config)).map_err(|error| BenchError::setup("echo tls", error))?,
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| BenchError::setup("echo listen", error))?;
        let addr = listener
            .local_addr()
            .map_err(|error| BenchError::setup("echo listen", error))?;
        let limits = ListenerLimits {
            handshake_timeout: config.handshake_timeout(),
            connection_lifetime: config.max_connection_age() + config.max_connection_age_grace(),
        };
        let incoming = accept_tls(listener, tls, limits, Arc::new(LogSink));
        let (stop, stopped) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .max_connection_age(config.max_connection_age())
            .add_service(pb::echo_server::EchoServer::new(EchoService));
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// The request whose encoding is `request_len` bytes and that asks for a
/// reply whose encoding is `reply_len` bytes: the sizes of a lookup.
pub fn sized_request(request_len: usize, reply_len: usize) -> pb::EchoRequest {
    let mut reply_payload = reply_len;
    while reply_payload > 0
        && (pb::EchoReply {
            payload: vec![0; reply_payload],
        })
        .encoded_len()
            > reply_len
    {
        reply_payload -= 1;
    }
    let mut request = pb::EchoRequest {
        payload: Vec::new(),
        reply_bytes: u32::try_from(reply_payload).unwrap_or(u32::MAX),
    };
    while request.encoded_len() < request_len {
        request.payload.push(0xa5);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sized_request_and_its_reply_encode_to_the_lookup_sizes() {
        // a varint length that grows by a byte can skip one size: then the
        // request is one byte longer and the reply one byte shorter
        for (request_len, reply_len) in [(64, 420), (90, 2_000), (130, 127), (300, 128)] {
            let request = sized_request(request_len, reply_len);
            assert!((request_len..=request_len + 1).contains(&request.encoded_len()));
            let reply = pb::EchoReply {
                payload: vec![0; request.reply_bytes as usize],
            };
            assert!(
                (reply_len - 1..=reply_len).contains(&reply.encoded_len()),
                "reply for {reply_len}"
            );
        }
    }
}
