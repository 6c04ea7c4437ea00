//! The hostile plugin suite (`plugins/hostile/suite`): every attack is
//! contained with its own error kind and recorded in the audit log, while a
//! well-behaved plugin called from other threads keeps answering correctly.

use warden_testkit as common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use warden::{
    AuditKind, AuditLog, AuditQuery, Error, GrantPolicy, Grants, Limits, Manifest, PluginError,
    ProcessRequest, ProcessResponse, TrapKind, Warden,
};

/// The suite's directory, with the data directories the file-system attacks
/// aim at, and a secret outside every granted directory. Set up once per
/// test binary: the tests run in parallel and share it.
struct Stage {
    suite: PathBuf,
    secret: PathBuf,
}

const SECRET: &str = "TOP SECRET: the host's crown jewels";

fn stage() -> &'static Stage {
    static STAGE: OnceLock<Stage> = OnceLock::new();
    STAGE.get_or_init(|| {
        let suite = common::hostile_suite().to_path_buf();
        let outside = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-outside");
        std::fs::create_dir_all(&outside).expect("outside dir");
        let secret = outside.join("secret.txt");
        std::fs::write(&secret, SECRET).expect("secret");
        for attack in ["raw-open", "traversal", "symlink-escape", "write-readonly"] {
            let data = suite.join(attack).join("data");
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("public.txt"), "public").expect("public file");
        }
        let link = suite.join("symlink-escape/data/escape");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&secret, &link).expect("symlink");
        let _ = std::fs::remove_file(suite.join("write-readonly/data/owned.txt"));
        Stage { suite, secret }
    })
}

/// A host that grants the suite's directories read-only and one harmless
/// port, meters fuel, persists its audit log in `data`, and lets callers
/// wait only 100 ms for a busy plugin.
fn host(stage: &Stage, data: &Path, policy: GrantPolicy) -> Warden {
    let grants = Grants::new()
        .grant(&format!("fs:ro:{}", stage.suite.display()))
        .and_then(|g| g.grant("net:127.0.0.1:1"))
        .expect("grants")
        .policy(policy);
    Warden::builder()
        .grants(grants)
        .fuel(true)
        .data_dir(data)
        .default_limits(Limits {
            max_wait: Duration::from_millis(100),
            ..Limits::default()
        })
        .build()
        .expect("host")
}

fn call(
    host: &Warden,
    stage: &Stage,
    attack: &str,
    targets: &[&str],
) -> warden::Result<ProcessResponse> {
    let plugin = host.load_blocking(stage.suite.join(attack))?;
    let mut request = ProcessRequest::new("ping");
    for t in targets {
        request = request.option("target", *t);
    }
    plugin.process_blocking(request)
}

fn audited(host: &Warden, attack: &str, kind: AuditKind) -> Vec<String> {
    common::audited(host, Some(&format!("hostile-{attack}")), kind)
        .into_iter()
        .map(|e| e.resource)
        .collect()
}

fn assert_trap(result: warden::Result<ProcessResponse>, expected: TrapKind, attack: &str) {
    match result {
        Err(Error::Trap { kind, .. }) if kind == expected => {}
        other => panic!("{attack}: expected a {expected} trap, got {other:?}"),
    }
}

/// The plugin's own report that every target was refused.
fn assert_contained(result: warden::Result<ProcessResponse>, attack: &str) -> String {
    match result {
        Err(Error::Plugin {
            error: PluginError::Internal(message),
            ..
        }) if message.starts_with("contained:") => {
            assert!(
                !message.contains(SECRET),
                "{attack} leaked the secret: {message}"
            );
            message
        }
        Ok(breach) => panic!(
            "{attack} got through: {}",
            String::from_utf8_lossy(&breach.output)
        ),
        other => panic!("{attack}: expected the attack to be contained, got {other:?}"),
    }
}

