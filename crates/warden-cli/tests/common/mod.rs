//! What the CLI's test binaries share: the repository, and a `warden up`
//! or `warden serve` child process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `warden up` or `warden serve` child process, stopped with SIGTERM.
pub struct Serving {
    pub child: std::process::Child,
    pub url: String,
    /// The child's stderr after its banner, line by line.
    log: std::sync::mpsc::Receiver<String>,
}

impl Serving {
    /// Starts `warden <command> -f <file>` and waits for its banner.
    pub fn start(command: &str, file: &Path) -> Serving {
        Serving::start_with(command, file, &[])
    }

    /// [`Serving::start`] with more arguments.
    pub fn start_with(command: &str, file: &Path, more: &[&str]) -> Serving {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([command, "-f", file.to_str().expect("utf-8")])
            .args(more)
            .env(
                "WARDEN_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
            )
            .env("WARDEN_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn warden");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Owned at once, so that a failure below still stops the child.
        let mut serving = Serving {
            child,
            url: String::new(),
            log: rx,
        };
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            let line = serving
                .log
                .recv_timeout(std::time::Duration::from_secs(300))
                .unwrap_or_else(|_| panic!("no banner from warden {command}: {seen:#?}"));
            if let Some(rest) = line.split(" on http://").nth(1) {
                serving.url = format!("http://{}", rest.trim());
                return serving;
            }
            seen.push(line);
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        self.child.wait().expect("wait")
    }

    /// Sends SIGTERM and checks that the child exited cleanly; the
    /// failure shows its status and what it wrote after its banner.
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate();
        // The reader ends at the child's exit; a grandchild may hold on.
        let log: Vec<String> = std::iter::from_fn(|| {
            self.log
                .recv_timeout(std::time::Duration::from_secs(2))
                .ok()
        })
        .collect();
        assert!(
            status.success(),
            "warden did not stop cleanly on SIGTERM: {status:?}\n{}",
            log.join("\n")
        );
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
pub mod services;
