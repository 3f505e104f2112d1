//! Client channels over the project's own rustls config: a tonic `Channel`
//! whose connector dials TCP and runs the TLS handshake with an
//! [`AgencyServerVerifier`](crate::verifier::AgencyServerVerifier) config, so the server is checked
//! as a node of the expected agency. One channel is meant to live long: HTTP/2
//! multiplexes every call over one handshake.

use crate::client::ClientError;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long dialling and the handshake may take together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `host:port` of an endpoint written as `https://host:port` or `host:port`.
pub fn authority_of(endpoint: &str) -> Result<String, ClientError> {
    let without_scheme = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint);
    let authority = without_scheme.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        return Err(ClientError::Endpoint(format!("{endpoint:?} is not host:port")));
    }
    Ok(authority.to_owned())
}

fn endpoint_for(authority: &str) -> Result<Endpoint, ClientError> {
    Endpoint::from_shared(format!("http://{authority}"))
        .map(|endpoint| {
            endpoint
                .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
        })
        .map_err(|error| ClientError::Endpoint(error.to_string()))
}

fn connector(
    authority: String,
    config: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    Error = std::io::Error,
    Future = impl Future<Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>> + Send,
> + Clone
+ Send
+ 'static {
    let tls = TlsConnector::from(config);
    tower::service_fn(move |_uri: Uri| {
        let tls = tls.clone();
        let authority = authority.clone();
        async move {
            let host = authority.rsplit_once(':').map(|(host, _)| host).unwrap_or(&authority);
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let server_name = ServerName::try_from(host)
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
            let tcp = TcpStream::connect(&authority).await?;
            tcp.set_nodelay(true)?;
            let stream = tls.connect(server_name, tcp).await?;
            Ok(TokioIo::new(stream))
        }
    })
}

/// Connects now; the first handshake happens here.
pub async fn connect(endpoint: &str, config: Arc<rustls::ClientConfig>) -> Result<Channel, ClientError> {
    let authority = authority_of(endpoint)?;
    endpoint_for(&authority)?
        .connect_with_connector(connector(authority.clone(), config))
        .await
        .map_err(|error| ClientError::Connect {
            endpoint: authority,
            reason: crate::channel::describe_transport_error(&error),
        })
}

/// Connects on first use, and reconnects after failures.
pub fn connect_lazy(endpoint: &str, config: Arc<rustls::ClientConfig>) -> Result<Channel, ClientError> {
    let authority = authority_of(endpoint)?;
    Ok(endpoint_for(&authority)?.connect_with_connector_lazy(connector(authority, config)))
}

/// The whole chain of an error's sources, so a refused certificate reads as
/// such instead of "transport error".
pub fn describe_transport_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
}
