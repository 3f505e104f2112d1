//! Tests over real TLS connections and against the openssl command line,
//! with every certificate made inside the test.

mod handshakes;
mod openssl_cli;
mod reload;
pub(crate) mod support;