/// Calls text-transform from two threads until dropped; counts good answers
/// and anything else.
struct Neighbour {
    stop: Arc<AtomicBool>,
    good: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Neighbour {
    fn start(host: &Warden) -> Self {
        let plugin = host
            .load_blocking(common::plugin_dir("text-transform"))
            .expect("neighbour");
        let stop = Arc::new(AtomicBool::new(false));
        let good = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let threads = (0..2)
            .map(|i| {
                let (plugin, stop, good, bad) =
                    (plugin.clone(), stop.clone(), good.clone(), bad.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let text = format!("neighbour {i}");
                        let answer = plugin.process_blocking(
                            ProcessRequest::new(text.clone()).option("op", "upper"),
                        );
                        match answer {
                            Ok(r) if r.output == text.to_uppercase().as_bytes() => {
                                good.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => bad.fetch_add(1, Ordering::Relaxed),
                        };
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Neighbour {
            stop,
            good,
            bad,
            threads,
        }
    }

    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("neighbour thread");
        }
        (
            self.good.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn every_attack_is_contained_while_a_neighbour_keeps_answering() {
    let stage = stage();
    let data = tempfile::tempdir().expect("data dir");
    let host = host(stage, data.path(), GrantPolicy::Refuse);
    let neighbour = Neighbour::start(&host);

    // 1, 2: CPU.
    assert_trap(call(&host, stage, "loop", &[]), TrapKind::Timeout, "loop");
    assert!(!audited(&host, "loop", AuditKind::Timeout).is_empty());
    assert_trap(call(&host, stage, "fuel", &[]), TrapKind::OutOfFuel, "fuel");
    assert!(!audited(&host, "fuel", AuditKind::OutOfFuel).is_empty());

    // 3, 4: memory and stack.
    assert_trap(
        call(&host, stage, "memory-bomb", &[]),
        TrapKind::OutOfMemory,
        "memory-bomb",
    );
    assert!(!audited(&host, "memory-bomb", AuditKind::MemoryLimit).is_empty());
    assert_trap(
        call(&host, stage, "recursion", &[]),
        TrapKind::StackOverflow,
        "recursion",
    );
    assert!(!audited(&host, "recursion", AuditKind::StackOverflow).is_empty());

    // 5: lifecycle.
    match host.load_blocking(stage.suite.join("panic-in-init")) {
        Err(Error::Trap {
            kind: TrapKind::GuestPanic,
            message,
            ..
        }) => assert!(message.contains("panicking in initialize"), "{message}"),
        other => panic!("panic-in-init: {other:?}"),
    }
    assert!(host.get("hostile-panic-in-init").is_err(), "not registered");
    assert!(!audited(&host, "panic-in-init", AuditKind::Trap).is_empty());
    let echoed = call(&host, stage, "trap-in-shutdown", &[]).expect("serves before shutdown");
    assert_eq!(echoed.output, b"ping");
    host.unload_blocking("hostile-trap-in-shutdown")
        .expect("unload completes");
    assert!(host.get("hostile-trap-in-shutdown").is_err());
    let shutdown = audited(&host, "trap-in-shutdown", AuditKind::Trap);
    assert!(
        shutdown.iter().any(|r| r.starts_with("shutdown")),
        "{shutdown:?}"
    );

    // 6-9: files.
    let secret = stage.secret.display().to_string();
    let message = assert_contained(
        call(&host, stage, "read-host-files", &[&secret]),
        "read-host-files",
    );
    assert!(
        message.contains("/etc/passwd") && message.contains(&secret),
        "{message}"
    );
    assert_contained(call(&host, stage, "raw-open", &[&secret]), "raw-open");
    let denied = audited(&host, "raw-open", AuditKind::FsDenied);
    assert!(
        denied.len() >= 3,
        "absolute and escaping paths audited: {denied:?}"
    );
    assert_contained(call(&host, stage, "traversal", &[]), "traversal");
    assert!(!audited(&host, "traversal", AuditKind::FsDenied).is_empty());
    assert_contained(call(&host, stage, "symlink-escape", &[]), "symlink-escape");
    assert!(!audited(&host, "symlink-escape", AuditKind::FsDenied).is_empty());
    assert_contained(call(&host, stage, "write-readonly", &[]), "write-readonly");
    let writes = audited(&host, "write-readonly", AuditKind::FsDenied);
    assert!(
        writes.iter().any(|r| r.contains("for writing")),
        "{writes:?}"
    );
    assert!(!stage.suite.join("write-readonly/data/owned.txt").exists());

    // 10, 11, 17: network.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let target = format!("127.0.0.1:{port}");
    assert_contained(call(&host, stage, "connect", &[&target]), "connect");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "no connection may arrive"
    );
    let sockets = audited(&host, "connect", AuditKind::SocketDenied);
    assert!(sockets.iter().any(|r| r.contains(&target)), "{sockets:?}");
    assert_contained(call(&host, stage, "lookup", &[]), "lookup");
    let lookups = audited(&host, "lookup", AuditKind::NameLookupDenied);
    assert!(
        lookups.iter().any(|r| r.contains("localhost")),
        "{lookups:?}"
    );
    assert_contained(call(&host, stage, "listen", &[]), "listen");
    assert!(!audited(&host, "listen", AuditKind::SocketDenied).is_empty());

    // 12, 19: environment and stdin.
    // SAFETY: set before any other thread of this test reads the environment;
    // the plugin must never see it.
    unsafe { std::env::set_var("WARDEN_HOSTILE_SECRET", SECRET) };
    let env = call(&host, stage, "env", &[]).expect("env");
    assert_eq!(String::from_utf8_lossy(&env.output), "MODE=fixed");
    let stdin = call(&host, stage, "stdin", &[]).expect("stdin");
    assert_eq!(String::from_utf8_lossy(&stdin.output), "stdin gave 0 bytes");

    // 13, 14: output and logs.
    match call(&host, stage, "huge-output", &[]) {
        Err(Error::LimitExceeded {
            what: "output",
            size,
            max,
            ..
        }) => assert_eq!((size, max), (8 << 20, 1 << 20)),
        other => panic!("huge-output: {other:?}"),
    }
    assert!(!audited(&host, "huge-output", AuditKind::OutputLimit).is_empty());
    let flood = call(&host, stage, "stdout-flood", &[]).expect("stdout flood completes");
    assert!(String::from_utf8_lossy(&flood.output).starts_with("wrote 1677"));
    assert_eq!(audited(&host, "stdout-flood", AuditKind::LogCap).len(), 1);
    call(&host, stage, "log-flood", &[]).expect("log flood completes");
    assert_eq!(audited(&host, "log-flood", AuditKind::LogCap).len(), 1);

    // 15: concurrency.
    let busy = host.load_blocking(stage.suite.join("busy")).expect("busy");
    let outcomes: Vec<warden::Result<ProcessResponse>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| s.spawn(|| busy.process_blocking(ProcessRequest::new("x"))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("caller"))
            .collect()
    });
    let served = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(Error::Busy { .. })))
        .count();
    assert_eq!(served + refused, 12, "only busy errors: {outcomes:?}");
    assert!(
        served >= 2 && refused >= 1,
        "{served} served, {refused} busy"
    );
    assert_eq!(
        audited(&host, "busy", AuditKind::InstanceCap).len(),
        refused
    );

    // 16: permissions not granted.
    match host.load_blocking(stage.suite.join("greedy")) {
        Err(Error::PermissionDenied { plugin, refused }) => {
            assert_eq!(plugin, "hostile-greedy");
            assert_eq!(refused.len(), 4, "{refused:?}");
            assert!(
                refused
                    .iter()
                    .any(|r| r.reason.as_deref() == Some("wants your cloud"))
            );
        }
        other => panic!("greedy: {other:?}"),
    }
    assert_eq!(audited(&host, "greedy", AuditKind::GrantRefused).len(), 4);

    // 18: blocking inside a host call.
    assert_trap(call(&host, stage, "sleep", &[]), TrapKind::Timeout, "sleep");
    assert!(!audited(&host, "sleep", AuditKind::Timeout).is_empty());

    let (good, bad) = neighbour.finish();
    assert_eq!(bad, 0, "the neighbour failed {bad} of {} calls", good + bad);
    assert!(good > 50, "the neighbour answered only {good} calls");

    // The audit log is on disk and survives the host.
    let recorded = host.audit().query(&AuditQuery::default()).expect("query");
    drop(host);
    let reopened = AuditLog::open(data.path(), 16 << 20).expect("reopen");
    assert_eq!(
        reopened.query(&AuditQuery::default()).expect("query"),
        recorded
    );
}

#[test]
fn trim_policy_loads_without_what_was_not_granted() {
    let stage = stage();
    let data = tempfile::tempdir().expect("data dir");
    let host = host(stage, data.path(), GrantPolicy::Trim);
    let plugin = host
        .load_blocking(stage.suite.join("greedy"))
        .expect("trimmed");
    let info = plugin.info();
    assert_eq!(info.requested.net.len(), 1);
    assert!(info.permissions.net.is_empty() && info.permissions.fs.is_empty());
    assert!(info.permissions.env.is_empty() && info.permissions.http.is_empty());
    assert_eq!(info.permissions.trimmed.len(), 4);
    assert_eq!(audited(&host, "greedy", AuditKind::GrantTrimmed).len(), 4);
}

/// The same attack plugins, with manifests that ask for exactly the target
/// and a host that grants it: the firewall lets granted traffic through, so
/// the denials above are the rules at work, not a blanket block. A rule
/// naming a host by name never reaches an internal address (DNS could point
/// any name there): `localhost` alone is refused, `localhost` beside a rule
/// naming 127.0.0.1 gets through.
#[test]
fn granted_destinations_are_reachable() {
    let stage = stage();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let wasm = std::fs::read(stage.suite.join("connect/hostile.wasm")).expect("component");
    let manifest = |name: &str, target: &str, rules: &[String]| {
        let rules: Vec<String> = rules.iter().map(|r| format!("\"{r}\"")).collect();
        Manifest::parse(
            &format!(
                "name = \"{name}\"\nversion = \"0.1.0\"\nworld = \"processor\"\n\
                 config = {{ attack = \"connect\", target = \"{target}\" }}\n\
                 [permissions]\nnet = [{}]\n",
                rules.join(", ")
            ),
            Path::new("test.toml"),
        )
        .expect("manifest")
    };
    let host = Warden::builder()
        .grants(
            Grants::new()
                .grant(&format!("net:127.0.0.1:{port}"))
                .and_then(|g| g.grant(&format!("net:localhost:{port}")))
                .expect("grants"),
        )
        .build()
        .expect("host");
    let by_address = format!("127.0.0.1:{port}");
    let by_name = format!("localhost:{port}");
    for (name, target, rules) in [
        ("by-address", &by_address, vec![by_address.clone()]),
        (
            "by-name",
            &by_name,
            vec![by_name.clone(), by_address.clone()],
        ),
    ] {
        let plugin = host
            .load_bytes_blocking(manifest(name, target, &rules), wasm.clone())
            .expect("load");
        let out = plugin
            .process_blocking(ProcessRequest::new("go"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(String::from_utf8_lossy(&out.output).starts_with("connected"));
        let (mut stream, _) = listener.accept().expect("the connection arrived");
        let mut line = String::new();
        std::io::Read::read_to_string(&mut stream, &mut line).expect("read");
        assert_eq!(line, "hello from a plugin\n");
    }
    assert!(
        host.audit()
            .query(&AuditQuery::default())
            .expect("query")
            .is_empty()
    );
    let name_only = host
        .load_bytes_blocking(
            manifest("name-only", &by_name, std::slice::from_ref(&by_name)),
            wasm,
        )
        .expect("load");
    assert_contained(
        name_only.process_blocking(ProcessRequest::new("go")),
        "name-only",
    );
    let withheld = common::audited(&host, Some("name-only"), AuditKind::NameLookupDenied);
    assert!(
        withheld
            .iter()
            .any(|e| e.resource.contains("localhost -> 127.0.0.1")),
        "{withheld:?}"
    );
}
