//! The host's own resources under attack (`plugins/hostile/suite`): every
//! byte and handle the host holds for a plugin is bounded and charged to
//! it. Each attack floods one of them for five calls while a well-behaved
//! neighbour is called in between; the host's resident memory may not grow
//! by more than 256 MiB, the neighbour may not fail once, and the error
//! names the cause.

use warden_testkit as common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use warden::{
    Allocator, AuditKind, Error, Grants, Limits, Manifest, Plugin, PluginError, ProcessRequest,
    ProcessResponse, TrapKind, Warden,
};

const MIB: u64 = 1 << 20;
const SECRET: &str = "outside the sandbox";

/// The suite, with the directories `symlink-swap` maps: `rw/sub` holding a
/// decoy, and `outside` holding what the swap aims at.
fn suite() -> &'static Path {
    static SUITE: OnceLock<PathBuf> = OnceLock::new();
    SUITE.get_or_init(|| {
        let suite = common::hostile_suite().to_path_buf();
        let swap = suite.join("symlink-swap");
        let _ = std::fs::remove_dir_all(swap.join("rw"));
        std::fs::create_dir_all(swap.join("rw/sub")).expect("rw/sub");
        std::fs::write(swap.join("rw/sub/secret.txt"), "decoy").expect("decoy");
        std::fs::create_dir_all(swap.join("outside")).expect("outside");
        std::fs::write(swap.join("outside/secret.txt"), SECRET).expect("secret");
        suite
    })
}

/// A host granting what the attacks ask for, with a data directory.
fn host(data: &Path) -> Warden {
    let suite = suite();
    let grants = Grants::new()
        .grant(&format!("fs:ro:{}", suite.display()))
        .and_then(|g| {
            g.grant(&format!(
                "fs:rw:{}",
                suite.join("symlink-swap/rw").display()
            ))
        })
        .and_then(|g| g.grant("net:127.0.0.1:1"))
        .and_then(|g| g.grant("http:http://127.0.0.1:1"))
        .expect("grants");
    Warden::builder()
        .grants(grants)
        .data_dir(data)
        .default_limits(Limits {
            max_wait: Duration::from_millis(100),
            ..Limits::default()
        })
        .build()
        .expect("host")
}

/// The host process's resident memory.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

