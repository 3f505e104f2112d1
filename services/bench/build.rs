//! Compiles `proto/echo.proto` (the baseline's service) with protox, as
//! `flagnet-proto` does, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    let file = proto_dir.join("echo.proto");
    // compile_fds never sees the .proto paths, so tell cargo ourselves
    println!("cargo:rerun-if-changed={}", file.display());
    let descriptor_set = protox::compile([&file], [&proto_dir])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptor_set)?;
    Ok(())
}
