//! Real servers the tests start on 127.0.0.1: Debian's `docker-registry`
//! (an OCI registry) and `nats-server -js`, and the other tools the tests
//! talk to them with (`wkg`). Each is skipped with a message when its
//! binary is missing, unless `WARDEN_TEST_REQUIRE_SERVICES` is set (CI
//! sets it, and installs them all).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `program`'s path, or `None` (with a message) when it is not installed;
/// `install` says how to install it.
pub fn installed(program: &str, install: &str) -> Option<PathBuf> {
    let found = ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("WARDEN_TEST_REQUIRE_SERVICES").is_none(),
            "{program} is missing; {install}"
        );
        eprintln!("skipped: {program} is missing ({install})");
    }
    found
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(child: &mut Child, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
pub struct Service {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where it keeps its data.
    pub dir: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// An OCI registry storing its blobs under `dir`.
    pub fn registry(dir: &Path) -> Option<Service> {
        let program = installed("docker-registry", "apt-get install docker-registry")?;
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::create_dir_all(dir).expect("registry dir");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .expect("registry config");
        let mut child = Command::new(program)
            .args(["serve", config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        wait_for_port(&mut child, port, "docker-registry");
        Some(Service {
            child,
            port,
            dir: dir.to_path_buf(),
        })
    }

    /// A NATS server with JetStream, its store under `dir`.
    pub fn nats(dir: &Path) -> Option<Service> {
        let program = installed("nats-server", "apt-get install nats-server")?;
        let port = free_port();
        std::fs::create_dir_all(dir).expect("nats dir");
        let mut child = Command::new(program)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        wait_for_port(&mut child, port, "nats-server");
        Some(Service {
            child,
            port,
            dir: dir.to_path_buf(),
        })
    }

    /// The blob file a registry keeps for `digest` (`sha256:…`).
    pub fn registry_blob(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}
