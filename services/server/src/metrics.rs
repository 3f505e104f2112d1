//! Metrics in Prometheus text format, served on a separate admin listener
//! (127.0.0.1 by default, plain HTTP, `GET /metrics`): calls by action and
//! gRPC code, lookup latency, decisions by outcome, audit records pending and
//! time to durability, audit commits, peer call outcomes and breaker states,
//! and certificate expiry. Each node has its own registry, so several nodes
//! in one process (the sandbox) do not mix. No label ever holds subject data.

use crate::breaker::BreakerState;
use crate::peers::PeerSet;
use flagnet_audit::AuditLog;
use flagnet_trust::reload::ReloadingServerConfig;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Latency buckets in seconds: a lookup should take milliseconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0, 5.0,
];

/// One node's metrics.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub lookup_seconds: Histogram,
    pub decisions: IntCounterVec,
    pub audit_pending: IntGauge,
    pub audit_durable_seconds: Histogram,
    audit_totals: IntGaugeVec,
    pub peer_calls: IntCounterVec,
    breaker: IntGaugeVec,
    certificate_not_after: IntGaugeVec,
}

fn registered<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, collector: T) -> T {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

impl NodeMetrics {
    pub fn new(agency: &str) -> Arc<Self> {
        let registry = Registry::new_custom(
            Some("flagnet".into()),
            Some([("agency".to_owned(), agency.to_owned())].into()),
        )
        .expect("a valid registry prefix");
        let requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("requests_total", "calls answered, by audit action and gRPC code"),
                &["action", "code"],
            )
            .expect("metric"),
        );
        let lookup_seconds = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new("lookup_duration_seconds", "lookup latency at this node, peers included")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("metric"),
        );
        let decisions = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "decisions_total",
                    "flag decisions: disclosed, override, or hidden (no presence)",
                ),
                &["outcome"],
            )
            .expect("metric"),
        );
        let audit_pending = registered(
            &registry,
            IntGauge::new("audit_pending_records", "audit records waiting to be made durable").expect("metric"),
        );
        let audit_durable_seconds = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "audit_durable_seconds",
                    "time from append to durable acknowledgement (queue and commit)",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("metric"),
        );
        let audit_totals = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("audit_log", "audit log counters since start, and the tree size"),
                &["counter"],
            )
            .expect("metric"),
        );
        let peer_calls = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("peer_calls_total", "federated calls to peers by outcome"),
                &["peer", "state"],
            )
            .expect("metric"),
        );
        let breaker = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("peer_breaker", "1 for the breaker state each peer is in"),
                &["peer", "state"],
            )
            .expect("metric"),
        );
        let certificate_not_after = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "certificate_not_after_seconds",
                    "unix time when a certificate in use expires",
                ),
                &["certificate"],
            )
            .expect("metric"),
        );
        Arc::new(Self {
            registry,
            requests,
            lookup_seconds,
            decisions,
            audit_pending,
            audit_durable_seconds,
            audit_totals,
            peer_calls,
            breaker,
            certificate_not_after,
        })
    }

    /// The text exposition, with gauges read from their sources now.
    pub fn render(&self, sources: &MetricSources) -> String {
        if let Some(log) = &sources.audit_log {
            let stats = log.stats();
            for (name, value) in [
                ("appended", stats.appended),
                ("commits", stats.commits),
                ("failed_commits", stats.failed_commits),
                ("refused_appends", stats.refused_appends),
                ("checkpoints", stats.checkpoints),
                ("largest_batch", stats.largest_batch),
                ("tree_size", stats.tree_size),
            ] {
                self.audit_totals
                    .with_label_values(&[name])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        for peer in sources.peers.peers() {
            let current = peer.breaker_state();
            for state in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                self.breaker
                    .with_label_values(&[peer.agency.as_str(), state.as_str()])
                    .set(i64::from(state == current));
            }
        }
        if let Some(trust) = &sources.trust {
            let status = trust.status();
            self.certificate_not_after
                .with_label_values(&["node"])
                .set(status.active.node_not_after.unix_timestamp());
        }
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "metrics could not be encoded");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// What the scrape reads besides the counters.
#[derive(Debug, Clone)]
pub struct MetricSources {
    pub audit_log: Option<Arc<AuditLog>>,
    pub peers: Arc<PeerSet>,
    pub trust: Option<Arc<ReloadingServerConfig>>,
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub fn serve_admin(
    listener: TcpListener,
    metrics: Arc<NodeMetrics>,
    sources: MetricSources,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            let sources = sources.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    let sources = sources.clone();
                    async move {
                        let response = if request.method() == Method::GET && request.uri().path() == "/metrics" {
                            Response::builder()
                                .header("content-type", "text/plain; version=0.0.4")
                                .body(Full::new(Bytes::from(metrics.render(&sources))))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"not found\n")))
                        };
                        response.map_err(|error| std::io::Error::other(error.to_string()))
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "admin connection ended");
                }
            });
        }
    })
}
