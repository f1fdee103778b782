//! End-to-end through a real browser: the `hft` binary in paper mode, Debian's headless Chromium
//! on its dashboard, driven over the Chrome DevTools Protocol (a WebSocket, via `tungstenite`).
//! The page must show live numbers by polling while its WebSocket is refused, go live over `/ws`
//! once it is allowed and again after it is closed, take the token out of the address bar, refuse
//! a halt with a wrong token visibly, halt the engine with the right one (checked through the
//! API: halted, no new order), set a weight and deactivate a strategy (and show a refused weight),
//! and ask before flattening.
//!
//! Chromium is `$HFT_CHROMIUM`, else `/usr/bin/chromium`, else `chromium` or `chromium-browser`
//! on `PATH`. Without one the test fails, unless `HFT_SKIP_BROWSER=1` (then it says it skipped).
//! Both processes are killed and reaped by Drop guards whatever happens; every wait is bounded.

mod common;

use common::{Running, get, hft, port_after};
use serde_json::{Value, json};
use std::fs::File;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

const TOKEN: &str = "browser-test-token";

/// The browser to drive, or why there is none.
fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HFT_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A headless Chromium in its own process group with a throw-away profile; the whole group is
/// killed and the browser reaped on drop, before the profile is deleted.
struct Browser {
    child: Child,
    devtools_port: u16,
    browser_path: String,
    profile: tempfile::TempDir,
}

impl Browser {
    fn launch(exe: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("temp profile");
        let log = File::create(profile.path().join("chromium.log")).expect("log file");
        let mut cmd = Command::new(exe);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .process_group(0);
        // Chromium's helpers outlive its main process by a moment: adopt them (instead of init)
        // so the Drop guard can reap them.
        // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER takes plain integers and only changes this
        // process's reaping attribute.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut b = Browser { child, devtools_port: 0, browser_path: String::new(), profile };
        // Chromium writes its DevTools port and browser endpoint here once it listens.
        let file = b.profile.path().join("DevToolsActivePort");
        let t0 = Instant::now();
        loop {
            if let Some((port, path)) = std::fs::read_to_string(&file).ok().as_deref().and_then(devtools_endpoint) {
                b.devtools_port = port;
                b.browser_path = path;
                break;
            }
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("chromium exited at start-up ({status}):\n{}", b.log_tail());
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "no DevTools port within 30 s:\n{}", b.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A new tab, and a DevTools session on it with page events and runtime errors reported.
    fn new_page(&self) -> Cdp {
        let mut browser = Cdp::connect(self.devtools_port, &self.browser_path);
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().unwrap_or_else(|| panic!("no targetId: {target}")).to_string();
        let mut page = Cdp::connect(self.devtools_port, &format!("/devtools/page/{id}"));
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page
    }
}

/// `DevToolsActivePort`'s content: the port, then the browser's WebSocket path (both written at
/// once; a partial file has no second line).
fn devtools_endpoint(text: &str) -> Option<(u16, String)> {
    let mut lines = text.lines();
    let port = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    path.starts_with("/devtools/browser/").then(|| (port, path.to_string()))
}

impl Drop for Browser {
    /// SIGTERM first, so Chromium closes its helpers itself; after 3 s (or once it has exited)
    /// SIGKILL to whatever is left of its process group; then reap the browser and, as their
    /// subreaper, the helpers it left behind.
    fn drop(&mut self) {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else { return };
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped (only the `wait` below reaps it), so the pid cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) && !exited_unreaped(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above. `-pid` is the process group this child leads (spawned with
        // process_group(0)); while the leader is unreaped the group id cannot be reused.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
        // Helpers orphaned by the browser's exit are now our children; the group id stays
        // reserved while any of them exists, so this reaps only what the browser started.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            let mut status = 0;
            // SAFETY: waitpid(2) writes only to `status`, a valid c_int for the call.
            match unsafe { libc::waitpid(-pid, &mut status, libc::WNOHANG) } {
                0 => std::thread::sleep(Duration::from_millis(10)),
                r if r > 0 => {}
                _ => break, // ECHILD: none left
            }
        }
    }
}

/// Whether our child `pid` has exited, without reaping it (so its pid and process group id stay
/// reserved until `wait`).
fn exited_unreaped(pid: libc::pid_t) -> bool {
    let Ok(id) = libc::id_t::try_from(pid) else { return true };
    // SAFETY: all-zero bytes are a valid `siginfo_t` (a plain C struct); waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t for the call's duration; WNOWAIT leaves the
    // child waitable, WNOHANG makes the call return at once.
    let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    // SAFETY: waitid succeeded, so `info` is initialised; si_pid is 0 when no child has exited.
    rc != 0 || unsafe { info.si_pid() } != 0
}

/// One DevTools Protocol connection: numbered calls, events kept until asked for.
struct Cdp {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Value>,
}

impl Cdp {
    fn connect(port: u16, path: &str) -> Cdp {
        let addr = ("127.0.0.1", port).to_socket_addrs().expect("addr").next().expect("one addr");
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to DevTools");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .unwrap_or_else(|e| panic!("DevTools handshake on {path}: {e}"));
        // Short reads from now on, so every wait below is bounded by its own deadline.
        ws.get_ref().set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        Cdp { ws, next_id: 1, events: Vec::new() }
    }

    /// The next message, or `None` after the 100 ms read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => Some(serde_json::from_str(t.as_str()).expect("DevTools sends JSON")),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection: {e}"),
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).unwrap_or_else(|e| panic!("{method}: {e}"));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            let Some(m) = self.read() else { continue };
            if m["id"].as_u64() == Some(id) {
                if let Some(err) = m.get("error") {
                    panic!("{method} failed: {err}");
                }
                return m["result"].clone();
            }
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
        panic!("{method}: no answer within 15 s");
    }

