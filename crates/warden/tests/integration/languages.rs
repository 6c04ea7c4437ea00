//! Plugins in Python, JavaScript, Go and C: built from source by the
//! library's build step (installing each toolchain on first use), loaded
//! into the same host and sandbox as Rust plugins, and held to the same
//! outputs: the word-count plugin in five languages answers every request
//! byte for byte alike.

use warden_testkit as common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use warden::{Error, Grants, ProcessRequest, Warden};
use warden_build::{Builder, Language, Toolchains};

/// The word-count plugin in each language; the Rust one is the reference.
const WORD_COUNTS: [(&str, Language); 5] = [
    ("word-count", Language::Rust),
    ("word-count-py", Language::Python),
    ("word-count-js", Language::JavaScript),
    ("word-count-go", Language::Go),
    ("word-count-c", Language::C),
];

/// The other examples, one per language feature they show.
const EXAMPLES: [&str; 5] = [
    "csv-summary",
    "template-render",
    "json-validate",
    "checksum",
    "order-audit-go",
];

/// The link-time composition example: a Python analyzer and a Rust one,
/// both calling the Rust decoder through a link.
const LINKED: [&str; 3] = [
    "linking/image-decoder",
    "linking/image-stats",
    "linking/image-analyzer-py",
];

/// Where guest toolchains are installed for tests: shared by every test
/// binary of the workspace (installs are locked), kept between runs.
pub fn test_toolchains() -> Toolchains {
    Toolchains::at(Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-toolchains"))
}

/// Every language example, built once per test binary into one directory.
/// Always rebuilt: staleness only looks at a plugin's own sources, and the
/// build also depends on Warden (the Go runtime package, the pinned tools).
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("languages");
        let builder = Builder::new().toolchains(test_toolchains());
        let names = WORD_COUNTS
            .iter()
            .map(|(name, _)| *name)
            .chain(EXAMPLES)
            .chain(LINKED);
        for name in names {
            let source = common::repo().join("plugins").join(name);
            if let Err(e) = builder.build(&source, None, &out) {
                panic!("building {name}: {e}");
            }
        }
        out
    })
}

/// A host with the named examples loaded. Compiled code is cached on disk
/// for every test here: a Python or JavaScript component holds a whole
/// interpreter and takes seconds to compile.
fn host_with(names: &[&str]) -> Warden {
    host_granting(names, Grants::new())
}

/// [`host_with`], with `grants`.
fn host_granting(names: &[&str], grants: Grants) -> Warden {
    let host = Warden::builder()
        .cache_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("languages-cache"))
        .grants(grants)
        .build()
        .expect("host");
    for name in names {
        host.load_blocking(built().join(name))
            .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    }
    host
}

fn output(host: &Warden, plugin: &str, request: ProcessRequest) -> (String, String, u64) {
    let response = host
        .process_blocking(plugin, request)
        .unwrap_or_else(|e| panic!("{plugin}: {e}"));
    (
        String::from_utf8(response.output).expect("UTF-8 output"),
        response.content_type,
        response.items_processed,
    )
}

/// The conformance rule, computed here independently of every plugin.
fn expected_word_count(input: &[u8]) -> String {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let words = input.split(space).filter(|word| !word.is_empty()).count();
    let lines = input.iter().filter(|b| **b == b'\n').count();
    format!(
        "{{\"bytes\":{},\"lines\":{lines},\"words\":{words}}}",
        input.len()
    )
}

#[test]
fn word_count_answers_alike_in_five_languages() {
    let names: Vec<&str> = WORD_COUNTS.iter().map(|(name, _)| *name).collect();
    let host = host_with(&names);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let inputs: Vec<Vec<u8>> = vec![
        b"hello  world\nfoo\tbar \n".to_vec(),
        Vec::new(),
        b"  \t\n\r\x0b\x0c \n".to_vec(),
        "naïve café — 東京 ok\n".as_bytes().to_vec(),
        b"a\x0bb\x0cc\x85d\xa0e\x00f\xff".to_vec(),
        b"no final newline".to_vec(),
        big,
    ];
    for input in &inputs {
        let expected = expected_word_count(input);
        let words: u64 = expected
            .rsplit(':')
            .next()
            .and_then(|w| w.trim_end_matches('}').parse().ok())
            .expect("word count");
        for name in &names {
            let (out, content_type, items) =
                output(&host, name, ProcessRequest::new(input.clone()));
            assert_eq!(out, expected, "{name} on {} bytes", input.len());
            assert_eq!(content_type, "application/json", "{name}");
            assert_eq!(items, words, "{name}");
        }
        let valid = std::str::from_utf8(input).is_ok();
        for name in &names {
            let plugin = host.get(name).expect("loaded");
            let answer = plugin.validate_blocking(input.clone()).expect("validate");
            assert_eq!(answer, valid, "{name} validate on {} bytes", input.len());
        }
    }
}

