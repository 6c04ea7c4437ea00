//! The conformance plugin (word count) in Rust, Python, JavaScript, Go and
//! C: build time, component size and compile time (printed), then a warm
//! call (instance reused) and a call on a fresh instance (instantiate +
//! `initialize` + call) for each, against the same count done natively in
//! Rust in the same run: the Rust plugin's own counting code, compiled
//! natively. At 1 MiB, the Rust plugin alone against that same code: what
//! the sandbox costs the same algorithm on a large input.
//!
//! `cargo bench -p warden --bench languages` — builds the five plugins
//! first, installing their toolchains on first use.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use warden::{ProcessRequest, Warden};
use warden_build::{Builder, Toolchains};

const PLUGINS: [(&str, &str); 5] = [
    ("rust", "word-count"),
    ("python", "word-count-py"),
    ("js", "word-count-js"),
    ("go", "word-count-go"),
    ("c", "word-count-c"),
];

/// The Rust plugin's counting code, compiled natively: the baseline.
#[path = "../../../plugins/word-count/src/count.rs"]
#[allow(dead_code)]
mod count;

/// The Rust plugin's output for `input`, computed natively: what the
/// benchmark times.
fn native_word_count(input: &[u8]) -> String {
    count::count(input).to_json()
}

/// The conformance rule, written apart from any plugin's code: what every
/// plugin's answer is checked against.
fn conformance_rule(input: &[u8]) -> String {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let words = input.split(space).filter(|w| !w.is_empty()).count();
    let lines = input.iter().filter(|b| **b == b'\n').count();
    format!(
        "{{\"bytes\":{},\"lines\":{lines},\"words\":{words}}}",
        input.len()
    )
}

/// About `len` bytes of words and lines.
fn text(len: usize) -> Vec<u8> {
    "lorem ipsum dolor sit amet\n"
        .repeat(len / 27 + 1)
        .into_bytes()
}

/// A copy of the built plugin in `dir` whose manifest asks for a fresh
/// instance per call.
fn fresh_copy(built: &Path, stage: &Path) -> PathBuf {
    let name = built.file_name().expect("plugin dir name");
    let dest = stage.join(name);
    std::fs::create_dir_all(&dest).expect("stage");
    for entry in std::fs::read_dir(built).expect("built dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dest.join(entry.file_name())).expect("copy");
    }
    let file = dest.join("plugin.toml");
    let mut manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(&file).expect("manifest")).expect("TOML");
    let limits = manifest
        .entry("limits")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(limits) = limits {
        limits.insert("instance-reuse".into(), toml::Value::Boolean(false));
    }
    std::fs::write(&file, toml::to_string(&manifest).expect("TOML")).expect("manifest");
    dest
}

fn benches(c: &mut Criterion) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = repo.join("target/bench-plugins/languages");
    let stage = repo.join("target/bench-plugins/languages-fresh");
    let builder =
        Builder::new().toolchains(Toolchains::at(repo.join("target/tmp/guest-toolchains")));
    let input = text(4096);
    let expected = conformance_rule(&input);
    assert_eq!(native_word_count(&input), expected, "the native baseline");

    println!("| language | build (s) | component (KiB) | compile (ms) |");
    println!("|---|---|---|---|");
    let mut loaded = Vec::new();
    for (language, name) in PLUGINS {
        let built = builder
            .build(&repo.join("plugins").join(name), None, &out)
            .unwrap_or_else(|e| panic!("building {name}: {e}"));
        let host = Warden::new().expect("host");
        let started = Instant::now();
        let warm = host.load_blocking(&built.dir).expect("load");
        let compile = started.elapsed();
        // One name loads once per host: the fresh-instance copy gets its own.
        let fresh_host = Warden::new().expect("host");
        let fresh = fresh_host
            .load_blocking(fresh_copy(&built.dir, &stage))
            .expect("load fresh copy");
        let response = warm
            .process_blocking(ProcessRequest::new(input.clone()))
            .expect("call");
        assert_eq!(
            String::from_utf8_lossy(&response.output),
            expected,
            "{name}"
        );
        println!(
            "| {language} | {:.1} | {} | {:.0} |",
            built.duration.as_secs_f64(),
            built.size.div_ceil(1024),
            compile.as_secs_f64() * 1e3
        );
        loaded.push((language, [host, fresh_host], warm, fresh));
    }

    let mut group = c.benchmark_group("languages/word-count-4KiB");
    group.sample_size(30);
    group.bench_function("native-rust", |b| {
        b.iter(|| native_word_count(std::hint::black_box(&input)))
    });
    for (language, _hosts, warm, fresh) in &loaded {
        group.bench_with_input(
            BenchmarkId::new("warm-call", language),
            &input,
            |b, input| {
                b.iter(|| {
                    warm.process_blocking(ProcessRequest::new(input.clone()))
                        .expect("call")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("fresh-instance", language),
            &input,
            |b, input| {
                b.iter(|| {
                    fresh
                        .process_blocking(ProcessRequest::new(input.clone()))
                        .expect("call")
                })
            },
        );
    }
    group.finish();

    let large = text(1 << 20);
    let mut group = c.benchmark_group("languages/word-count-1MiB");
    group.sample_size(30);
    group.bench_function("native-rust", |b| {
        b.iter(|| native_word_count(std::hint::black_box(&large)))
    });
    if let Some((_, _, warm, _)) = loaded.iter().find(|(language, ..)| *language == "rust") {
        let response = warm
            .process_blocking(ProcessRequest::new(large.clone()))
            .expect("call");
        assert_eq!(
            String::from_utf8_lossy(&response.output),
            conformance_rule(&large)
        );
        group.bench_function("warm-call/rust", |b| {
            b.iter(|| {
                warm.process_blocking(ProcessRequest::new(large.clone()))
                    .expect("call")
            })
        });
    }
    group.finish();
}

criterion_group!(languages, benches);
criterion_main!(languages);
