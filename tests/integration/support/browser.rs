//! A real headless Chromium driven through ChromeDriver's W3C WebDriver HTTP API, for the
//! tests of the pages shadowdiff serves (the dashboard, the HTML report).
//!
//! Hand-written on reqwest rather than a WebDriver crate: the tests need a dozen commands
//! (new session, navigate, find, click, read text, run a script, screenshot, the browser
//! log), and a crate would bring a second HTTP and TLS stack to every test build.
//!
//! Chromium and ChromeDriver come from Debian's packages (`chromium`, `chromium-driver`),
//! which `.ci/run` installs; without them a test prints one skip line and passes, unless
//! `SHADOWDIFF_REQUIRE_BROWSER` is set (CI sets it), when it fails.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium is ChromeDriver's child; ending the session (in `quit`) closes it, and
        // killing the driver here is the fallback for a test that failed midway.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `None` (after one skip line) when Chromium or ChromeDriver is missing and the
/// environment does not require them.
pub async fn start() -> Option<Browser> {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        if std::env::var_os("SHADOWDIFF_REQUIRE_BROWSER").is_some() {
            panic!("SHADOWDIFF_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing");
        }
        eprintln!("skipped: no {CHROMIUM} and {CHROMEDRIVER} (Debian's chromium, chromium-driver)");
        return None;
    }
    Some(Browser::start().await)
}

impl Browser {
    async fn start() -> Browser {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        // A free port is picked and then handed to the driver: another test may take it in
        // between, so a driver that exits is started again on another one.
        let mut attempt = 0;
        let (driver, base) = loop {
            attempt += 1;
            let port = {
                let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                probe.local_addr().unwrap().port()
            };
            let mut driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting chromedriver");
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            let ready = loop {
                if let Ok(response) = http.get(format!("{base}/status")).send().await {
                    let bytes = response.bytes().await.unwrap_or_default();
                    let status: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    if status["value"]["ready"] == true {
                        break true;
                    }
                }
                if driver.try_wait().ok().flatten().is_some() {
                    break false;
                }
                assert!(Instant::now() < deadline, "chromedriver did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            // Ready, and ours: a driver that lost the port to another one answers through
            // the other one's /status and then exits.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if ready && driver.try_wait().ok().flatten().is_none() {
                break (driver, base);
            }
            assert!(attempt < 3, "chromedriver exited three times at start");
        };
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let created = browser.call("POST", "/session", Some(capabilities)).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; the `value` of its answer. A WebDriver error panics with
    /// its message, as a failed assertion would.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let bytes = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&bytes))
        });
        let value = answer["value"].clone();
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            panic!("{method} {path}: {error}: {}", value["message"]);
        }
        if path == "/session" {
            return value;
        }
        value
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })))
            .await;
    }

    /// The elements matching a CSS selector now.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                "POST",
                &self.at("/elements"),
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (polling, up to 30 s) until `done` holds for what `css` matches.
    pub async fn wait_until(
        &self,
        what: &str,
        css: &str,
        mut done: impl FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.find_all(css).await;
            if done(&found) {
                return found;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, element: &str) -> String {
        let text = self
            .call("GET", &self.at(&format!("/element/{element}/text")), None)
            .await;
        text.as_str().unwrap_or_default().to_string()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        let value = self
            .call(
                "GET",
                &self.at(&format!("/element/{element}/attribute/{name}")),
                None,
            )
            .await;
        value.as_str().map(str::to_string)
    }

    pub async fn click(&self, element: &str) {
        self.call("POST", &self.at(&format!("/element/{element}/click")), None)
            .await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let png = self.call("GET", &self.at("/screenshot"), None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 screenshot")
    }

    /// The browser's console messages at level SEVERE (errors) since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self
            .call(
                "POST",
                &self.at("/se/log"),
                Some(json!({ "type": "browser" })),
            )
            .await;
        log.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session (Chromium exits) and stops the driver.
    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
