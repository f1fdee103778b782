//! The live WebSocket feed against servers started here on 127.0.0.1: blocking `tungstenite`
//! servers in std threads (it refuses unmasked client frames, so every test also checks our
//! masking), raw bytes where a test needs broken framing, and rustls for `wss://`.
//!
//! Every loop is bounded by a deadline; the client idles with a short sleep; every server
//! thread ends on its own (accept deadlines, read timeouts) and is joined before the test ends.

use hft_engine::feed::FrameKind;
use hft_engine::feed::decode::{self, DecodeError, DecodeScratch, Decoded};
use hft_engine::feed::ws::{DisconnectReason, FeedNotice, LinkKind, ProtocolError, WsFeed, WsParams, conn};
use hft_shared::SymbolId;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::{Message, WebSocket};

// ---- a counting allocator, per thread ---------------------------------------------------------

mod common;

// ---- servers ------------------------------------------------------------------------------------

const WAIT: Duration = Duration::from_secs(10);
const STREAM_PATH: &str = "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade";

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking listener");
    let a = l.local_addr().expect("addr");
    (l, a)
}

/// One TCP connection, accepted within [`WAIT`], with blocking I/O bounded by timeouts.
fn accept_tcp(l: &TcpListener) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                s.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
                s.set_nodelay(true).expect("nodelay");
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no client connected");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// One WebSocket client and the path it asked for.
#[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
fn accept_ws(l: &TcpListener) -> (WebSocket<TcpStream>, String) {
    let s = accept_tcp(l);
    let mut path = String::new();
    let ws = tungstenite::accept_hdr(s, |req: &Request, resp: Response| {
        path = req.uri().to_string();
        Ok(resp)
    })
    .expect("upgrade");
    (ws, path)
}

/// Reads (answering pings) until the client goes away or 5 s pass; returns the close code the
/// client sent, if any.
fn until_closed<S: Read + Write>(ws: &mut WebSocket<S>) -> Option<u16> {
    let mut code = None;
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => code = Some(u16::from(f.code)),
            Ok(Message::Close(None)) => code = Some(1005),
            Ok(_) => {}
            Err(_) => return code,
        }
    }
}

/// An unmasked server frame with first byte `b0`.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=0xFFFF => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// Client frames (masked, as RFC 6455 requires) in `bytes`: (opcode, unmasked payload).
fn client_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = vec![];
    while bytes.len() >= 2 {
        assert_ne!(bytes[1] & 0x80, 0, "a client frame without mask");
        let (n, h) = match bytes[1] & 0x7F {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        if bytes.len() < h + 4 + n {
            break;
        }
        let key = &bytes[h..h + 4];
        let payload = bytes[h + 4..h + 4 + n].iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        out.push((bytes[0] & 0x0F, payload));
        bytes = &bytes[h + 4 + n..];
    }
    out
}

fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::Builder::new().name("ws-test-server".into()).spawn(f).expect("spawn")
}

