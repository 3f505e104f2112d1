//! The gRPC contract of flagnet, generated at build time from `proto/` by
//! protox and tonic-prost-build. Nothing here is written by hand except this
//! module list: domain logic never lives in this crate.

/// The `flagnet.v1` package: messages and the service stubs.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic, missing_debug_implementations)]
    tonic::include_proto!("flagnet.v1");
}

/// The encoded `FileDescriptorSet` of every flagnet proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flagnet_descriptor.bin"));