#[test]
fn language_is_detected_from_the_source() {
    for (name, language) in WORD_COUNTS {
        let source = common::repo().join("plugins").join(name);
        assert_eq!(Language::detect(&source).expect(name), language, "{name}");
    }
}

#[test]
fn python_csv_summary_reads_config_and_options() {
    let host = host_with(&["csv-summary"]);
    let csv = "city,population,area\nOslo,709000,454\nBergen,291000,465\nOslo,,\n";
    let (out, content_type, rows) = output(&host, "csv-summary", ProcessRequest::new(csv));
    assert_eq!(content_type, "application/json");
    assert_eq!(rows, 3);
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(summary["rows"], 3);
    let columns = summary["columns"].as_array().expect("columns");
    assert_eq!(columns[0]["name"], "city");
    assert_eq!(columns[0]["numeric"], false);
    assert_eq!(columns[0]["distinct"], 2);
    assert_eq!(columns[1]["non_empty"], 2);
    assert_eq!(columns[1]["min"], 291000.0);
    assert_eq!(columns[1]["max"], 709000.0);
    assert_eq!(columns[1]["mean"], 500000.0);

    // The option overrides the manifest's `delimiter` config.
    let (out, _, _) = output(
        &host,
        "csv-summary",
        ProcessRequest::new("a;b\n1;2\n").option("delimiter", ";"),
    );
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(summary["columns"].as_array().map(Vec::len), Some(2));

    let ragged = host.process_blocking("csv-summary", ProcessRequest::new("a,b\n1,2,3\n"));
    let Err(Error::Plugin { error, .. }) = ragged else {
        panic!("a ragged row must be invalid input: {ragged:?}");
    };
    assert!(
        matches!(error, warden::PluginError::InvalidInput(_)),
        "{error:?}"
    );
}

#[test]
fn javascript_template_render_fills_and_escapes() {
    let host = host_with(&["template-render"]);
    let (out, content_type, _) = output(
        &host,
        "template-render",
        ProcessRequest::new("Hello {{name}}, {{{raw}}}!")
            .option("name", "<Ann>")
            .option("raw", "<b>")
            .option("html", "true"),
    );
    assert_eq!(out, "Hello &lt;Ann&gt;, <b>!");
    assert_eq!(content_type, "text/html");

    let json = r#"{"template":"{{#items}}[{{name}}]{{/items}}","data":{"items":[{"name":"a"},{"name":"b"}]}}"#;
    let (out, _, _) = output(
        &host,
        "template-render",
        ProcessRequest::new(json).content_type("application/json"),
    );
    assert_eq!(out, "[a][b]");

    let missing = host.process_blocking("template-render", ProcessRequest::new("{{who}}"));
    match missing {
        Err(Error::Plugin {
            error: warden::PluginError::InvalidInput(message),
            ..
        }) => assert!(message.contains("who"), "{message}"),
        other => panic!("a missing variable must be invalid input: {other:?}"),
    }
}

