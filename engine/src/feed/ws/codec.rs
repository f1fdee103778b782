//! RFC 6455 framing on preallocated buffers: [`Reader`] parses server frames out of a receive
//! buffer and assembles fragmented messages; [`Writer`] encodes masked client frames into a send
//! buffer.
//!
//! Hot thread. Allocation: both buffers are allocated once, at construction, at their full size
//! (zeroed, so the OS maps pages only when first touched), and never grow; parsing, assembling,
//! encoding and compacting only move bytes within them.
//!
//! What the reader enforces (any violation is a [`ProtocolError`], after which the connection
//! must be dropped): no reserved bits (we negotiate no extension); server frames unmasked;
//! known opcodes; control frames final and at most 125 bytes; no continuation outside a
//! fragmented message and no new data frame inside one; a frame's payload at most `max` bytes
//! and an assembled message at most `max` bytes; a close payload of 0 or ≥ 2 bytes. Text is not
//! UTF-8-checked here: the JSON decoder rejects invalid UTF-8 anyway.

use super::ProtocolError;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER: usize = 14;
/// Longest control-frame payload.
pub const MAX_CONTROL: usize = 125;
/// The receive buffer holds a largest frame plus this much, so a read always has room.
const READ_SLACK: usize = 64 * 1024;
/// Compact the receive buffer when less than this is free at its tail.
const MIN_READ: usize = 16 * 1024;
/// Also compact once this far in if little is pending, so a busy stream keeps reusing the
/// buffer's first, cache-warm bytes instead of sweeping all of it.
const COMPACT_AT: usize = 64 * 1024;
const SMALL_PENDING: usize = 4 * 1024;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    /// Header length, bytes (2, 4 or 10: server frames carry no mask).
    pub len: usize,
    /// Payload length, bytes (≤ the cap given to [`parse_header`]).
    pub payload: usize,
}

/// Parses the header of a server frame at the start of `b`. `Ok(None)`: not all of it is here.
/// Checks everything that can be checked from the header alone.
#[inline]
pub fn parse_header(b: &[u8], max_payload: usize) -> Result<Option<Header>, ProtocolError> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG if !fin => return Err(ProtocolError::FragmentedControl),
        OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err(ProtocolError::UnknownOpcode),
    }
    if b1 & 0x80 != 0 {
        return Err(ProtocolError::MaskedFrame);
    }
    let (payload, len) = match b1 & 0x7F {
        126 => match b.get(2..4) {
            Some(x) => (u64::from(u16::from_be_bytes([x[0], x[1]])), 4),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(x) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(x);
                (u64::from_be_bytes(a), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= OP_CLOSE && payload > MAX_CONTROL as u64 {
        return Err(ProtocolError::ControlTooLong);
    }
    if payload > max_payload as u64 {
        return Err(ProtocolError::FrameTooLarge);
    }
    Ok(Some(Header { fin, opcode, len, payload: payload as usize }))
}

/// XORs `buf` with the masking key (RFC 6455 §5.3), key byte `i % 4` on byte `i`.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let k = u32::from_ne_bytes(key);
    let mut chunks = buf.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ k;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= m;
    }
}

/// Encodes one final, masked client frame into `out`. Returns its length, or `None` (and
/// writes nothing) when `out` is too short.
#[inline]
pub fn encode_frame(out: &mut [u8], opcode: u8, payload: &[u8], key: [u8; 4]) -> Option<usize> {
    let n = payload.len();
    let hlen = match n {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    let total = hlen + 4 + n;
    let out = out.get_mut(..total)?;
    out[0] = 0x80 | (opcode & 0x0F);
    match hlen {
        2 => out[1] = 0x80 | n as u8,
        4 => {
            out[1] = 0x80 | 126;
            out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out[1] = 0x80 | 127;
            out[2..10].copy_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out[hlen..hlen + 4].copy_from_slice(&key);
    let body = &mut out[hlen + 4..];
    body.copy_from_slice(payload);
    apply_mask(body, key);
    Some(total)
}

/// Where a complete text message's payload lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    /// `start..end` of the receive buffer (an unfragmented message).
    Buf(usize, usize),
    /// The first `len` bytes of the assembly buffer (a fragmented message).
    Assembled(usize),
}

/// What the next complete frame means to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete text message.
    Text(Loc),
    /// A complete binary message (counted and dropped: Binance sends none).
    Binary,
    /// A ping; its payload is `start..end` of the receive buffer (answer before reading on).
    Ping(usize, usize),
    /// A pong; its payload is `start..end` of the receive buffer.
    Pong(usize, usize),
    /// A close frame with its status code (1005 when it carried none).
    Close(u16),
}

/// The receive side of one connection.
pub struct Reader {
    /// Bytes `start..end` are received and not yet parsed.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Fragmented-message assembly.
    msg: Box<[u8]>,
    msg_len: usize,
    /// Opcode of the fragmented message in progress.
    msg_op: Option<u8>,
    max: usize,
}

impl core::fmt::Debug for Reader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &(self.end - self.start))
            .field("assembling", &self.msg_op.map(|_| self.msg_len))
            .field("max", &self.max)
            .finish()
    }
}