/// What an attack's call must end in.
enum Outcome {
    /// A trap of this kind whose message says this.
    Trap(TrapKind, &'static str),
    /// The plugin's own report that the host refused, saying this.
    Contained(&'static str),
    /// Output saying this (the host dropped what was too much, audited).
    Output(&'static str),
}

fn check(attack: &str, result: warden::Result<ProcessResponse>, expected: &Outcome) {
    match (expected, result) {
        (
            Outcome::Trap(kind, needle),
            Err(Error::Trap {
                kind: k, message, ..
            }),
        ) => {
            assert_eq!(*kind, k, "{attack}: {message}");
            let cause = message.lines().next().unwrap_or_default();
            assert!(
                cause.contains(needle),
                "{attack}: the cause comes first: {message}"
            );
        }
        (
            Outcome::Contained(needle),
            Err(Error::Plugin {
                error: PluginError::Internal(message),
                ..
            }),
        ) => assert!(
            message.starts_with("contained:") && message.contains(needle),
            "{attack}: {message}"
        ),
        (Outcome::Output(needle), Ok(out)) => {
            let text = String::from_utf8_lossy(&out.output);
            assert!(text.contains(needle), "{attack}: {text}");
        }
        (_, other) => panic!("{attack}: unexpected outcome {other:?}"),
    }
}

fn neighbour_answers(neighbour: &Plugin, attack: &str) {
    let out = neighbour
        .process_blocking(ProcessRequest::new("still here").option("op", "upper"))
        .unwrap_or_else(|e| panic!("the neighbour failed during {attack}: {e}"));
    assert_eq!(out.output, b"STILL HERE", "during {attack}");
}

/// Five calls of `plugin` with the neighbour called after each; returns
/// the growth of the host's resident memory.
fn five_calls(plugin: &Plugin, neighbour: &Plugin, expected: &Outcome) -> u64 {
    let attack = plugin.name().to_string();
    let before = rss();
    for _ in 0..5 {
        check(
            &attack,
            plugin.process_blocking(ProcessRequest::new("go")),
            expected,
        );
        neighbour_answers(neighbour, &attack);
    }
    rss().saturating_sub(before)
}

#[test]
fn no_plugin_makes_the_host_hold_more_than_its_budget() {
    use Outcome::*;
    let data = tempfile::tempdir().expect("data dir");
    let host = host(data.path());
    let neighbour = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("neighbour");
    let handles = "`limits.max-resources`";
    let attacks = [
        (
            "body-streams",
            Trap(TrapKind::NotGranted, "has no `http` permission"),
        ),
        (
            "body-streams-granted",
            Trap(TrapKind::HostResourceLimit, handles),
        ),
        ("table-flood", Trap(TrapKind::HostResourceLimit, handles)),
        ("pollable-flood", Trap(TrapKind::HostResourceLimit, handles)),
        ("socket-flood", Trap(TrapKind::HostResourceLimit, handles)),
        (
            "header-fields-flood",
            Trap(TrapKind::HostResourceLimit, "a header map grew past"),
        ),
        (
            "giant-log-line",
            Trap(
                TrapKind::HostResourceLimit,
                "one host call copied more than",
            ),
        ),
        ("giant-event", Output("emitted")),
        (
            "random-flood",
            Trap(TrapKind::HostResourceLimit, "more random bytes"),
        ),
        ("kv-flood", Contained("QuotaExceeded")),
    ];
    let mut figures = Vec::new();
    for (attack, expected) in &attacks {
        let plugin = host
            .load_blocking(suite().join(attack))
            .unwrap_or_else(|e| panic!("{attack}: {e}"));
        let growth = five_calls(&plugin, &neighbour, expected);
        figures.push(format!("{attack}: {} MiB", growth / MIB));
        assert!(
            growth < 256 * MIB,
            "{attack} grew the host by {} MiB",
            growth / MIB
        );
        host.unload_blocking(plugin.name()).expect("unload");
    }
    eprintln!("host RSS growth over five calls: {}", figures.join(", "));

    let dropped = common::audited(&host, Some("hostile-giant-event"), AuditKind::EventCap);
    assert_eq!(
        dropped.len(),
        10,
        "payload and type, five calls: {dropped:?}"
    );
    assert!(
        dropped[0].action.contains("at most 1048576 bytes"),
        "{dropped:?}"
    );
    assert!(
        dropped[1].action.contains("more than the 128 allowed"),
        "{dropped:?}"
    );
    let quota = common::audited(&host, Some("hostile-kv-flood"), AuditKind::StoreQuota);
    assert!(!quota.is_empty());
    let limits = common::audited(
        &host,
        Some("hostile-table-flood"),
        AuditKind::HostResourceLimit,
    );
    assert_eq!(limits.len(), 5, "one per call, each instance discarded");
}

/// Leaking across calls runs into the same wall as flooding within one:
/// the call that passes `max-resources` traps, its instance goes with all
/// it held, and the next call starts afresh.
#[test]
fn leaking_across_calls_meets_the_same_wall() {
    let data = tempfile::tempdir().expect("data dir");
    let host = host(data.path());
    let plugin = host
        .load_blocking(suite().join("grow-and-leak"))
        .expect("load");
    let call = || plugin.process_blocking(ProcessRequest::new("go"));
    // 256 handles; each timer takes two (its deadline and its pollable).
    let mut kept = 0;
    let trapped = loop {
        match call() {
            Ok(out) => {
                kept += 40;
                assert_eq!(
                    String::from_utf8_lossy(&out.output),
                    format!("holding {kept}")
                );
                assert!(kept < 256, "{kept} timers kept and no limit");
            }
            Err(e) => break e,
        }
    };
    assert!(kept >= 80, "only {kept} timers fit");
    match trapped {
        Error::Trap {
            kind: TrapKind::HostResourceLimit,
            message,
            ..
        } => assert!(
            message.starts_with("the instance holds the most handles"),
            "{message}"
        ),
        other => panic!("expected a host-resource-limit trap, got {other:?}"),
    }
    let fresh = call().expect("a fresh instance");
    assert_eq!(fresh.output, b"holding 40");
    assert_eq!(plugin.stats().instances_created, 2);
}

/// The size caps a manifest meets at load: a config value over 64 KiB is
/// refused, naming the key and the cap.
#[test]
fn a_giant_config_value_is_refused_at_load() {
    let data = tempfile::tempdir().expect("data dir");
    let host = host(data.path());
    let wasm = std::fs::read(suite().join("table-flood/hostile.wasm")).expect("component");
    let text = format!(
        "name = \"hostile-giant-config\"\nversion = \"0.1.0\"\nworld = \"processor\"\n\
         config = {{ attack = \"none\", blob = \"{}\" }}\n",
        "x".repeat(100_000)
    );
    let manifest = Manifest::parse(&text, Path::new("giant.toml")).expect("manifest");
    match host.load_bytes_blocking(manifest, wasm) {
        Err(Error::Config { plugin, message }) => {
            assert_eq!(plugin, "hostile-giant-config");
            assert!(
                message.contains("config `blob` is 100000 bytes, more than the 65536"),
                "{message}"
            );
        }
        other => panic!("expected a config refusal, got {other:?}"),
    }
}

/// A mapped directory swapped for a symlink after it was checked: the next
/// instance still maps the directory that was checked.
#[test]
fn a_mapped_directory_swapped_for_a_symlink_is_not_followed() {
    let data = tempfile::tempdir().expect("data dir");
    let host = host(data.path());
    let plugin = host
        .load_blocking(suite().join("symlink-swap"))
        .expect("load");
    let step = |step: &str| plugin.process_blocking(ProcessRequest::new("go").option("step", step));
    assert_eq!(step("read").expect("before").output, b"decoy");
    assert_eq!(step("swap").expect("swap").output, b"swapped");
    let rw = suite().join("symlink-swap/rw/sub");
    assert!(
        std::fs::symlink_metadata(&rw)
            .expect("sub")
            .file_type()
            .is_symlink(),
        "the swap happened on the host"
    );
    let after = step("read").expect("after the swap");
    assert_eq!(
        String::from_utf8_lossy(&after.output),
        "decoy",
        "the secret leaked"
    );
}

/// A plugin from another directory cannot take a loaded plugin's name (and
/// with it its store, data and secrets), not even after a restart that
/// loads it first; the operator deploying it vouches for its directory.
#[test]
fn a_second_directory_cannot_take_a_plugins_name() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let owner = common::stage(root.path(), "counter", "0.1.0");
    let squatter = root.path().join("elsewhere/counter");
    std::fs::create_dir_all(&squatter).expect("squatter dir");
    // Loaded beside the owner as another version, it would run with the
    // owner's store and data.
    std::fs::copy(owner.join("counter.wasm"), squatter.join("counter.wasm")).expect("copy");
    let manifest = std::fs::read_to_string(owner.join("plugin.toml")).expect("manifest");
    std::fs::write(
        squatter.join("plugin.toml"),
        manifest.replace("version = \"0.1.0\"", "version = \"9.9.9\""),
    )
    .expect("squatter manifest");
    let host = || Warden::builder().data_dir(&data).build().expect("host");
    let refused = |host: &Warden| match host.load_blocking(&squatter) {
        Err(Error::NameClaimed { name, homes, .. }) => {
            assert_eq!(name, "counter");
            assert_eq!(homes, [owner.canonicalize().expect("canonical")]);
        }
        other => panic!("expected the name to be refused, got {other:?}"),
    };
    {
        let host = host();
        host.load_blocking(&owner)
            .expect("the owner binds the name");
        refused(&host);
        assert_eq!(
            common::audited(&host, Some("counter"), AuditKind::NameClaimed).len(),
            1
        );
    }
    // After a restart the squatter comes first, and is still refused.
    let host = host();
    refused(&host);
    host.deploy_blocking(&squatter)
        .expect("the operator vouches for the directory");
}

/// Four memories of 40 MiB under a 128 MiB limit: the limit is the
/// instance's, all memories together, so the instance is refused as out of
/// memory (one memory at a time, it would have fit). The pooling allocator
/// (the default) refuses more than one memory per module outright.
#[test]
fn the_memory_limit_holds_for_all_memories_together() {
    let manifest = || {
        Manifest::parse(
            "name = \"four-memories\"\nversion = \"0.1.0\"\nworld = \"minimal\"\n\
             [limits]\nmemory-mb = 128\n",
            Path::new("four.toml"),
        )
        .expect("manifest")
    };
    // Compiled apart from the pool, refused when the pool maps it: the
    // compiled file it was mapped from does not stay in the cache.
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_dir = cache.path().join("compiled");
    let pooled = Warden::builder()
        .cache_dir(&cache_dir)
        .build()
        .expect("host");
    for _ in 0..2 {
        match pooled.load_bytes_blocking(manifest(), four_memories(640)) {
            Err(Error::InvalidComponent { reason, .. }) => {
                assert!(reason.contains("memories count of 4"), "{reason}")
            }
            other => panic!("expected the pool to refuse four memories, got {other:?}"),
        }
    }
    let left: Vec<_> = std::fs::read_dir(&cache_dir)
        .expect("cache dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "refused components stay out of the cache: {left:?}"
    );
    let host = Warden::builder()
        .allocator(Allocator::OnDemand)
        .build()
        .expect("host");
    match host.load_bytes_blocking(manifest(), four_memories(640)) {
        Err(Error::Trap {
            kind: TrapKind::OutOfMemory,
            message,
            ..
        }) => assert!(message.contains("128 MiB memory limit"), "{message}"),
        other => panic!("expected out-of-memory, got {other:?}"),
    }
}

/// A component of the `minimal` world (its functions trap) whose core
/// module has four memories of `pages` 64 KiB pages each.
fn four_memories(pages: u64) -> Vec<u8> {
    use wasm_encoder::reencode::Reencode;
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(common::repo().join("wit"))
        .expect("contract WIT");
    let world = resolve
        .select_world(&[package], Some("minimal"))
        .expect("world");
    let dummy =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);

    struct FourMemories(u64);
    impl Reencode for FourMemories {
        type Error = std::convert::Infallible;
        fn parse_memory_section(
            &mut self,
            memories: &mut wasm_encoder::MemorySection,
            section: wasmparser::MemorySectionReader<'_>,
        ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
            for memory in section {
                let mut memory = self.memory_type(memory?)?;
                memory.minimum = memory.minimum.max(self.0);
                memories.memory(memory);
            }
            for _ in 0..3 {
                memories.memory(wasm_encoder::MemoryType {
                    minimum: self.0,
                    maximum: None,
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
            }
            Ok(())
        }
    }
    let mut module = wasm_encoder::Module::new();
    FourMemories(pages)
        .parse_core_module(&mut module, wasmparser::Parser::new(0), &dummy)
        .expect("reencode");
    common::component_of(module.finish(), &resolve, world)
}
