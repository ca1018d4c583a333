//! The null SFU: the physical floor of forwarding on this machine with the same stack.
//!
//! It speaks just enough of Galène's protocol for the generator (handshake, join, request,
//! offer/answer/ice for one camera per client) and does nothing else: every peer is a str0m
//! `Rtc` on one UDP socket, and each RTP packet a publisher sends is decrypted once and
//! re-encrypted and sent once per subscriber of that stream. No keyframe logic, no rate
//! control, no statistics, no permissions; NACKs are answered by str0m's own send buffers.
//! str0m is configured as sfubox configures it (ICE-lite, shared certificate, same send rings).
//!
//! In raw mode (`loadgen raw-relay`, the benchmark's `raw` target) the same server has no
//! WebRTC stack on the packet path: str0m still does ICE-lite, DTLS and RTCP, but once a
//! peer's DTLS handshake has exported its SRTP keys ([`crate::raw_srtp`]), each RTP packet is
//! decrypted once with aws-lc-rs, its header rewritten (the receiver's SSRC and payload type, a
//! mid extension) and sealed once per receiver into one buffer that goes out in `sendmmsg`
//! batches of 32. No NACK history, no RTCP for what it forwards: the floor of the machine.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{self, Message, WebSocket};
use polling::{Events, PollMode, Poller};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::raw_srtp::{self, KeySlot, SrtpRx, SrtpTx};

/// What a peer is for.
enum Role {
    /// Receives a client's camera: index into `streams`.
    Up(usize),
    /// Sends a stream to a client: mids and payload types of (audio, video).
    Down {
        audio: (Mid, Option<u8>),
        video: (Mid, Option<u8>),
        pending: Option<SdpPendingOffer>,
    },
}

struct NullPeer {
    rtc: Rtc,
    deadline: Instant,
    role: Role,
    /// In `dirty`.
    dirty: bool,
    /// Raw mode: where the DTLS session leaves its SRTP keys.
    keys: Option<Arc<KeySlot>>,
    /// Raw mode: the SRTP contexts once keyed.
    srtp: RawSrtp,
    /// The remote address (learned from its first datagram).
    remote: Option<SocketAddr>,
    /// Raw mode, up peers: payload type → audio or not.
    pt_audio: Vec<(u8, bool)>,
    /// Raw mode, down peers: (SSRC, payload type, mid, rollover base) for audio and video.
    raw_out: [Option<RawOut>; 2],
}

/// A peer's SRTP, in raw mode.
enum RawSrtp {
    /// Not keyed yet (or not raw mode).
    Pending,
    /// Keyed: RTP bypasses str0m.
    Ready(Box<(SrtpRx, SrtpTx)>),
    /// A profile the raw path does not implement: str0m keeps the packets.
    Unsupported,
}

/// How a down track's packets are written in raw mode.
#[derive(Clone)]
struct RawOut {
    ssrc: u32,
    pt: u8,
    mid: heapless::Vec<u8, 16>,
    /// The incoming rollover counter at the first packet (receivers start at 0).
    roc_base: Option<u32>,
}

struct Stream {
    id: String,
    owner: usize,
    /// Down peers.
    downs: Vec<usize>,
}

struct Conn {
    ws: WebSocket<TcpStream>,
    id: String,
    requested: bool,
    /// Down stream id → peer.
    peers: HashMap<String, usize>,
    alive: bool,
}

/// The server state.
struct NullSfu {
    // First, so it is dropped before the sockets registered in it.
    poller: Poller,
    listener: TcpListener,
    socket: UdpSocket,
    local: SocketAddr,
    crypto: Arc<str0m::config::CryptoProvider>,
    dtls_cert: str0m::config::DtlsCert,
    peers: Vec<NullPeer>,
    by_addr: HashMap<SocketAddr, usize>,
    streams: Vec<Stream>,
    conns: Vec<Conn>,
    scratch: Vec<RtpPacket>,
    /// Receivers written to since the last flush.
    dirty: Vec<usize>,
    /// Datagrams to send, handed to the kernel together (`sendmmsg`, as sfubox does).
    outbox: Vec<(SocketAddr, Vec<u8>)>,
    send_headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    /// Raw mode.
    raw: bool,
    /// Raw mode: sealed packets back to back, and where each goes.
    raw_bytes: Vec<u8>,
    raw_out: Vec<(SocketAddr, Range<usize>)>,
}