impl Reader {
    /// A reader for frames and messages of at most `max` payload bytes. Allocates
    /// `2 · max + 64 KiB` (zeroed: untouched pages cost no memory).
    pub fn new(max: usize) -> Self {
        Self {
            buf: vec![0u8; max + MAX_HEADER + READ_SLACK].into_boxed_slice(),
            start: 0,
            end: 0,
            msg: vec![0u8; max].into_boxed_slice(),
            msg_len: 0,
            msg_op: None,
            max,
        }
    }

    /// Forgets everything (a new connection).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.msg_len = 0;
        self.msg_op = None;
    }

    /// Room to receive into, compacting first when the tail is short. Invalidates every
    /// [`Loc`] and payload range handed out before.
    #[inline]
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < MIN_READ
            || (self.start >= COMPACT_AT && self.end - self.start <= SMALL_PENDING)
        {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were received into [`Reader::spare`].
    #[inline]
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Received, unparsed bytes (the HTTP upgrade response is read through this).
    pub fn unparsed(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops `n` unparsed bytes (the upgrade response's head).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// The bytes of `start..end` of the receive buffer, as handed out in an [`Event`].
    #[inline]
    pub fn range(&self, start: usize, end: usize) -> &[u8] {
        &self.buf[start..end]
    }

    /// A message's payload.
    #[inline]
    pub fn message(&self, loc: Loc) -> &[u8] {
        match loc {
            Loc::Buf(a, b) => &self.buf[a..b],
            Loc::Assembled(n) => &self.msg[..n],
        }
    }

    /// The next event from the buffered bytes, `Ok(None)` when more bytes are needed.
    /// Fragments are absorbed into the assembly buffer without an event.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        loop {
            let avail = &self.buf[self.start..self.end];
            let Some(h) = parse_header(avail, self.max)? else {
                return Ok(None);
            };
            if avail.len() - h.len < h.payload {
                return Ok(None);
            }
            let (p0, p1) = (self.start + h.len, self.start + h.len + h.payload);
            self.start = p1;
            match h.opcode {
                OP_TEXT | OP_BINARY => {
                    if self.msg_op.is_some() {
                        return Err(ProtocolError::ExpectedContinuation);
                    }
                    if h.fin {
                        return Ok(Some(if h.opcode == OP_TEXT {
                            Event::Text(Loc::Buf(p0, p1))
                        } else {
                            Event::Binary
                        }));
                    }
                    self.msg[..h.payload].copy_from_slice(&self.buf[p0..p1]);
                    self.msg_len = h.payload;
                    self.msg_op = Some(h.opcode);
                }
                OP_CONTINUATION => {
                    let Some(op) = self.msg_op else {
                        return Err(ProtocolError::UnexpectedContinuation);
                    };
                    let n = self.msg_len + h.payload;
                    if n > self.max {
                        return Err(ProtocolError::MessageTooLarge);
                    }
                    self.msg[self.msg_len..n].copy_from_slice(&self.buf[p0..p1]);
                    self.msg_len = n;
                    if h.fin {
                        self.msg_op = None;
                        return Ok(Some(if op == OP_TEXT { Event::Text(Loc::Assembled(n)) } else { Event::Binary }));
                    }
                }
                OP_PING => return Ok(Some(Event::Ping(p0, p1))),
                OP_PONG => return Ok(Some(Event::Pong(p0, p1))),
                _ => {
                    // OP_CLOSE (parse_header admits no other opcode).
                    return match h.payload {
                        0 => Ok(Some(Event::Close(1005))),
                        1 => Err(ProtocolError::BadClose),
                        _ => Ok(Some(Event::Close(u16::from_be_bytes([self.buf[p0], self.buf[p0 + 1]])))),
                    };
                }
            }
        }
    }
}

/// The send side of one connection: bytes `start..end` are queued, not yet written.
pub struct Writer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl core::fmt::Debug for Writer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer").field("queued", &(self.end - self.start)).field("cap", &self.buf.len()).finish()
    }
}

