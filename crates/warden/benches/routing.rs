//! The cost of finding the build a call goes to: a warm 64-byte `process`
//! through a `Plugin` handle (the baseline), by name through the host, by
//! name with a canary running (routing key hashed), and by semver range.
//!
//! `cargo bench -p warden --bench routing`

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use warden::{ProcessRequest, Warden};

mod support;

/// A copy of the built plugin whose manifest says `version`.
fn versioned(built: &Path, root: &Path, version: &str) -> PathBuf {
    let dir = root.join(version);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(
        built.join("text-transform.wasm"),
        dir.join("text-transform.wasm"),
    )
    .expect("wasm");
    let manifest = std::fs::read_to_string(built.join("plugin.toml")).expect("manifest");
    let manifest = manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
    std::fs::write(dir.join("plugin.toml"), manifest).expect("manifest");
    dir
}

fn request() -> ProcessRequest {
    ProcessRequest::new("lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsu")
        .option("op", "upper")
        .routing_key("user-1234")
}

fn routing(c: &mut Criterion) {
    let built = support::built_plugin("text-transform");
    let root = tempfile::tempdir().expect("tmp");
    let plain = Warden::new().expect("host");
    let handle = plain.load_blocking(&built).expect("load");
    let canaried = Warden::new().expect("host");
    for v in ["1.0.0", "1.1.0"] {
        canaried
            .deploy_blocking(versioned(&built, root.path(), v))
            .expect("deploy");
    }
    canaried
        .canary("text-transform", "1.1.0", 10.0)
        .expect("canary");

    let mut group = c.benchmark_group("routing");
    group.bench_function("plugin-handle", |b| {
        b.iter(|| handle.process_blocking(request()).expect("call"))
    });
    group.bench_function("by-name", |b| {
        b.iter(|| {
            plain
                .process_blocking("text-transform", request())
                .expect("call")
        })
    });
    group.bench_function("by-name-canary-keyed", |b| {
        b.iter(|| {
            canaried
                .process_blocking("text-transform", request())
                .expect("call")
        })
    });
    group.bench_function("by-range", |b| {
        b.iter(|| {
            canaried
                .process_blocking("text-transform@^1.0", request())
                .expect("call")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = routing
}
criterion_main!(benches);