/// Datagrams per `sendmmsg`.
const SEND_BATCH: usize = 32;
/// The mid header extension's id in sfubox's sending extension map.
const MID_EXTENSION_ID: u8 = 4;

/// Serves Galène's `/ws` on `http` and media on `udp` until killed.
pub fn serve(http: SocketAddr, udp: SocketAddr, raw: bool) -> Result<(), String> {
    let listener = TcpListener::bind(http).map_err(|e| format!("{http}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind(udp).map_err(|e| format!("{udp}: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let poller = Poller::new().map_err(|e| e.to_string())?;
    // SAFETY (both): the sockets live in `sfu` next to the poller, which is dropped first
    // (declared first), and they are never replaced.
    unsafe {
        poller
            .add_with_mode(&socket, polling::Event::readable(UDP_KEY), PollMode::Level)
            .map_err(|e| e.to_string())?;
        poller
            .add_with_mode(
                &listener,
                polling::Event::readable(LISTENER_KEY),
                PollMode::Level,
            )
            .map_err(|e| e.to_string())?;
    }
    let crypto = Arc::new(if raw {
        raw_srtp::tapping_provider()
    } else {
        str0m::crypto::from_feature_flags()
    });
    let dtls_cert = crypto
        .dtls_provider
        .generate_certificate()
        .ok_or("no DTLS certificate")?;
    let mut sfu = NullSfu {
        poller,
        listener,
        socket,
        local,
        crypto,
        dtls_cert,
        peers: Vec::new(),
        by_addr: HashMap::new(),
        streams: Vec::new(),
        conns: Vec::new(),
        scratch: Vec::new(),
        dirty: Vec::new(),
        outbox: Vec::new(),
        send_headers: nix::sys::socket::MultiHeaders::preallocate(SEND_BATCH, None),
        raw,
        raw_bytes: Vec::with_capacity(SEND_BATCH * 1300),
        raw_out: Vec::with_capacity(SEND_BATCH),
    };
    let mode = if raw { "raw-relay" } else { "null-sfu" };
    eprintln!("{mode}: http {http}, media {local}");
    let mut buf = vec![0u8; 2048];
    let mut events = Events::new();
    let mut ready = Vec::new();
    let mut next_timers = Instant::now();
    loop {
        // Everything waiting on the socket first, then one flush per touched receiver.
        loop {
            match sfu.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Some(data) = buf.get_mut(..n) {
                        sfu.receive(from, data);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        sfu.flush();
        sfu.send_raw();
        let now = Instant::now();
        if now >= next_timers {
            next_timers = now + Duration::from_millis(5);
            sfu.timers(now);
        }
        sfu.send_outbox();
        events.clear();
        let wait = next_timers.saturating_duration_since(Instant::now());
        sfu.poller
            .wait(&mut events, Some(wait))
            .map_err(|e| e.to_string())?;
        ready.clear();
        ready.extend(events.iter().map(|e| e.key));
        for &key in &ready {
            match key {
                UDP_KEY => {}
                LISTENER_KEY => sfu.accept(),
                k => sfu.signalling(k - FIRST_CONN_KEY),
            }
        }
        sfu.send_outbox();
    }
}

/// Poller keys: the media socket, the listener, then connection c at FIRST_CONN_KEY + c.
const UDP_KEY: usize = 0;
const LISTENER_KEY: usize = 1;
const FIRST_CONN_KEY: usize = 2;

impl NullSfu {
    fn receive(&mut self, from: SocketAddr, data: &mut [u8]) {
        if self.raw
            && let Some(&index) = self.by_addr.get(&from)
            && is_rtp(data)
            && self.raw_forward(index, data)
        {
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, from, self.local, data) else {
            return;
        };
        let input = Input::Receive(Instant::now(), receive);
        let index = match self.by_addr.get(&from) {
            Some(&i) => i,
            None => {
                let Some(i) = self.peers.iter().position(|p| p.rtc.accepts(&input)) else {
                    return;
                };
                self.by_addr.insert(from, i);
                self.peers[i].remote = Some(from); // i comes from position(): in range
                i
            }
        };
        let Some(peer) = self.peers.get_mut(index) else {
            return;
        };
        if peer.rtc.handle_input(input).is_ok() {
            self.drain(index);
        }
    }

    fn timers(&mut self, now: Instant) {
        for i in 0..self.peers.len() {
            if self.peers[i].deadline <= now {
                let _ = self.peers[i].rtc.handle_input(Input::Timeout(now));
                self.drain(i);
            }
        }
    }

    /// Sends the peer's output; forwards what a publisher sent.
    fn drain(&mut self, index: usize) {
        let mut packets = std::mem::take(&mut self.scratch);
        let peer = &mut self.peers[index]; // callers pass a valid index
        let mut due_rounds = 0;
        loop {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    // str0m releases queued RTP on a timeout that is already due.
                    let now = Instant::now();
                    if at <= now && due_rounds < 4 {
                        due_rounds += 1;
                        let _ = peer.rtc.handle_input(Input::Timeout(now));
                        continue;
                    }
                    peer.deadline = at;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    self.outbox.push((t.destination, t.contents.into()));
                }
                Ok(Output::Event(Event::RtpPacket(p))) => packets.push(*p),
                Ok(Output::Event(_)) => {}
                Err(_) => {
                    peer.deadline = Instant::now() + Duration::from_secs(1);
                    break;
                }
            }
        }
        if let Role::Up(stream) = peer.role {
            for p in packets.drain(..) {
                self.forward(index, stream, p);
            }
        }
        packets.clear();
        self.scratch = packets;
    }

    fn forward(&mut self, up: usize, stream: usize, packet: RtpPacket) {
        let kind = {
            let rtc = &mut self.peers[up].rtc; // up is a valid peer index
            let mid = rtc
                .direct_api()
                .stream_rx(&packet.header.ssrc)
                .map(|s| s.mid());
            match mid.and_then(|m| rtc.media(m)).map(|m| m.kind()) {
                Some(k) => k,
                None => return,
            }
        };
        let Some(s) = self.streams.get(stream) else {
            return;
        };
        let now = Instant::now();
        for di in 0..s.downs.len() {
            let d = self.streams[stream].downs[di]; // di < len
            let peer = &mut self.peers[d]; // downs hold valid peer indices
            let Role::Down { audio, video, .. } = &mut peer.role else {
                continue;
            };
            let (codec, slot) = match kind {
                MediaKind::Audio => (Codec::Opus, audio),
                MediaKind::Video => (Codec::Vp8, video),
            };
            let mid = slot.0;
            let pt = match slot.1 {
                Some(pt) => pt,
                None => {
                    let Some(pt) = peer
                        .rtc
                        .codec_config()
                        .find(|p| p.spec().codec == codec)
                        .map(|p| *p.pt())
                    else {
                        continue;
                    };
                    slot.1 = Some(pt);
                    pt
                }
            };
            let mut api = peer.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            tx.write_rtp(
                RtpWrite::new(
                    pt.into(),
                    packet.seq_no,
                    packet.header.timestamp,
                    now,
                    packet.payload.clone(),
                )
                .marker(packet.header.marker)
                .nackable(kind == MediaKind::Video),
            );
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(d);
            }
        }
    }

    /// Raw mode: decrypts an up peer's RTP packet and seals a copy for each receiver of its
    /// stream. `false` when the packet is not for the raw path (not keyed yet, a down peer).
    fn raw_forward(&mut self, up: usize, data: &mut [u8]) -> bool {
        let Some(peer) = self.peers.get_mut(up) else {
            return false;
        };
        let Role::Up(stream) = peer.role else {
            return false;
        };
        if !raw_ready(peer) {
            return false;
        }
        let RawSrtp::Ready(ctx) = &mut peer.srtp else {
            return false;
        };
        let Some(opened) = ctx.0.open(data) else {
            return true; // not valid SRTP: dropped, as a stack would
        };
        let pt = data[1] & 0x7f; // open() checked the header is there
        let audio = match peer.pt_audio.iter().find(|(p, _)| *p == pt) {
            Some(&(_, audio)) => audio,
            None => {
                let Some(codec) = peer
                    .rtc
                    .codec_config()
                    .find(|p| *p.pt() == pt)
                    .map(|p| p.spec().codec)
                else {
                    return true;
                };
                let audio = codec == Codec::Opus;
                peer.pt_audio.push((pt, audio));
                audio
            }
        };
        let marker = data[1] & 0x80;
        let seq = [data[2], data[3]];
        let ts = [data[4], data[5], data[6], data[7]];
        let Some(payload) = data.get(opened.header_len..opened.payload_end) else {
            return true;
        };
        let receivers = self.streams.get(stream).map_or(0, |s| s.downs.len());
        for di in 0..receivers {
            let d = self.streams[stream].downs[di]; // di < len; nothing removes receivers
            let Some(peer) = self.peers.get_mut(d) else {
                continue;
            };
            let Some(remote) = peer.remote else {
                continue;
            };
            if !raw_ready(peer) {
                continue;
            }
            if raw_out(peer, audio).is_none() {
                continue;
            }
            let (Some(out), RawSrtp::Ready(ctx)) =
                (&mut peer.raw_out[usize::from(!audio)], &peer.srtp)
            else {
                continue;
            };
            let roc = opened
                .roc
                .wrapping_sub(*out.roc_base.get_or_insert(opened.roc));
            let start = self.raw_bytes.len();
            // The fixed header with one one-byte extension: the mid (RFC 8285).
            let ext_words = (1 + out.mid.len()).div_ceil(4);
            self.raw_bytes
                .extend_from_slice(&[0x90, marker | out.pt, seq[0], seq[1]]);
            self.raw_bytes.extend_from_slice(&ts);
            self.raw_bytes.extend_from_slice(&out.ssrc.to_be_bytes());
            self.raw_bytes
                .extend_from_slice(&[0xbe, 0xde, 0, ext_words as u8]);
            let ext_start = self.raw_bytes.len();
            self.raw_bytes
                .push((MID_EXTENSION_ID << 4) | (out.mid.len() as u8 - 1));
            self.raw_bytes.extend_from_slice(&out.mid);
            self.raw_bytes.resize(ext_start + 4 * ext_words, 0);
            let header_len = self.raw_bytes.len() - start;
            self.raw_bytes.extend_from_slice(payload);
            if ctx
                .1
                .seal(&mut self.raw_bytes, start, header_len, roc)
                .is_none()
            {
                self.raw_bytes.truncate(start);
                continue;
            }
            self.raw_out.push((remote, start..self.raw_bytes.len()));
            if self.raw_out.len() >= SEND_BATCH {
                self.send_raw();
            }
        }
        true
    }

    /// Raw mode: sends the sealed packets, `SEND_BATCH` per `sendmmsg`; drops what would block.
    fn send_raw(&mut self) {
        use nix::sys::socket::SockaddrStorage;
        use std::os::fd::AsRawFd;
        if self.raw_out.is_empty() {
            return;
        }
        let fd = self.socket.as_raw_fd();
        let addresses: heapless::Vec<Option<SockaddrStorage>, SEND_BATCH> = self
            .raw_out
            .iter()
            .map(|(to, _)| Some(SockaddrStorage::from(*to)))
            .collect();
        let payloads: heapless::Vec<[std::io::IoSlice<'_>; 1], SEND_BATCH> = self
            .raw_out
            .iter()
            .map(|(_, r)| [std::io::IoSlice::new(&self.raw_bytes[r.clone()])]) // ranges we wrote
            .collect();
        send_batch(fd, &mut self.send_headers, &payloads, &addresses);
        drop(payloads);
        self.raw_out.clear();
        self.raw_bytes.clear();
    }

    /// Sends every datagram in the outbox, 32 per `sendmmsg`; drops what would block.
    fn send_outbox(&mut self) {
        use nix::sys::socket::SockaddrStorage;
        use std::os::fd::AsRawFd;
        let fd = self.socket.as_raw_fd();
        for batch in self.outbox.chunks(32) {
            let addresses: Vec<Option<SockaddrStorage>> = batch
                .iter()
                .map(|(to, _)| Some(SockaddrStorage::from(*to)))
                .collect();
            let payloads: Vec<[std::io::IoSlice<'_>; 1]> = batch
                .iter()
                .map(|(_, data)| [std::io::IoSlice::new(data)])
                .collect();
            send_batch(fd, &mut self.send_headers, &payloads, &addresses);
        }
        self.outbox.clear();
    }

    /// Lets every receiver written to send what it queued.
    fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &d in &dirty {
            self.peers[d].dirty = false; // dirty holds valid peer indices
            // drain() runs str0m's timeout only if it is due (that is what releases the
            // queued packets).
            self.drain(d);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // A 4 KiB read buffer, as sfubox uses (tungstenite's default is 128 KiB per socket).
            let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
            let Ok(ws) = tungstenite::accept_with_config(stream, Some(config)) else {
                continue;
            };
            if ws.get_ref().set_nonblocking(true).is_err() {
                continue;
            }
            let key = FIRST_CONN_KEY + self.conns.len();
            // SAFETY: the stream lives in `self.conns` (never removed) and is deleted from the
            // poller when the connection dies; the poller is dropped before `conns`.
            let added = unsafe {
                self.poller.add_with_mode(
                    ws.get_ref(),
                    polling::Event::readable(key),
                    PollMode::Level,
                )
            };
            if added.is_err() {
                continue;
            }
            self.conns.push(Conn {
                ws,
                id: String::new(),
                requested: false,
                peers: HashMap::new(),
                alive: true,
            });
        }
    }

    /// Reads what connection `c` sent.
    fn signalling(&mut self, c: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(c) else {
                return;
            };
            if !conn.alive {
                return;
            }
            match conn.ws.read() {
                Ok(Message::Text(text)) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&text) {
                        self.message(c, v);
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    let _ = conn.ws.flush();
                    return;
                }
                Err(_) => {
                    conn.alive = false;
                    let _ = self.poller.delete(conn.ws.get_ref());
                    return;
                }
            }
        }
    }

    fn send(&mut self, conn: usize, value: Value) {
        if let Some(c) = self.conns.get_mut(conn) {
            let _ = c.ws.send(Message::text(value.to_string()));
        }
    }

    fn message(&mut self, c: usize, m: Value) {
        let id = m["id"].as_str().unwrap_or("").to_owned();
        match m["type"].as_str().unwrap_or("") {
            "handshake" => {
                self.conns[c].id = id; // c < len
                self.send(
                    c,
                    json!({"type": "handshake", "version": ["2"], "id": "null"}),
                );
            }
            "join" => {
                let reply = json!({"type": "joined", "kind": "join", "group": m["group"],
                    "username": m["username"], "permissions": ["present"]});
                self.send(c, reply);
            }
            "request" => {
                self.conns[c].requested = true;
                for s in 0..self.streams.len() {
                    if self.streams[s].owner != c {
                        self.offer_down(s, c);
                    }
                }
            }
            "offer" => self.publish(c, &id, m["sdp"].as_str().unwrap_or("")),
            "answer" => {
                let Some(&p) = self.conns[c].peers.get(&id) else {
                    return;
                };
                let peer = &mut self.peers[p];
                if let Role::Down { pending, .. } = &mut peer.role
                    && let (Some(pending), Some(sdp)) = (pending.take(), m["sdp"].as_str())
                    && let Ok(answer) = SdpAnswer::from_sdp_string(sdp)
                {
                    let _ = peer.rtc.sdp_api().accept_answer(pending, answer);
                    self.drain(p);
                }
            }
            "ice" => {
                let Some(&p) = self.conns[c].peers.get(&id) else {
                    return;
                };
                if let Some(line) = m["candidate"]["candidate"].as_str()
                    && let Ok(candidate) = Candidate::from_sdp_string(line)
                {
                    self.peers[p].rtc.add_remote_candidate(candidate);
                }
            }
            _ => {}
        }
    }

    fn new_rtc(&self, sending: bool) -> (Rtc, Option<Arc<KeySlot>>) {
        // sfubox's own str0m settings (ICE-lite, RTP mode, send rings, header extensions) and
        // its default NACK history, with one shared certificate: only the SFU logic differs.
        let direction = if sending {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let history = sfubox::media::SfuConfig::new(Vec::new()).video_nack_packets;
        let mut rtc = sfubox::media::stream_rtc_config(direction, history)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.dtls_cert.clone())
            .build(Instant::now());
        if let Ok(c) = Candidate::host(self.local, "udp") {
            rtc.add_local_candidate(c);
        }
        // The DTLS session str0m just made for this `Rtc` (raw mode only).
        let keys = raw_srtp::take_last_slot();
        (rtc, keys)
    }

    fn publish(&mut self, c: usize, id: &str, sdp: &str) {
        let Ok(offer) = SdpOffer::from_sdp_string(sdp) else {
            return;
        };
        let (mut rtc, keys) = self.new_rtc(false);
        let Ok(answer) = rtc.sdp_api().accept_offer(offer) else {
            return;
        };
        let stream = self.streams.len();
        self.streams.push(Stream {
            id: id.to_owned(),
            owner: c,
            downs: Vec::new(),
        });
        self.peers.push(NullPeer {
            rtc,
            deadline: Instant::now(),
            role: Role::Up(stream),
            dirty: false,
            keys,
            srtp: RawSrtp::Pending,
            remote: None,
            pt_audio: Vec::new(),
            raw_out: [None, None],
        });
        let p = self.peers.len() - 1;
        self.conns[c].peers.insert(id.to_owned(), p);
        self.send(
            c,
            json!({"type": "answer", "id": id, "sdp": answer.to_sdp_string()}),
        );
        self.drain(p);
        for other in 0..self.conns.len() {
            if other != c && self.conns[other].requested {
                self.offer_down(stream, other);
            }
        }
    }

    fn offer_down(&mut self, stream: usize, c: usize) {
        let (mut rtc, keys) = self.new_rtc(true);
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let Some((offer, pending)) = api.apply() else {
            return;
        };
        let id = self.streams[stream].id.clone(); // stream < len
        let owner = self.conns[self.streams[stream].owner].id.clone();
        self.peers.push(NullPeer {
            rtc,
            deadline: Instant::now(),
            role: Role::Down {
                audio: (audio, None),
                video: (video, None),
                pending: Some(pending),
            },
            dirty: false,
            keys,
            srtp: RawSrtp::Pending,
            remote: None,
            pt_audio: Vec::new(),
            raw_out: [None, None],
        });
        let p = self.peers.len() - 1;
        self.streams[stream].downs.push(p);
        self.conns[c].peers.insert(id.clone(), p);
        self.send(
            c,
            json!({"type": "offer", "id": id, "label": "camera",
            "source": owner, "username": owner, "sdp": offer.to_sdp_string()}),
        );
        self.drain(p);
    }
}

