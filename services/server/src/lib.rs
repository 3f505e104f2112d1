//! The flagnet node as a library: configuration, the TLS listener, the call
//! chain (authenticate → authorise → handle), the FlagIndex operations and
//! their gRPC adapter, proto conversions, and the single map from domain
//! errors to gRPC statuses. The `flagnet-node` binary and the sandbox start
//! nodes through [`node::start`].
#![forbid(unsafe_code)]

pub mod audit_service;
pub mod audit_trail;
pub mod breaker;
pub mod caller;
pub mod config;
pub mod convert;
pub mod encounters;
pub mod federation;
pub mod flag_index;
pub mod grpc;
pub mod incoming;
pub mod metrics;
pub mod node;
pub mod peers;
pub mod policy_admin;
pub mod status;
pub mod tls_reload;

pub use config::NodeConfig;
pub use node::{NodeParts, RunningNode, start};