    /// The page's value of `expr` (a JSON-serializable expression); a thrown exception fails.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}));
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("{expr}: threw {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is neither null, false nor undefined; its value then.
    fn wait_for(&mut self, what: &str, within: Duration, expr: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.eval(expr);
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            if t0.elapsed() > within {
                let state = self.eval(
                    "['conn', 'updated', 'updates-count', 'cmd-status', 'page-error']\
                     .map((id) => id + ' ' + JSON.stringify(document.getElementById(id)?.textContent)).join(', ')",
                );
                panic!("{what}: not within {within:?} ({expr}); page: {state}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for an event named `method`, taking it from those already received first.
    fn wait_event(&mut self, method: &str, within: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
                return self.events.remove(i)["params"].clone();
            }
            assert!(t0.elapsed() < within, "no {method} event within {within:?}");
            if let Some(m) = self.read()
                && m.get("method").is_some()
            {
                self.events.push(m);
            }
        }
    }

    /// Uncaught exceptions the page threw so far.
    fn exceptions(&mut self) -> Vec<Value> {
        while let Some(m) = self.read() {
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
        self.events.iter().filter(|e| e["method"] == "Runtime.exceptionThrown").cloned().collect()
    }

    /// Clicks `#id` from a task of its own, so a dialog it opens cannot block this call.
    fn click(&mut self, id: &str) {
        let ok = self.eval(&format!(
            "(() => {{ const b = document.getElementById('{id}'); if (!b) return false; \
             setTimeout(() => b.click(), 0); return true; }})()"
        ));
        assert_eq!(ok, true, "no #{id} on the page");
    }

    /// The integer in `data-value` of `#id` (null while the page has none).
    fn counter(&mut self, id: &str) -> Option<u64> {
        self.eval(&format!("document.getElementById('{id}')?.dataset.value || null"))
            .as_str()
            .and_then(|s| s.parse().ok())
    }
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a counter in {v}"))
}

/// JS: the command status line once the command `label` has finished (success or error).
fn cmd_done(label: &str) -> String {
    format!(
        "(() => {{ const s = document.getElementById('cmd-status'); \
         return s.dataset.ok !== '' && s.textContent.includes('{label}:') ? s.textContent : null; }})()"
    )
}

fn stats(port: u16) -> Value {
    let (status, body) = get(port, "/stats");
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn dashboard_shows_live_state_refuses_a_bad_token_and_halts_the_engine() {
    let Some(chromium) = find_chromium() else {
        if std::env::var("HFT_SKIP_BROWSER").is_ok_and(|v| v == "1") {
            eprintln!("browser test skipped (HFT_SKIP_BROWSER=1): no Chromium found");
            return;
        }
        panic!(
            "no Chromium found (/usr/bin/chromium, or chromium / chromium-browser on PATH, or HFT_CHROMIUM): \
             install it (Debian: apt-get install chromium) or set HFT_SKIP_BROWSER=1 to skip this test"
        );
    };
    let t_start = Instant::now();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = hft(dir.path());
    cmd.env("API_PORT", "0")
        .env("HFT__ENGINE__IDLE", "yield")
        .env("HFT__MARKET__RATE", "2000")
        .env("HFT_API_TOKEN", TOKEN);
    let engine = Running::spawn(cmd);
    let banner = engine.line_with("API http://", Duration::from_secs(30));
    let port = port_after(&banner, "API http://");
    assert_ne!(get(port, "/ws").0, 404, "GET /ws is not served: the dashboard's live transport");

    let browser = Browser::launch(&chromium);
    let mut page = browser.new_page();
    // Before the page's own code: a WebSocket the test can have refused and can close.
    page.call("Page.addScriptToEvaluateOnNewDocument", json!({"source": WS_SWITCH}));
    // A wrong token through the address: the page keeps it and takes it out of the address bar.
    let url = format!("http://127.0.0.1:{port}/dashboard#token=wrong-token");
    page.call("Page.navigate", json!({"url": url}));
    page.wait_for("the page loaded", Duration::from_secs(15), "document.readyState === 'complete' || null");
    page.wait_for(
        "the token taken out of the address",
        Duration::from_secs(5),
        "location.hash === '' && !location.href.includes('token') && sessionStorage.getItem('hft.api_token') === 'wrong-token'",
    );

    // The socket refused: live numbers by polling the REST endpoints.
    page.wait_for("mode shown", Duration::from_secs(15), "document.getElementById('mode').textContent === 'paper'");
    page.wait_for("polling", Duration::from_secs(5), "document.getElementById('conn').dataset.value === 'polling'");
    live_numbers(&mut page, "polling");
    assert_eq!(page.eval("document.getElementById('halted').dataset.value"), "false");
    assert_eq!(page.eval("document.getElementById('kill-switch').textContent"), "armed");
    assert!(page.eval("window.__hftWsAttempts").as_u64().is_some_and(|n| n >= 1), "the page never tried /ws");

    // The socket allowed again: the page reconnects by itself and goes live.
    page.eval("window.__hftBlockWs = false");
    page.wait_for(
        "reconnected over /ws",
        Duration::from_secs(12),
        "document.getElementById('conn').dataset.value === 'ws'",
    );
    live_numbers(&mut page, "over /ws");
    // The socket closed under it: polling at once, then live again.
    page.eval("window.__hftSockets.forEach((s) => s.close()); true");
    page.wait_for(
        "polling after the close",
        Duration::from_secs(3),
        "document.getElementById('conn').dataset.value !== 'ws'",
    );
    page.wait_for("live again", Duration::from_secs(8), "document.getElementById('conn').dataset.value === 'ws'");
    page.wait_for("strategies listed", Duration::from_secs(5), "document.getElementById('strat-momentum-toggle')");
    page.wait_for("latency rows", Duration::from_secs(5), "document.getElementById('lat-tick_to_order')");

    // Halt with the wrong token: refused, visibly; the engine keeps trading.
    page.click("btn-halt");
    let status = page.wait_for(
        "the 401 shown",
        Duration::from_secs(10),
        "(() => { const s = document.getElementById('cmd-status'); return s.dataset.ok === 'false' ? s.textContent : null; })()",
    );
    assert!(status.as_str().is_some_and(|s| s.contains("401") && s.contains("unauthorized")), "{status}");
    assert_eq!(stats(port)["halted"], false, "a refused halt changed the engine");

    // The right token through the token field, then Halt.
    page.eval(&format!(
        "document.getElementById('token').value = '{TOKEN}'; document.getElementById('btn-token-save').click(); true"
    ));
    assert_eq!(page.eval("document.getElementById('token').value"), "", "the token field is cleared once set");
    page.click("btn-halt");
    let status = page.wait_for(
        "the halt acknowledged",
        Duration::from_secs(10),
        "(() => { const s = document.getElementById('cmd-status'); return s.dataset.ok === 'true' && s.textContent.includes('halt') ? s.textContent : null; })()",
    );
    assert!(status.as_str().is_some_and(|s| s.contains("applied") && s.contains("halted")), "{status}");
    page.wait_for("HALTED shown", Duration::from_secs(5), "document.getElementById('halted').textContent === 'HALTED'");
    page.wait_for(
        "the alert banner",
        Duration::from_secs(5),
        "document.getElementById('alert').textContent.includes('HALTED')",
    );

    // Through the API: halted, and no order after the acknowledgement while frames keep coming.
    let at_halt = stats(port);
    assert_eq!(at_halt["halted"], true, "{at_halt}");
    std::thread::sleep(Duration::from_millis(1500));
    let later = stats(port);
    assert_eq!(n(&later, "orders"), n(&at_halt, "orders"), "an order after the halt: {later}");
    assert!(n(&later, "frames") > n(&at_halt, "frames"), "frames stopped: {later}");
    assert_eq!(later["halted"], true);

    if let Some(path) = std::env::var_os("HFT_BROWSER_SCREENSHOT").filter(|p| !p.is_empty()) {
        let shot = page.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write the screenshot to {path:?}: {e}"));
    }

    // Strategy controls: a weight set from its field, an out-of-range one refused visibly, a
    // strategy deactivated from its toggle; each checked through the API. A value is typed as a
    // user types it, with its `input` event: the page keeps an edited field from the live
    // updates, which would otherwise put the current weight back before the click.
    let type_weight = |v: &str| {
        format!(
            "(() => {{ const w = document.getElementById('strat-meanreversion-weight'); w.value = '{v}'; \
             w.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()"
        )
    };
    page.eval(&type_weight("0.7"));
    page.click("strat-meanreversion-set");
    page.wait_for("the weight acknowledged", Duration::from_secs(10), &cmd_done("weight meanreversion = 0.7"));
    assert_eq!(get(port, "/strategies").1["meanreversion"]["weight"], 0.7);
    page.eval(&type_weight("11"));
    page.click("strat-meanreversion-set");
    let status =
        page.wait_for("the refused weight shown", Duration::from_secs(10), &cmd_done("weight meanreversion = 11"));
    assert!(status.as_str().is_some_and(|s| s.contains("422") && s.contains("invalid_value")), "{status}");
    assert_eq!(get(port, "/strategies").1["meanreversion"]["weight"], 0.7, "a refused weight changed the engine");
    page.click("strat-breakout-toggle");
    page.wait_for("the deactivation acknowledged", Duration::from_secs(10), &cmd_done("deactivate breakout"));
    assert_eq!(get(port, "/strategies").1["breakout"]["active"], false);
    page.wait_for(
        "the toggle flipped",
        Duration::from_secs(5),
        "document.getElementById('strat-breakout-toggle').textContent === 'Activate'",
    );

    // Flatten asks first; dismissed, nothing is sent.
    page.click("btn-flatten");
    let dialog = page.wait_event("Page.javascriptDialogOpening", Duration::from_secs(5));
    assert_eq!(dialog["type"], "confirm", "{dialog}");
    page.call("Page.handleJavaScriptDialog", json!({"accept": false}));
    let status = page.wait_for(
        "the cancelled flatten shown",
        Duration::from_secs(5),
        "(() => { const s = document.getElementById('cmd-status').textContent; return s.includes('flatten') ? s : null; })()",
    );
    assert!(status.as_str().is_some_and(|s| s.contains("cancelled")), "{status}");

    let page_error = page.eval("document.getElementById('page-error').textContent");
    assert_eq!(page_error, "", "the page failed to render something");
    let thrown = page.exceptions();
    assert!(thrown.is_empty(), "the page threw: {thrown:?}");
    eprintln!("browser test: {:.1} s", t_start.elapsed().as_secs_f64());
}

/// Installed before the page's scripts: `window.__hftBlockWs` (initially true) sends new
/// sockets to a path the server refuses (404), as when a proxy does not pass `/ws`;
/// `window.__hftSockets` lists them all.
const WS_SWITCH: &str = r#"(() => {
  const Real = window.WebSocket;
  window.__hftBlockWs = true;
  window.__hftWsAttempts = 0;
  window.__hftSockets = [];
  function Switched(url, protocols) {
    window.__hftWsAttempts += 1;
    const ws = new Real(window.__hftBlockWs ? url.replace(/\/ws$/, '/ws-refused') : url, protocols);
    window.__hftSockets.push(ws);
    return ws;
  }
  Switched.prototype = Real.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Switched[k] = Real[k];
  window.WebSocket = Switched;
})();"#;

/// Frames and orders counted up on the page (the engine trades all along).
fn live_numbers(page: &mut Cdp, how: &str) {
    let frames0 = page.wait_for(
        "frames shown",
        Duration::from_secs(15),
        "document.getElementById('frames').dataset.value || null",
    );
    let frames0: u64 = frames0.as_str().and_then(|s| s.parse().ok()).expect("frames count");
    let orders0 = page.counter("orders-count").expect("orders count shown");
    page.wait_for(
        &format!("frames rising on the page ({how})"),
        Duration::from_secs(10),
        &format!("Number(document.getElementById('frames').dataset.value) > {frames0}"),
    );
    page.wait_for(
        &format!("orders rising on the page ({how})"),
        Duration::from_secs(20),
        &format!("Number(document.getElementById('orders-count').dataset.value) > {orders0}"),
    );
}

/// Standard base64 (DevTools' screenshot encoding); characters outside the alphabet are skipped.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::with_capacity(s.len() * 3 / 4), 0u32, 0u32);
    for v in s.bytes().filter_map(val) {
        acc = ((acc << 6) | u32::from(v)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_decodes_what_devtools_sends() {
    assert_eq!(base64_decode("aGZ0"), b"hft");
    assert_eq!(base64_decode("aGZ0IQ=="), b"hft!");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}

#[test]
fn devtools_active_port_parsing() {
    assert_eq!(devtools_endpoint("9222\n/devtools/browser/ab-cd\n"), Some((9222, "/devtools/browser/ab-cd".into())));
    assert_eq!(devtools_endpoint("9222\n"), None, "written but not complete");
    assert_eq!(devtools_endpoint(""), None);
}