/// RTP rather than RTCP (RFC 5761 §4: RTCP packet types 192–223 sit where RTP payload types
/// 64–95 would).
fn is_rtp(data: &[u8]) -> bool {
    matches!(data.first(), Some(128..=191))
        && data.get(1).is_some_and(|b| !(64..96).contains(&(b & 0x7f)))
}

/// Whether the peer's raw SRTP is keyed, keying it if its handshake has exported keys.
fn raw_ready(peer: &mut NullPeer) -> bool {
    if let RawSrtp::Pending = peer.srtp
        && let Some(slot) = &peer.keys
        && let Some(contexts) = slot.contexts()
    {
        peer.srtp = match contexts {
            Ok(c) => RawSrtp::Ready(Box::new(c)),
            Err(profile) => {
                eprintln!("raw-relay: SRTP profile {profile:?} is not implemented; str0m keeps it");
                RawSrtp::Unsupported
            }
        };
    }
    matches!(peer.srtp, RawSrtp::Ready(_))
}

/// A down peer's raw output for audio or video, found once from its `Rtc`.
fn raw_out(peer: &mut NullPeer, audio: bool) -> Option<&mut RawOut> {
    let k = usize::from(!audio);
    if peer.raw_out[k].is_none() {
        let Role::Down {
            audio: a, video: v, ..
        } = &peer.role
        else {
            return None;
        };
        let (mid, codec) = if audio {
            (a.0, Codec::Opus)
        } else {
            (v.0, Codec::Vp8)
        };
        let pt = peer
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| *p.pt())?;
        let ssrc = *peer.rtc.direct_api().stream_tx_by_mid(mid, None)?.ssrc();
        let mid = heapless::Vec::from_slice(mid.as_bytes()).ok()?;
        if mid.is_empty() {
            return None;
        }
        peer.raw_out[k] = Some(RawOut {
            ssrc,
            pt,
            mid,
            roc_base: None,
        });
    }
    peer.raw_out[k].as_mut()
}

/// Sends `payloads[i]` to `addresses[i]` with `sendmmsg`, resuming after a partial send and
/// skipping a datagram the kernel refuses; stops where the socket would block.
fn send_batch(
    fd: std::os::fd::RawFd,
    headers: &mut nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    payloads: &[[std::io::IoSlice<'_>; 1]],
    addresses: &[Option<nix::sys::socket::SockaddrStorage>],
) {
    use nix::sys::socket::{MsgFlags, sendmmsg};
    let mut next = 0;
    while next < payloads.len() {
        match sendmmsg(
            fd,
            headers,
            &payloads[next..],
            &addresses[next..],
            [],
            MsgFlags::empty(),
        ) {
            Ok(results) => match results.count() {
                0 => break,
                sent => next += sent,
            },
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(_) => next += 1,
        }
    }
}
