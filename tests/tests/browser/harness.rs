//! The browser tests' harness: a `kezek serve` process on a loopback port, a ChromeDriver
//! process on another, and a headless Chromium session driven through WebDriver
//! (fantoccini). Screenshots go to `CARGO_TARGET_TMPDIR/screenshots/`.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::Kezek;

/// How long one page element may take to appear (the machines are shared and slow).
pub const WAIT: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kezek serve` on a free loopback port, with the `admin` password it printed.
pub struct Server {
    pub _proc: Proc,
    pub base: String,
    pub password: String,
}

/// Starts `kezek serve` on the store of `k` and waits for its address line.
pub fn serve(k: &Kezek) -> Server {
    let mut child = k
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("KEZEK_DEMO_SCALE", "small")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn kezek serve");
    let stdout = child.stdout.take().expect("stdout of kezek serve");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("serve| {line}");
            if tx.send(line).is_err() {
                // Keep draining so that the server never blocks on a full pipe.
                continue;
            }
        }
    });
    let proc = Proc(child);
    let mut password = None;
    let mut after_account = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("kezek serve printed no address within two minutes");
        if after_account && password.is_none() {
            password = Some(line.trim().to_string());
            continue;
        }
        if line.starts_with("created the account 'admin'") {
            after_account = true;
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            let base = rest
                .split_whitespace()
                .next()
                .expect("an address after 'listening on'")
                .trim_end_matches('/')
                .to_string();
            return Server {
                _proc: proc,
                base,
                password: password.expect("the first start prints the admin password"),
            };
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// ChromeDriver and one headless Chromium session.
pub struct Browser {
    pub client: Client,
    _driver: Proc,
    shots: PathBuf,
}

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for c in candidates {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(c);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl Browser {
    pub async fn start() -> Browser {
        let driver = find_program(&["chromedriver"]).expect(
            "chromedriver is not on PATH: install the Debian packages chromium and \
             chromium-driver (.ci/run does)",
        );
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .expect("chromium is not on PATH: install the Debian package chromium");
        let port = free_port();
        let proc = Proc(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn chromedriver"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--lang=ru"],
            }),
        );
        // ChromeDriver is on loopback: plain HTTP, no TLS connector.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with headless Chromium");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        Browser {
            client,
            _driver: proc,
            shots,
        }
    }

    /// Saves a PNG of the whole window as `NAME.png` and returns its path.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let p = self.shots.join(format!("{name}.png"));
        std::fs::write(&p, png).expect("write the screenshot");
        eprintln!("screenshot: {}", p.display());
        p
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits for an element by CSS selector.
    pub async fn el(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        self.el(css).await.text().await.expect("element text")
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if t.contains(needle) {
                        return t;
                    }
                    if Instant::now() > deadline {
                        panic!("{css} never showed {needle:?}; it shows:\n{t}");
                    }
                }
            }
            assert!(Instant::now() < deadline, "{css} never appeared");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.el(css).await;
        e.clear().await.expect("clear a field");
        e.send_keys(value).await.expect("type into a field");
    }

    pub async fn click(&self, css: &str) {
        self.el(css).await.click().await.expect("click");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
