//! Compiles `proto/` with protox (no system `protoc`) into the tonic client and server code,
//! and writes the descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    // googleapis' rich error model, field behaviours and calendar types, unchanged
    // (third_party/googleapis/README.md): served through reflection, so that reflection
    // clients can decode error details; the Rust types of google.rpc come from tonic-types.
    let third_party = PathBuf::from("third_party/googleapis");
    let googleapis: Vec<PathBuf> = [
        "rpc/status",
        "rpc/code",
        "rpc/error_details",
        "api/field_behavior",
        "type/date",
        "type/timeofday",
        "type/dayofweek",
    ]
    .iter()
    .map(|name| third_party.join(format!("google/{name}.proto")))
    .collect();
    let mut protos: Vec<PathBuf> = std::fs::read_dir(root.join("clientele/v1"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    protos.sort();

    // A new file in the directory must rebuild too, not only a changed one.
    println!("cargo:rerun-if-changed=proto/clientele/v1");
    for proto in &googleapis {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    // The PostgreSQL variants of the integration tests run only against a server the tests may
    // create databases on; without one they are compiled as ignored, so that the run's summary
    // says how many did not run instead of counting them as passed.
    println!("cargo::rustc-check-cfg=cfg(clientele_postgres_tests)");
    println!("cargo::rerun-if-env-changed=CLIENTELE_TEST_POSTGRES_URL");
    if std::env::var_os("CLIENTELE_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=clientele_postgres_tests");
    }

    let mut compiler = protox::Compiler::new([&root, &third_party])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(protos.iter().chain(&googleapis))?;
    // Encoded by protox itself, the set keeps the options' extensions (field behaviours),
    // which prost_types' descriptors drop: reflection clients and the tests read them.
    let encoded = compiler.encode_file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("clientele_descriptor.bin"), &encoded)?;
    let descriptors = prost_types::FileDescriptorSet::decode(encoded.as_slice())?;

    // Messages know their full names, by which the codec finds their descriptors to check
    // text fields for NUL characters (src/proto/codec.rs).
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::proto::codec::Codec")
        .extern_path(".google.rpc", "::tonic_types")
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