impl Writer {
    pub fn new(cap: usize) -> Self {
        Self { buf: vec![0u8; cap].into_boxed_slice(), start: 0, end: 0 }
    }

    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Room for `n` more bytes at the tail, compacting if that makes room.
    fn room(&mut self, n: usize) -> bool {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= n {
            return true;
        }
        if self.buf.len() - (self.end - self.start) < n {
            return false;
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        true
    }

    /// Queues raw bytes (the upgrade request). `false`: no room, nothing queued.
    pub fn queue_raw(&mut self, bytes: &[u8]) -> bool {
        if !self.room(bytes.len()) {
            return false;
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        true
    }

    /// Queues one masked frame. `false`: no room, nothing queued.
    #[inline]
    pub fn queue_frame(&mut self, opcode: u8, payload: &[u8], key: [u8; 4]) -> bool {
        if !self.room(payload.len() + MAX_HEADER) {
            return false;
        }
        match encode_frame(&mut self.buf[self.end..], opcode, payload, key) {
            Some(n) => {
                self.end += n;
                true
            }
            None => false,
        }
    }

    /// Queued bytes.
    #[inline]
    pub fn queued(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// `n` queued bytes were written.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame: unmasked, with the given first byte.
    fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
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

    fn feed(r: &mut Reader, bytes: &[u8]) {
        let spare = r.spare();
        spare[..bytes.len()].copy_from_slice(bytes);
        r.filled(bytes.len());
    }

    #[test]
    fn headers_at_every_length_boundary() {
        for n in [0usize, 1, 125, 126, 127, 65535, 65536, 70_000] {
            let f = server_frame(0x81, &vec![b'x'; n]);
            let h = parse_header(&f, 1 << 20).unwrap().unwrap();
            assert_eq!((h.fin, h.opcode, h.payload), (true, OP_TEXT, n));
            assert_eq!(h.len + n, f.len());
            // Every strict prefix of the header is "need more".
            for cut in 0..h.len {
                assert_eq!(parse_header(&f[..cut], 1 << 20), Ok(None), "n={n} cut={cut}");
            }
        }
    }

    #[test]
    fn header_violations_are_protocol_errors() {
        use ProtocolError::*;
        let cases: [(&[u8], ProtocolError); 8] = [
            (&[0xC1, 0x00], ReservedBits),
            (&[0xA1, 0x00], ReservedBits),
            (&[0x83, 0x00], UnknownOpcode),
            (&[0x8B, 0x00], UnknownOpcode),
            (&[0x81, 0x80, 1, 2, 3, 4], MaskedFrame),
            (&[0x09, 0x00], FragmentedControl),
            (&[0x89, 126, 0, 126], ControlTooLong),
            (&[0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], FrameTooLarge),
        ];
        for (b, want) in cases {
            assert_eq!(parse_header(b, 1 << 20), Err(want), "{b:?}");
        }
        assert_eq!(parse_header(&[0x81, 126, 0x10, 0x00], 4095), Err(FrameTooLarge));
        assert!(parse_header(&[0x81, 126, 0x10, 0x00], 4096).unwrap().is_some());
    }

    #[test]
    fn encoded_frames_are_masked_and_unmask_to_the_payload() {
        for n in [0usize, 5, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let key = [0x12, 0x34, 0x56, 0x78];
            let mut out = vec![0u8; n + MAX_HEADER];
            let len = encode_frame(&mut out, OP_TEXT, &payload, key).unwrap();
            assert_eq!(out[0], 0x81);
            assert_ne!(out[1] & 0x80, 0, "mask bit");
            let hlen = len - n - 4;
            assert_eq!(&out[hlen..hlen + 4], &key);
            let mut body = out[hlen + 4..len].to_vec();
            apply_mask(&mut body, key);
            assert_eq!(body, payload);
            // Re-read with the header parser (as a server would, mask bit aside).
            out[1] &= 0x7F;
            let h = parse_header(&out[..len], 1 << 20).unwrap().unwrap();
            assert_eq!((h.len, h.payload), (hlen, n));
            assert_eq!(encode_frame(&mut out[..len - 1], OP_TEXT, &payload, key), None);
        }
        // The RFC's example: "Hello" masked with 37 fa 21 3d.
        let mut out = [0u8; 16];
        let len = encode_frame(&mut out, OP_TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d]).unwrap();
        assert_eq!(&out[..len], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn reader_splits_coalesced_frames_and_waits_for_partial_ones() {
        let mut r = Reader::new(1 << 16);
        let mut bytes = server_frame(0x81, b"one");
        bytes.extend(server_frame(0x89, b"pi"));
        bytes.extend(server_frame(0x81, &[b'z'; 300]));
        let (head, tail) = bytes.split_at(bytes.len() - 10);
        feed(&mut r, head);
        let Some(Event::Text(l)) = r.next_event().unwrap() else { panic!() };
        assert_eq!(r.message(l), b"one");
        let Some(Event::Ping(a, b)) = r.next_event().unwrap() else { panic!() };
        assert_eq!(r.range(a, b), b"pi");
        assert_eq!(r.next_event(), Ok(None));
        feed(&mut r, tail);
        let Some(Event::Text(l)) = r.next_event().unwrap() else { panic!() };
        assert_eq!(r.message(l), &[b'z'; 300][..]);
        assert_eq!(r.next_event(), Ok(None));
    }

    #[test]
    fn fragments_assemble_around_control_frames_within_the_cap() {
        let mut r = Reader::new(10);
        let mut bytes = server_frame(0x01, b"abc");
        bytes.extend(server_frame(0x8A, b"po"));
        bytes.extend(server_frame(0x00, b"def"));
        bytes.extend(server_frame(0x80, b"gh"));
        feed(&mut r, &bytes);
        let Some(Event::Pong(a, b)) = r.next_event().unwrap() else { panic!() };
        assert_eq!(r.range(a, b), b"po");
        let Some(Event::Text(l)) = r.next_event().unwrap() else { panic!() };
        assert_eq!((l, r.message(l)), (Loc::Assembled(8), &b"abcdefgh"[..]));

        let mut bytes = server_frame(0x02, b"abcdef");
        bytes.extend(server_frame(0x80, b"ghijk"));
        feed(&mut r, &bytes);
        assert_eq!(r.next_event(), Err(ProtocolError::MessageTooLarge));

        for (bytes, want) in [
            (server_frame(0x80, b"x"), ProtocolError::UnexpectedContinuation),
            ([server_frame(0x01, b"x"), server_frame(0x81, b"y")].concat(), ProtocolError::ExpectedContinuation),
            (server_frame(0x88, b"x"), ProtocolError::BadClose),
        ] {
            let mut r = Reader::new(10);
            feed(&mut r, &bytes);
            assert_eq!(r.next_event(), Err(want));
        }
        let mut r = Reader::new(10);
        feed(&mut r, &[server_frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e']), server_frame(0x88, b"")].concat());
        assert_eq!(r.next_event(), Ok(Some(Event::Close(1000))));
        assert_eq!(r.next_event(), Ok(Some(Event::Close(1005))));
        let mut r = Reader::new(10);
        feed(&mut r, &server_frame(0x82, b"bin"));
        assert_eq!(r.next_event(), Ok(Some(Event::Binary)));
    }

    #[test]
    fn reader_compacts_so_a_largest_frame_always_fits() {
        let max = 100_000;
        let mut r = Reader::new(max);
        let big = server_frame(0x81, &vec![b'q'; max]);
        for _ in 0..5 {
            // Deliver in 10 KiB reads, as a socket would.
            let mut got = None;
            for chunk in big.chunks(10 * 1024) {
                let spare = r.spare();
                assert!(spare.len() >= chunk.len(), "no room: {}", spare.len());
                spare[..chunk.len()].copy_from_slice(chunk);
                r.filled(chunk.len());
                if let Some(Event::Text(l)) = r.next_event().unwrap() {
                    got = Some(r.message(l).len());
                }
            }
            assert_eq!(got, Some(max));
            // A small frame in between shifts the alignment.
            feed(&mut r, &server_frame(0x81, b"s"));
            assert!(matches!(r.next_event(), Ok(Some(Event::Text(_)))));
        }
    }

    #[test]
    fn a_busy_stream_of_small_frames_stays_in_the_buffer_head() {
        let mut r = Reader::new(4 << 20);
        let stream: Vec<u8> = (0..20_000).flat_map(|i| server_frame(0x81, &[b'a' + (i % 26) as u8; 150])).collect();
        let mut n = 0;
        let mut high = 0;
        // Reads that end mid-frame, as a socket's do.
        for chunk in stream.chunks(1_000) {
            feed(&mut r, chunk);
            high = high.max(r.end);
            while let Some(Event::Text(l)) = r.next_event().unwrap() {
                assert_eq!(r.message(l)[0], b'a' + (n % 26) as u8);
                n += 1;
            }
        }
        assert_eq!(n, 20_000);
        assert!(high <= COMPACT_AT + SMALL_PENDING + 1_000, "the write position reached {high}");
    }

    #[test]
    fn writer_queues_until_full_and_compacts() {
        let mut w = Writer::new(64);
        assert!(w.queue_frame(OP_PING, b"0123456789", [1, 2, 3, 4]));
        assert_eq!(w.queued().len(), 16);
        assert!(w.queue_frame(OP_PONG, &[7; 30], [1, 2, 3, 4]));
        assert_eq!(w.queued().len(), 52);
        assert!(!w.queue_frame(OP_PONG, &[7; 30], [1, 2, 3, 4]), "no room");
        assert_eq!(w.queued().len(), 52);
        w.advance(16);
        assert!(w.queue_raw(&[9; 12]));
        assert_eq!(w.queued().len(), 48);
        assert_eq!(w.queued()[36..], [9; 12]);
        w.advance(48);
        assert!(w.is_empty());
        assert!(w.queue_raw(&[1; 64]));
    }
}