#[test]
fn go_json_validate_reports_each_violation() {
    let host = host_with(&["json-validate"]);
    let schema = r#"{"required":["id","name"],"properties":{"id":{"type":"integer","minimum":1},"name":{"type":"string","maxLength":5}},"additionalProperties":false}"#;
    let (out, content_type, _) = output(
        &host,
        "json-validate",
        ProcessRequest::new(r#"{"id":1,"name":"Ann"}"#).option("schema", schema),
    );
    assert_eq!(content_type, "application/json");
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(verdict["valid"], true, "{out}");

    let (out, _, _) = output(
        &host,
        "json-validate",
        ProcessRequest::new(r#"{"id":0,"name":"Annabelle","extra":true}"#).option("schema", schema),
    );
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(verdict["valid"], false);
    let paths: Vec<&str> = verdict["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    for path in ["/extra", "/id", "/name"] {
        assert!(paths.contains(&path), "{path} missing from {out}");
    }

    let broken = host.process_blocking(
        "json-validate",
        ProcessRequest::new("{not json").option("schema", schema),
    );
    assert!(
        matches!(
            broken,
            Err(Error::Plugin {
                error: warden::PluginError::InvalidInput(_),
                ..
            })
        ),
        "{broken:?}"
    );
}

#[test]
fn c_checksum_matches_known_values() {
    let host = host_with(&["checksum"]);
    // CRC-32 (zlib) and FNV-1a of "The quick brown fox jumps over the lazy dog".
    let (out, _, items) = output(
        &host,
        "checksum",
        ProcessRequest::new("The quick brown fox jumps over the lazy dog"),
    );
    let sums: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(sums["crc32"], "414fa339");
    assert_eq!(sums["fnv1a32"], "048fff90");
    assert_eq!(sums["fnv1a64"], "f3f9b7f5e7e47110");
    assert_eq!(items, 43);

    let (out, _, _) = output(
        &host,
        "checksum",
        ProcessRequest::new("").option("algorithm", "crc32"),
    );
    let sums: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(sums, serde_json::json!({"crc32": "00000000"}));

    let unknown = host.process_blocking(
        "checksum",
        ProcessRequest::new("x").option("algorithm", "md5"),
    );
    assert!(
        matches!(
            unknown,
            Err(Error::Plugin {
                error: warden::PluginError::InvalidInput(_),
                ..
            })
        ),
        "{unknown:?}"
    );
}

#[test]
fn language_plugins_live_in_the_same_sandbox() {
    // A Python interpreter needs ~12 MiB of linear memory: under an 8 MiB
    // limit the plugin is refused when its first instance is made, and the
    // host stays up for the others.
    let staged = tempfile::tempdir().expect("temp dir");
    let dir = staged.path().join("word-count-py");
    std::fs::create_dir_all(&dir).expect("stage");
    let built_dir = built().join("word-count-py");
    std::fs::copy(
        built_dir.join("word-count-py.wasm"),
        dir.join("word-count-py.wasm"),
    )
    .expect("component");
    let manifest = std::fs::read_to_string(built_dir.join("plugin.toml")).expect("manifest");
    let mut manifest: toml::Table = toml::from_str(&manifest).expect("TOML");
    manifest["limits"]["memory-mb"] = toml::Value::Integer(8);
    std::fs::write(
        dir.join("plugin.toml"),
        toml::to_string(&manifest).expect("TOML"),
    )
    .expect("manifest");

    let host = host_with(&["word-count-c"]);
    let refused = host
        .load_blocking(&dir)
        .and_then(|_| host.process_blocking("word-count-py", ProcessRequest::new("a b")));
    let message = refused
        .expect_err("8 MiB is too little for Python")
        .to_string();
    assert!(
        message.contains("word-count-py") && message.contains("memory"),
        "{message}"
    );
    let (out, _, _) = output(&host, "word-count-c", ProcessRequest::new("a b"));
    assert_eq!(out, expected_word_count(b"a b"));
}

#[test]
fn a_go_plugin_survives_many_calls_on_one_instance() {
    // Go's collector must never run inside `cabi_realloc`, where the
    // component model forbids the clock and poll imports it uses: the
    // runtime package Warden ships collects between calls instead. Enough
    // garbage for many collections, on one reused instance.
    let host = host_with(&["word-count-go"]);
    let input = "go gopher\n".repeat(410).into_bytes();
    let expected = expected_word_count(&input);
    for call in 0..50_000 {
        let (out, _, _) = output(&host, "word-count-go", ProcessRequest::new(input.clone()));
        assert_eq!(out, expected, "call {call}");
    }
}

#[test]
fn a_python_plugin_calls_a_rust_plugin_through_a_link() {
    use image::{ImageFormat, Rgb, RgbImage};
    let grants = Grants::new().grant("link:image-decoder").expect("grant");
    let host = host_granting(
        &["image-decoder", "image-analyzer-py", "image-stats"],
        grants,
    );
    let encode = |width: u32, height: u32, format: ImageFormat| {
        let image = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 16) as u8, (y * 32) as u8, ((x + y) * 8) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encode");
        out.into_inner()
    };
    let images = [
        encode(16, 8, ImageFormat::Png),
        encode(1, 1, ImageFormat::Png),
        encode(24, 16, ImageFormat::Jpeg),
    ];
    for image in &images {
        let request = || ProcessRequest::new(image.clone());
        let rust = output(&host, "image-stats", request());
        let python = output(&host, "image-analyzer-py", request());
        assert_eq!(python, rust, "the Python analyzer and the Rust one agree");
        assert!(rust.0.starts_with(r#"{"width":"#), "{}", rust.0);
    }
    let (expected, _, pixels) =
        output(&host, "image-stats", ProcessRequest::new(images[0].clone()));
    assert_eq!(pixels, 128);
    assert!(expected.contains(r#""width":16,"height":8"#), "{expected}");
    let decoder = host.get("image-decoder").expect("decoder");
    assert_eq!(
        decoder.stats().calls,
        7,
        "every decode ran in the Rust decoder"
    );

    for plugin in ["image-analyzer-py", "image-stats"] {
        match host.process_blocking(plugin, ProcessRequest::new(b"GIF89a....".to_vec())) {
            Err(Error::Plugin { plugin: who, error }) => {
                assert_eq!(who, plugin);
                assert_eq!(
                    error,
                    warden::PluginError::InvalidInput(
                        "Gif images are not supported; send png or jpeg".into()
                    )
                );
            }
            other => panic!("{plugin}: expected the decoder's refusal, got {other:?}"),
        }
    }
}