/// Joins a server thread, failing the test if it is still running after [`WAIT`].
fn join<T>(h: JoinHandle<T>) -> T {
    let deadline = Instant::now() + WAIT;
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "a server thread did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    match h.join() {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

// ---- the client ---------------------------------------------------------------------------------

/// A closed port for a WS-API the test never uses.
const NO_API: &str = "ws://127.0.0.1:9/ws-api/v3";

fn params(stream: SocketAddr) -> WsParams {
    WsParams {
        url: format!("ws://{stream}"),
        symbols: vec!["BTCUSDT".into()],
        api_url: NO_API.into(),
        snapshot_limit: 1000,
        stale_ms: 5_000,
        reconnect_min_ms: 50,
        reconnect_max_ms: 400,
        max_connection_ms: 3_600_000,
        ping_interval_ms: 60_000,
        dead_ms: 60_000,
        connect_timeout_ms: 5_000,
        max_message: 1 << 20,
        seed: 42,
        tls: None,
    }
}

struct Client {
    feed: WsFeed,
    t0: Instant,
    notices: Vec<FeedNotice>,
}

impl Client {
    fn new(p: WsParams) -> Self {
        Self { feed: WsFeed::new(p).expect("feed"), t0: Instant::now(), notices: Vec::with_capacity(256) }
    }

    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Polls until `done` says so; it sees each poll's answer and every notice so far.
    /// Idle polls sleep 50 µs. Panics after `timeout`.
    fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(Option<(FrameKind, &[u8])>, &[FeedNotice]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(n) = self.feed.take_notice() {
                self.notices.push(n);
            }
            let now = self.now();
            let got = self.feed.poll(now);
            let idle = got.is_none();
            if done(got, &self.notices) {
                return;
            }
            if Instant::now() >= deadline {
                common::alloc::watch(false);
                panic!("timed out waiting for {what}; notices {:?}; counters {:?}", self.notices, self.feed.counters());
            }
            if idle {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// The next `n` stream messages, as text.
    fn messages(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        self.until(&format!("{n} messages"), WAIT, |got, _| {
            if let Some((kind, bytes)) = got {
                assert_eq!(kind, FrameKind::Stream);
                out.push(String::from_utf8(bytes.to_vec()).expect("utf-8"));
            }
            out.len() == n
        });
        out
    }

    /// Polls until a notice matches; returns its index in `notices`.
    fn notice(&mut self, what: &str, pred: impl Fn(&FeedNotice) -> bool) -> usize {
        self.until(what, WAIT, |_, ns| ns.iter().any(&pred));
        self.notices.iter().position(pred).expect("seen")
    }

    /// Notices about the stream link, without Stale/Fresh.
    fn stream_notices(&self) -> Vec<FeedNotice> {
        self.notices
            .iter()
            .copied()
            .filter(|n| match n {
                FeedNotice::Connected { link }
                | FeedNotice::Disconnected { link, .. }
                | FeedNotice::ConnectFailed { link, .. }
                | FeedNotice::Reconnecting { link, .. }
                | FeedNotice::ProtocolError { link, .. } => *link == LinkKind::Stream,
                _ => false,
            })
            .collect()
    }
}

const CONNECTED: FeedNotice = FeedNotice::Connected { link: LinkKind::Stream };

/// A text payload of exactly `n` bytes, different per `i`.
fn body(i: usize, n: usize) -> String {
    (0..n).map(|k| (b'a' + ((k * 7 + i) % 26) as u8) as char).collect()
}

// ---- tests --------------------------------------------------------------------------------------

#[test]
fn frames_of_every_size_arrive_intact_in_order_and_pings_get_their_pongs() {
    const SIZES: [usize; 9] = [0, 1, 125, 126, 127, 65_535, 65_536, 65_537, 300_000];
    let (l, addr) = listener();
    let server = spawn(move || {
        let (mut ws, path) = accept_ws(&l);
        for (i, n) in SIZES.iter().enumerate() {
            ws.send(Message::text(body(i, *n))).unwrap();
        }
        // A fragmented text message with a ping between its fragments, then a fragmented
        // binary message (dropped by the client).
        let text = |s: &str, op, fin| Message::Frame(Frame::message(s.as_bytes().to_vec(), op, fin));
        ws.write(text("frag-", OpCode::Data(Data::Text), false)).unwrap();
        ws.write(Message::Frame(Frame::ping(b"mid".to_vec()))).unwrap();
        ws.write(text(&body(99, 70_000), OpCode::Data(Data::Continue), false)).unwrap();
        ws.write(text("-end", OpCode::Data(Data::Continue), true)).unwrap();
        ws.write(text("bin", OpCode::Data(Data::Binary), false)).unwrap();
        ws.write(text("ary", OpCode::Data(Data::Continue), true)).unwrap();
        ws.send(Message::Ping(b"hello-ping".to_vec().into())).unwrap();
        let mut pongs = vec![];
        while pongs.len() < 2 {
            match ws.read().unwrap() {
                Message::Pong(p) => pongs.push(String::from_utf8(p.to_vec()).unwrap()),
                m => panic!("unexpected {m:?}"),
            }
        }
        ws.send(Message::text("done")).unwrap();
        ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).unwrap();
        let _ = until_closed(&mut ws);
        (path, pongs)
    });

    let mut c = Client::new(params(addr));
    let got = c.messages(SIZES.len() + 2);
    for (i, n) in SIZES.iter().enumerate() {
        assert_eq!(got[i].len(), *n);
        assert!(got[i] == body(i, *n), "message {i} ({n} bytes) differs");
    }
    assert_eq!(got[SIZES.len()], format!("frag-{}-end", body(99, 70_000)));
    assert_eq!(got[SIZES.len() + 1], "done");
    // The close frame: the client echoes it, drops the connection and schedules a reconnect.
    c.notice("reconnect notice", |n| matches!(n, FeedNotice::Reconnecting { .. }));
    assert_eq!(
        c.stream_notices(),
        [
            CONNECTED,
            FeedNotice::Disconnected { link: LinkKind::Stream, reason: DisconnectReason::PeerClosed { code: 1000 } },
            FeedNotice::Reconnecting { link: LinkKind::Stream, attempt: 1, delay_ms: 50 },
        ]
    );
    let k = c.feed.counters().clone();
    let t = k.traffic;
    assert_eq!((t.pings_received, t.pongs_sent, t.binary_ignored, t.connects), (2, 2, 1, 1));
    assert_eq!(k.frames, SIZES.len() as u64 + 2);
    drop(c);
    let (path, pongs) = join(server);
    assert_eq!(path, STREAM_PATH);
    assert_eq!(pongs, ["mid", "hello-ping"]);
}

#[test]
fn a_dropped_connection_reconnects_with_backoff_and_delivers_again() {
    let (l, addr) = listener();
    let server = spawn(move || {
        let (mut ws, _) = accept_ws(&l);
        for i in 0..3 {
            ws.send(Message::text(format!("m{i}"))).unwrap();
        }
        drop(ws); // no close frame: a plain TCP close
        let dropped = Instant::now();
        // Second attempt: read the upgrade request, then hang up without answering.
        let mut s = accept_tcp(&l);
        let second = Instant::now();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            req.extend_from_slice(&buf[..n]);
        }
        drop(s);
        let refused = Instant::now();
        let (mut ws, _) = accept_ws(&l);
        let third = Instant::now();
        for i in 3..6 {
            ws.send(Message::text(format!("m{i}"))).unwrap();
        }
        until_closed(&mut ws);
        (second - dropped, third - refused)
    });

    let mut p = params(addr);
    p.reconnect_min_ms = 100;
    let mut c = Client::new(p);
    let got = c.messages(6);
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4", "m5"]);
    let ns = c.stream_notices();
    assert_eq!(ns.len(), 6, "{ns:?}");
    assert_eq!(ns[0], CONNECTED);
    assert!(matches!(
        ns[1],
        FeedNotice::Disconnected {
            reason: DisconnectReason::Eof | DisconnectReason::Io(ErrorKind::ConnectionReset),
            ..
        }
    ));
    assert_eq!(ns[2], FeedNotice::Reconnecting { link: LinkKind::Stream, attempt: 1, delay_ms: 100 });
    assert!(matches!(
        ns[3],
        FeedNotice::ConnectFailed {
            reason: DisconnectReason::Eof | DisconnectReason::Io(ErrorKind::ConnectionReset),
            ..
        }
    ));
    let FeedNotice::Reconnecting { attempt: 2, delay_ms: second_delay, .. } = ns[4] else { panic!("{ns:?}") };
    assert!((100..=200).contains(&second_delay), "{second_delay}");
    assert_eq!(ns[5], CONNECTED);
    let k = c.feed.counters().clone();
    assert_eq!((k.traffic.connects, k.reconnects), (2, 2));
    drop(c);
    let (gap1, gap2) = join(server);
    // Measured by the server, which saw the drop first: the client waited its delays.
    assert!(gap1 >= Duration::from_millis(95), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(second_delay - 5), "{gap2:?} < {second_delay} ms");
}

#[test]
fn a_stall_is_stale_then_fresh_without_a_reconnect() {
    let (l, addr) = listener();
    let server = spawn(move || {
        let (mut ws, _) = accept_ws(&l);
        ws.send(Message::text("before")).unwrap();
        std::thread::sleep(Duration::from_millis(450));
        ws.send(Message::text("after")).unwrap();
        until_closed(&mut ws);
    });
    let mut p = params(addr);
    p.stale_ms = 150;
    let mut c = Client::new(p);
    assert_eq!(c.messages(1), ["before"]);
    let t_before = Instant::now();
    c.notice("stale", |n| *n == FeedNotice::Stale);
    let stale_after = t_before.elapsed();
    assert!(stale_after >= Duration::from_millis(140), "stale after {stale_after:?}");
    assert!(c.feed.is_stale());
    assert!(!c.notices.contains(&FeedNotice::Fresh));
    assert_eq!(c.messages(1), ["after"]);
    c.until("fresh", WAIT, |_, ns| ns.contains(&FeedNotice::Fresh));
    let s = c.notices.iter().position(|n| *n == FeedNotice::Stale).unwrap();
    let f = c.notices.iter().position(|n| *n == FeedNotice::Fresh).unwrap();
    assert!(s < f);
    assert!(!c.feed.is_stale());
    assert_eq!(c.stream_notices(), [CONNECTED], "a stall alone does not reconnect");
    drop(c);
    join(server);
}

#[test]
fn a_silent_connection_is_declared_dead_and_replaced() {
    let (l, addr) = listener();
    let server = spawn(move || {
        // First connection: never answers (reads raw bytes, so no pongs), until the client leaves.
        let (mut ws, _) = accept_ws(&l);
        let opened = Instant::now();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match ws.get_mut().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
        let silent_for = opened.elapsed();
        let (mut ws, _) = accept_ws(&l);
        ws.send(Message::text("alive")).unwrap();
        until_closed(&mut ws);
        (silent_for, client_frames(&raw))
    });
    let mut p = params(addr);
    p.ping_interval_ms = 60;
    p.dead_ms = 300;
    let mut c = Client::new(p);
    assert_eq!(c.messages(1), ["alive"]);
    let ns = c.stream_notices();
    assert_eq!(ns[0], CONNECTED);
    assert_eq!(ns[1], FeedNotice::Disconnected { link: LinkKind::Stream, reason: DisconnectReason::Dead });
    assert_eq!(*ns.last().unwrap(), CONNECTED);
    drop(c);
    let (silent_for, frames) = join(server);
    assert!(silent_for >= Duration::from_millis(290), "{silent_for:?}");
    // Our pings carried 8 bytes (their send time); the goodbye was close 1001 (going away).
    let pings: Vec<_> = frames.iter().filter(|(op, _)| *op == 0x9).collect();
    assert!(pings.len() >= 3 && pings.iter().all(|(_, p)| p.len() == 8), "{frames:?}");
    assert_eq!(frames.last().unwrap(), &(0x8, 1001u16.to_be_bytes().to_vec()));
}

#[test]
fn depth_snapshots_round_trip_over_the_ws_api_with_retries() {
    let (ls, stream_addr) = listener();
    let stream = spawn(move || {
        let (mut ws, _) = accept_ws(&ls);
        ws.send(Message::text("hello")).unwrap();
        until_closed(&mut ws);
    });
    let (la, api_addr) = listener();
    let api = spawn(move || {
        let request = |ws: &mut WebSocket<TcpStream>| -> (String, String, u64) {
            loop {
                match ws.read().unwrap() {
                    Message::Text(t) => {
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                        assert_eq!(v["method"], "depth");
                        let id = v["id"].as_str().expect("string id").to_string();
                        let sym = v["params"]["symbol"].as_str().unwrap().to_string();
                        return (id, sym, v["params"]["limit"].as_u64().unwrap());
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                    m => panic!("unexpected {m:?}"),
                }
            }
        };
        let ok = |id: &str, last: u64| {
            format!(
                r#"{{"id":"{id}","status":200,"result":{{"lastUpdateId":{last},"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}},"rateLimits":[{{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":52}}]}}"#
            )
        };
        // First connection: both requests arrive, then the connection drops unanswered.
        let (mut ws, path) = accept_ws(&la);
        let first = [request(&mut ws), request(&mut ws)];
        drop(ws);
        // Second: the same two again (new ids); answer ETH first, refuse BTC, then the retry.
        let (mut ws, _) = accept_ws(&la);
        let second = [request(&mut ws), request(&mut ws)];
        let (eth, btc) = if second[0].1 == "ETHUSDT" { (&second[0], &second[1]) } else { (&second[1], &second[0]) };
        ws.send(Message::text(ok(&eth.0, 222))).unwrap();
        let err = format!(
            r#"{{"id":"{}","status":400,"error":{{"code":-1121,"msg":"Invalid symbol."}},"rateLimits":[]}}"#,
            btc.0
        );
        ws.send(Message::text(err)).unwrap();
        let retry = request(&mut ws);
        ws.send(Message::text(ok(&retry.0, 111))).unwrap();
        until_closed(&mut ws);
        (path, first, second.clone(), retry)
    });

    let mut p = params(stream_addr);
    p.symbols = vec!["BTCUSDT".into(), "ETHUSDT".into()];
    p.api_url = format!("ws://{api_addr}/ws-api/v3");
    let mut c = Client::new(p);
    c.feed.request_snapshot(SymbolId(0));
    c.feed.request_snapshot(SymbolId(1));
    c.feed.request_snapshot(SymbolId(7)); // unknown: ignored
    let mut snaps = Vec::new();
    let mut sc = DecodeScratch::with_capacity(16);
    let mut on_answer = |got: Option<(FrameKind, &[u8])>, snaps: &mut Vec<_>| {
        if let Some((FrameKind::Snapshot(sym), bytes)) = got {
            let d = match decode::decode(bytes, &mut sc) {
                Ok(Decoded::Snapshot(h)) => Ok((h.last_update_id, sc.bids.len(), sc.asks.len())),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            };
            snaps.push((sym, d));
        }
    };
    let deadline = Instant::now() + WAIT;
    while c.feed.counters().snapshots_requested < 2 {
        assert!(Instant::now() < deadline, "requests not sent: {:?}", c.notices);
        let now = c.now();
        let got = c.feed.poll(now);
        on_answer(got, &mut snaps);
        std::thread::sleep(Duration::from_micros(50));
    }
    // Asking again while a request is in flight adds nothing, not even after its answer.
    c.feed.request_snapshot(SymbolId(1));
    c.until("three snapshot answers", WAIT, |got, _| {
        on_answer(got, &mut snaps);
        snaps.len() == 3
    });
    let quiet = Instant::now() + Duration::from_millis(150);
    c.until("a quiet moment", WAIT, |got, _| {
        on_answer(got, &mut snaps);
        Instant::now() >= quiet
    });
    assert_eq!(
        snaps,
        [(SymbolId(1), Ok((222, 1, 1))), (SymbolId(0), Err(DecodeError::VenueError)), (SymbolId(0), Ok((111, 1, 1))),]
    );
    assert!(c.notices.contains(&FeedNotice::SnapshotRejected { symbol: SymbolId(0), status: 400 }));
    assert!(c.notices.contains(&FeedNotice::Connected { link: LinkKind::Api }));
    assert!(c.notices.iter().any(|n| matches!(n, FeedNotice::Disconnected { link: LinkKind::Api, .. })));
    let k = c.feed.counters().clone();
    // 2 on the first connection, 2 again on the second, 1 retry after the refusal.
    assert_eq!((k.snapshots_requested, k.snapshots_received, k.snapshot_errors), (5, 3, 1));
    drop(c);
    let (path, first, second, retry) = join(api);
    join(stream);
    assert_eq!(path, "/ws-api/v3");
    let mut syms: Vec<_> = first.iter().map(|r| (r.1.as_str(), r.2)).collect();
    syms.sort();
    assert_eq!(syms, [("BTCUSDT", 1000), ("ETHUSDT", 1000)]);
    assert!(second.iter().all(|r| !first.iter().any(|f| f.0 == r.0)), "ids are not reused");
    assert_eq!(retry.1, "BTCUSDT");
}

#[test]
fn malformed_framing_is_a_protocol_error_then_a_reconnect_never_a_panic() {
    let frags: Vec<u8> =
        [frame(0x01, &[b'a'; 30_000]), frame(0x00, &[b'b'; 30_000]), frame(0x80, &[b'c'; 30_000])].concat();
    let cases: Vec<(Vec<u8>, ProtocolError, u16)> = vec![
        (vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2], ProtocolError::MaskedFrame, 1002),
        (vec![0xC1, 0x02, b'h', b'i'], ProtocolError::ReservedBits, 1002),
        (vec![0x83, 0x00], ProtocolError::UnknownOpcode, 1002),
        (frame(0x89, &[0; 126]), ProtocolError::ControlTooLong, 1002),
        (vec![0x09, 0x00], ProtocolError::FragmentedControl, 1002),
        (vec![0x81, 127, 0, 0, 0, 0, 0, 0x10, 0, 0], ProtocolError::FrameTooLarge, 1009),
        (frags, ProtocolError::MessageTooLarge, 1009),
        (frame(0x80, b"x"), ProtocolError::UnexpectedContinuation, 1002),
        ([frame(0x01, b"a"), frame(0x81, b"b")].concat(), ProtocolError::ExpectedContinuation, 1002),
        (vec![0x88, 0x01, 0x03], ProtocolError::BadClose, 1002),
    ];
    let n = cases.len();
    let wire: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
    let (l, addr) = listener();
    let server = spawn(move || {
        let mut codes = vec![];
        for raw in wire {
            let (mut ws, _) = accept_ws(&l);
            ws.get_mut().write_all(&raw).unwrap();
            codes.push(until_closed(&mut ws));
        }
        let (mut ws, _) = accept_ws(&l);
        ws.send(Message::text("ok")).unwrap();
        until_closed(&mut ws);
        codes
    });
    let mut p = params(addr);
    p.max_message = 64 << 10;
    p.reconnect_min_ms = 5;
    p.reconnect_max_ms = 20;
    let mut c = Client::new(p);
    assert_eq!(c.messages(1), ["ok"]);
    let protocol: Vec<_> = c
        .notices
        .iter()
        .filter_map(|n| match n {
            FeedNotice::ProtocolError { link: LinkKind::Stream, kind } => Some(*kind),
            _ => None,
        })
        .collect();
    let want: Vec<_> = cases.iter().map(|c| c.1).collect();
    assert_eq!(protocol, want);
    let disconnects = c
        .notices
        .iter()
        .filter(|n| matches!(n, FeedNotice::Disconnected { reason: DisconnectReason::Protocol(_), .. }))
        .count();
    assert_eq!(disconnects, n);
    let k = c.feed.counters().clone();
    for kind in &want {
        assert_eq!(k.protocol_errors[kind.index()], 1, "{kind:?}");
    }
    assert_eq!(k.errors[DisconnectReason::Protocol(ProtocolError::BadClose).index()], n as u64);
    assert_eq!(k.traffic.connects, n as u64 + 1);
    drop(c);
    let codes = join(server);
    let want_codes: Vec<_> = cases.iter().map(|c| Some(c.2)).collect();
    assert_eq!(codes, want_codes, "close codes the client sent");
}

#[test]
fn a_planned_reconnect_closes_normally_and_opens_a_new_connection() {
    let (l, addr) = listener();
    let server = spawn(move || {
        let (mut ws, _) = accept_ws(&l);
        let opened = Instant::now();
        ws.send(Message::text("first")).unwrap();
        let code = until_closed(&mut ws);
        let age = opened.elapsed();
        let (mut ws, _) = accept_ws(&l);
        ws.send(Message::text("second")).unwrap();
        until_closed(&mut ws);
        (code, age)
    });
    let mut p = params(addr);
    p.max_connection_ms = 300;
    let mut c = Client::new(p);
    assert_eq!(c.messages(2), ["first", "second"]);
    assert_eq!(
        c.stream_notices(),
        [
            CONNECTED,
            FeedNotice::Disconnected { link: LinkKind::Stream, reason: DisconnectReason::Planned },
            FeedNotice::Reconnecting { link: LinkKind::Stream, attempt: 0, delay_ms: 0 },
            CONNECTED,
        ]
    );
    drop(c);
    let (code, age) = join(server);
    assert_eq!(code, Some(1000));
    assert!(age >= Duration::from_millis(290) && age < Duration::from_secs(3), "{age:?}");
}

/// Realistic frames with a sequence number in `"u"`.
fn market_frame(seq: u64) -> String {
    if seq % 10 == 3 {
        let levels: Vec<String> = (0..(seq % 40))
            .map(|i| format!("[\"6183{}.{:02}000000\",\"0.{:08}\"]", i % 10, i, seq * 7 % 1000))
            .collect();
        format!(
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":{seq},"u":{seq},"b":[{}],"a":[]}}}}"#,
            levels.join(",")
        )
    } else if seq % 997 == 5 {
        // Beyond 65535 bytes: the 64-bit length form.
        format!(r#"{{"stream":"btcusdt@trade","data":{{"u":{seq},"pad":"{}"}}}}"#, "p".repeat(70_000))
    } else {
        format!(
            r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{seq},"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}}}"#
        )
    }
}

/// The sequence number of a [`market_frame`], without allocating.
fn seq_of(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(4).position(|w| w == b"\"u\":")? + 4;
    let digits = frame[at..].iter().take_while(|c| c.is_ascii_digit());
    Some(digits.fold(0u64, |a, c| a * 10 + u64::from(c - b'0')))
}

#[test]
fn reading_frames_does_not_allocate_after_the_connection_is_up() {
    const N: u64 = 20_000;
    // Pre-encode the whole session: every 1000th message fragmented, a ping every 250.
    let mut wire = Vec::new();
    let mut sizes = Vec::with_capacity(N as usize);
    for seq in 0..N {
        let m = market_frame(seq);
        sizes.push(m.len());
        if seq % 1000 == 7 {
            let (a, b) = m.as_bytes().split_at(m.len() / 2);
            wire.extend(frame(0x01, a));
            wire.extend(frame(0x89, b"in-between"));
            wire.extend(frame(0x80, b));
        } else {
            wire.extend(frame(0x81, m.as_bytes()));
        }
        if seq % 250 == 0 {
            wire.extend(frame(0x89, &seq.to_be_bytes()));
        }
    }
    let server_pings = N / 250 + N / 1000;
    let bytes = wire.len();
    let (l, addr) = listener();
    let server = spawn(move || {
        let (mut ws, _) = accept_ws(&l);
        ws.get_mut().write_all(&wire).unwrap();
        // Collect the pongs (tungstenite answers the client's own pings meanwhile).
        let mut pongs = 0;
        while pongs < server_pings {
            if let Message::Pong(_) = ws.read().unwrap() {
                pongs += 1;
            }
        }
        ws.send(Message::text("end")).unwrap();
        until_closed(&mut ws);
        pongs
    });

    let mut p = params(addr);
    p.ping_interval_ms = 2; // our pings and their pongs run inside the watched window too
    let mut c = Client::new(p);
    // Warm-up: the connection is set up and the first message read (set-up may allocate).
    assert_eq!(c.messages(1)[0].len(), sizes[0]);
    let mut next = 1u64;
    let mut bad = 0u64;
    let mut ended = false;
    let mut elapsed = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(25);
    let start = Instant::now();
    let before = common::alloc::watch(true);
    // Until every message and the server's "end" are in, and one of our own pings came back.
    loop {
        let now = c.now();
        match c.feed.poll(now) {
            Some((kind, m)) => {
                if m == b"end" {
                    ended = true;
                } else if kind != FrameKind::Stream || seq_of(m) != Some(next) || m.len() != sizes[next as usize] {
                    bad += 1;
                } else {
                    next += 1;
                    if next == N {
                        elapsed = start.elapsed();
                    }
                }
            }
            None => {
                if ended && c.feed.counters().traffic.pongs_received > 0 {
                    break;
                }
                if Instant::now() >= deadline {
                    common::alloc::watch(false);
                    panic!("timed out at message {next}: {:?}", c.feed.counters());
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
    let allocs = common::alloc::watch(false) - before;
    assert_eq!((next, bad), (N, 0));
    let k = c.feed.counters().clone();
    eprintln!(
        "ws feed over loopback: {} messages, {:.1} MB in {elapsed:?} ({:.0} msg/s, server writing meanwhile); pings sent {}, \
         pongs received {}, rtt {} ns",
        N - 1,
        bytes as f64 / 1e6,
        (N - 1) as f64 / elapsed.as_secs_f64(),
        k.traffic.pings_sent,
        k.traffic.pongs_received,
        k.traffic.rtt_ns
    );
    assert_eq!(allocs, 0, "the feed allocated {allocs} times while reading {N} messages");
    assert_eq!(k.traffic.pongs_sent, server_pings);
    assert!(k.traffic.pings_sent > 0);
    drop(c);
    assert_eq!(join(server), server_pings);
}

// ---- TLS ----------------------------------------------------------------------------------------

/// A private CA and a leaf for `localhost` and 127.0.0.1 (P-256; valid 2020–2120), made with
/// `openssl ca` for these tests only.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBYDCCAQagAwIBAgICEAEwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLaGZ0IHRl
c3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBYxFDASBgNV
BAMMC2hmdCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0+KDIbsK
Lzz68RyPPsyMm4BqBjZTKZ4ecySiRMdCEKNqs25tyB3f6xWVCc9YYxJlCLNOiveS
aZgrIfiFYaT3naNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYw
HQYDVR0OBBYEFOF8wXcfhW4BUuAgB+NiuLXZUXgQMAoGCCqGSM49BAMCA0gAMEUC
IQD3B/BYGr8jXuctoWKswqw5Bcpzb2SNNSqHUV8hmBWLPgIgKWVxEs7RymZjlR4w
pbIdxhUK6oBwbf9TYCEUkX+FjEo=
-----END CERTIFICATE-----
";
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBrzCCAVWgAwIBAgICEAIwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLaGZ0IHRl
c3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBQxEjAQBgNV
BAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIAwzfgx5TPI
Ipqvb2f/1f2eZKpbcTjWwUNHDA/aQM9AMwk0zCtCj///FvmI96AL4htxr3x/VoLW
hRwoFxXDuOijgZIwgY8wDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYD
VR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMB0G
A1UdDgQWBBSP03cj0brnLWgjr6cR8UOTfzFrsTAfBgNVHSMEGDAWgBThfMF3H4Vu
AVLgIAfjYri12VF4EDAKBggqhkjOPQQDAgNIADBFAiEA/2maStuHSAoEZXCPGJ8W
2/WFpfr9v1QdjhAnB1jkYMECIFZlPLPatwlMfH4eTN1gYEqyvlWCy8GRcRfEGj2t
uRSI
-----END CERTIFICATE-----
";
const LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgP2u2Nn4tpSiXxxYR
9KTM3entcLlRP3ef+QyPNUrifFqhRANCAASAMM34MeUzyCKar29n/9X9nmSqW3E4
1sFDRwwP2kDPQDMJNMwrQo///xb5iPegC+Ibca98f1aC1oUcKBcVw7jo
-----END PRIVATE KEY-----
";

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(LEAF_PEM.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(cfg)
}

fn tls_accept(l: &TcpListener) -> Result<WebSocket<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>, String> {
    let s = accept_tcp(l);
    let tls = rustls::ServerConnection::new(tls_server_config()).unwrap();
    tungstenite::accept(rustls::StreamOwned::new(tls, s)).map_err(|e| e.to_string())
}

#[test]
fn wss_round_trip_with_a_private_ca_over_a_resolved_name() {
    const N: usize = 2_000;
    let (l, addr) = listener();
    let server = spawn(move || {
        let mut ws = tls_accept(&l).expect("tls upgrade");
        for i in 0..N {
            // One TLS record per message, as a venue pushing updates sends them.
            ws.send(Message::text(market_frame(i as u64))).unwrap();
        }
        ws.write(Message::text(body(1, 100_000))).unwrap();
        ws.send(Message::Ping(b"tls-ping".to_vec().into())).unwrap();
        let pong = loop {
            if let Message::Pong(p) = ws.read().unwrap() {
                break p.to_vec();
            }
        };
        ws.close(None).unwrap();
        until_closed(&mut ws);
        pong
    });
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(CA_PEM.as_bytes()).unwrap()).unwrap();
    let mut p = params(addr);
    // A host name: resolved on a helper thread (and `localhost` may list ::1 first, where
    // nothing listens: the next address is tried).
    p.url = format!("wss://localhost:{}", addr.port());
    p.tls = Some(conn::tls_config_with_roots(roots).unwrap());
    let mut c = Client::new(p);
    assert_eq!(c.messages(1)[0], market_frame(0));
    let (mut next, mut big) = (1usize, false);
    let before = common::alloc::watch(true);
    c.until("tls messages", WAIT, |got, _| {
        if let Some((_, m)) = got {
            if next < N {
                assert_eq!(seq_of(m), Some(next as u64));
                next += 1;
            } else {
                big = m.len() == 100_000;
            }
        }
        big
    });
    let allocs = common::alloc::watch(false) - before;
    eprintln!(
        "wss: {allocs} allocations over {} messages ({:.2}/message; rustls 0.23 allocates per TLS record)",
        N,
        allocs as f64 / N as f64
    );
    c.until("close", WAIT, |_, ns| ns.iter().any(|n| matches!(n, FeedNotice::Disconnected { .. })));
    assert_eq!(
        c.stream_notices()[..2],
        [
            CONNECTED,
            FeedNotice::Disconnected { link: LinkKind::Stream, reason: DisconnectReason::PeerClosed { code: 1005 } }
        ]
    );
    assert_eq!(c.feed.counters().traffic.pongs_sent, 1);
    drop(c);
    assert_eq!(join(server), b"tls-ping");
}

#[test]
fn an_untrusted_certificate_fails_the_connection() {
    let (l, addr) = listener();
    let server = spawn(move || tls_accept(&l).err());
    let mut p = params(addr);
    p.url = format!("wss://127.0.0.1:{}", addr.port());
    let mut c = Client::new(p); // Mozilla's roots: our private CA is not among them
    c.notice("connect failure", |n| matches!(n, FeedNotice::ConnectFailed { .. }));
    assert_eq!(
        c.stream_notices()[0],
        FeedNotice::ConnectFailed { link: LinkKind::Stream, reason: DisconnectReason::TlsCertificate }
    );
    assert!(!c.feed.is_connected());
    drop(c);
    assert!(join(server).is_some(), "the server saw the handshake fail");
}
