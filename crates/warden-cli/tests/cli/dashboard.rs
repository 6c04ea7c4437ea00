//! The dashboard at `/ui` in a real headless Chromium, driven over
//! WebDriver (`chromedriver`): it shows the served plugins, its
//! quarantine, release and reload buttons act through the admin API, the
//! audit log shows untrusted text as text, and a screenshot of it has
//! real content. The screenshot is kept in the tests' output directory.
//!
//! Skipped with a message when `chromedriver` is not installed, unless
//! `WARDEN_TEST_REQUIRE_BROWSER` is set (CI sets it, and installs it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{agent, serve_examples};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver session in a chromedriver of its own.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
}

impl Browser {
    fn start(profile: &Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        // Starting Chromium on a loaded machine takes its time.
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
        };
        wait_for("chromedriver to be ready", || {
            browser
                .http
                .get(format!("{}/status", browser.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true)
        });
        // The flags keep Chromium off the network (this machine has none
        // beyond loopback) and its state in a profile of the test's own.
        let created = browser.send(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        "--window-size=1280,800",
                        format!("--user-data-dir={}", profile.display()),
                    ]
                }
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// A WebDriver command; its `value`.
    fn send(&self, method: &str, path: &str, body: Value) -> Value {
        let url = match self.session.is_empty() {
            true => format!("{}{path}", self.base),
            false => format!("{}/session/{}{path}", self.base, self.session),
        };
        let response = match method {
            "GET" => self.http.get(&url).call(),
            "DELETE" => self.http.delete(&url).call(),
            _ => self.http.post(&url).send_json(&body),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let value: Value = response.body_mut().read_json().expect("WebDriver JSON");
        let value = value["value"].clone();
        assert!(value.get("error").is_none(), "{method} {path}: {value}");
        value
    }

    fn script(&self, source: &str) -> Value {
        self.send(
            "POST",
            "/execute/sync",
            json!({"script": source, "args": []}),
        )
    }

    /// Clicks the button `css` once it is there and enabled, in one step:
    /// the page rebuilds its buttons as it refreshes.
    fn click(&self, css: &str) {
        let selector = serde_json::to_string(css).expect("json");
        wait_for(&format!("{css} to be enabled"), || {
            self.script(&format!(
                "const b = document.querySelector({selector}); \
                 if (!b || b.disabled) return false; b.click(); return true;"
            )) == true
        });
    }

    /// Waits until the page's `flash` reports the end of an action
    /// (`ok` or `bad`); returns its level and text.
    fn outcome(&self) -> (String, String) {
        let mut last = Value::Null;
        wait_for("the action's outcome", || {
            last = self.script(
                "const f = document.getElementById('flash'); \
                 return [f.dataset.level || '', f.textContent];",
            );
            matches!(last[0].as_str(), Some("ok" | "bad"))
        });
        let text = last[1].as_str().unwrap_or_default().to_string();
        self.script("document.getElementById('flash').dataset.level = ''; return null;");
        (last[0].as_str().unwrap_or_default().to_string(), text)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")
}

#[test]
fn the_dashboard_shows_plugins_and_acts_through_the_admin_api() {
    if !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("WARDEN_TEST_REQUIRE_BROWSER").is_none(),
            "{CHROMEDRIVER} is missing; install Debian's chromium and chromium-driver"
        );
        eprintln!("skipped: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = serve_examples(tmp.path(), &["counter", "text-transform"]);
    let token = std::fs::read_to_string(tmp.path().join("data/token")).expect("token");
    let token = token.trim();
    let http = agent();
    // An audit entry carrying markup: the page must show it as text.
    let markup = "<img src=x id=pwned onerror=\"document.title='pwned'\">";
    let held = http
        .post(format!(
            "{}/v1/admin/plugins/text-transform/quarantine",
            server.url
        ))
        .header("authorization", &format!("Bearer {token}"))
        .send_json(json!({ "reason": markup }))
        .expect("quarantine");
    assert_eq!(held.status(), 200);
    let released = http
        .post(format!(
            "{}/v1/admin/plugins/text-transform/release",
            server.url
        ))
        .header("authorization", &format!("Bearer {token}"))
        .send("")
        .expect("release");
    assert_eq!(released.status(), 200);

    let browser = Browser::start(&tmp.path().join("profile"));
    browser.send(
        "POST",
        "/url",
        json!({ "url": format!("{}/ui#token={token}", server.url) }),
    );
    browser
        .script("window.WARDEN_UI_NO_CONFIRM = true; window.WARDEN_UI_POLL_MS = 500; return null;");
    wait_for("the plugins table", || {
        browser.script("return document.body.dataset.state;") == "ready"
    });
    let plugins = browser.script(
        "return [...document.querySelectorAll('#plugins tr[data-plugin]')].map(r => r.dataset.plugin);",
    );
    assert_eq!(plugins, json!(["counter", "text-transform"]));
    wait_for("the audit log", || {
        browser.script("return document.querySelectorAll('#audit li').length;") != 0
    });
    let audit = browser.script("return document.getElementById('audit').textContent;");
    assert!(
        audit.as_str().is_some_and(|a| a.contains(markup)),
        "the reason is shown as text: {audit}"
    );
    assert_eq!(
        browser.script("return document.getElementById('pwned');"),
        Value::Null,
        "markup from the audit log became an element"
    );

    let counter = format!("{}/v1/plugins/counter/process?op=incr&key=ui", server.url);
    assert_eq!(http.post(&counter).send("").expect("call").status(), 200);
    browser.click("button[data-action='quarantine'][data-plugin='counter']");
    let (level, text) = browser.outcome();
    assert_eq!(level, "ok", "{text}");
    let refused = http.post(&counter).send("").expect("call");
    assert_eq!(refused.status(), 503, "a quarantined plugin refuses calls");
    wait_for("the quarantine in the table", || {
        browser
            .script("return document.querySelector(\"tr[data-plugin='counter']\").textContent;")
            .as_str()
            .is_some_and(|t| t.contains("quarantined"))
    });

    browser.click("button[data-action='release'][data-plugin='counter']");
    let (level, text) = browser.outcome();
    assert_eq!(level, "ok", "{text}");
    assert_eq!(http.post(&counter).send("").expect("call").status(), 200);

    browser.click("button[data-action='reload'][data-plugin='text-transform']");
    let (level, text) = browser.outcome();
    assert_eq!(level, "ok", "{text}");

    // Without a canary there is nothing to roll back: the server's own
    // explanation is shown.
    browser.click("button[data-action='rollback'][data-plugin='counter']");
    let (level, text) = browser.outcome();
    assert_eq!(level, "bad", "{text}");
    assert!(text.contains("no canary"), "{text}");

    let shot = browser.send("GET", "/screenshot", Value::Null);
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().expect("base64 screenshot"))
        .expect("base64");
    std::fs::write(screenshot_path(), &png).expect("keep the screenshot");
    let image = image::load_from_memory(&png).expect("a PNG").to_rgb8();
    assert!(
        image.width() >= 1000 && image.height() >= 500,
        "{:?}",
        image.dimensions()
    );
    let background = *image.get_pixel(0, 0);
    let drawn = image.pixels().filter(|p| **p != background).count();
    let colours: std::collections::HashSet<_> = image.pixels().map(|p| p.0).collect();
    let share = drawn as f64 / (image.width() * image.height()) as f64;
    assert!(
        share > 0.03 && colours.len() > 20,
        "the screenshot is nearly blank: {:.1}% drawn, {} colours ({})",
        share * 100.0,
        colours.len(),
        screenshot_path().display()
    );
    eprintln!("dashboard screenshot: {}", screenshot_path().display());
}
