//! The media socket: one UDP socket shared by every stream's `Rtc`, and the addresses
//! announced to browsers for it (ICE-lite host candidates).
//!
//! - Port: `-udp-range N` (or the first free port of `N1-N2`); by default the HTTP port's
//!   number, and any free port if that one is taken.
//! - Address: the `-http` host when it names one (then the candidate is that address);
//!   otherwise every interface (`[::]`, dual-stack, or `0.0.0.0`). The kernel tells the
//!   local address each datagram was sent to (`IP_PKTINFO`, through `quinn-udp`), which is
//!   what ICE matches against the candidates, and replies leave from that address.
//! - Candidates: the machine's usable addresses (up, not loopback, not IPv6 link-local);
//!   loopback when the server listens on loopback or the host has nothing else (a private
//!   network namespace); plus every `-public-ip` address first, for a box behind a 1:1 NAT
//!   or a port forward (its datagrams still arrive on a local address, which is also a
//!   candidate, so ICE accepts them).
//!
//! Receiving reads into one reused buffer. Sending is synchronous, right after each engine
//! call: the datagrams of one call are handed to the kernel together, up to [`SEND_BATCH`] per
//! `sendmmsg` on Linux (one SFU input fans out to every receiver: one system call per
//! datagram was a third of the forwarding cost). On a wildcard bind each run of datagrams
//! from one local address carries that address (`IP_PKTINFO`/`IPV6_PKTINFO`), so replies
//! leave from the address the browser used. A datagram that would block is dropped and
//! counted, never queued.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::rc::Rc;
use std::time::Instant;

use quinn_udp::{RecvMeta, UdpSocketState};
use smol::{Async, Timer};

use super::{Engine, Shared};
use crate::cli::UdpPorts;
use crate::media::Transmit;

/// Candidates announced at most (a host with many addresses would bloat every SDP).
pub const MAX_CANDIDATES: usize = 12;

/// Size of the receive buffer: room for a GRO batch of full-size datagrams.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// Datagrams given to the kernel in one `sendmmsg` call, at most.
pub const SEND_BATCH: usize = 32;

/// Datagrams handled before the receive loop lets other tasks run.
const DATAGRAMS_PER_TURN: usize = 64;

/// The media socket. See the module documentation.
pub struct MediaSocket {
    socket: Async<UdpSocket>,
    state: UdpSocketState,
    local: SocketAddr,
    candidates: Vec<SocketAddr>,
    public: Vec<IpAddr>,
    dropped: Cell<u64>,
    /// Datagrams waiting for [`MediaSocket::flush`] (at most [`SEND_BATCH`]).
    pending: RefCell<Vec<Transmit>>,
    /// The `sendmmsg` headers, allocated once.
    #[cfg(target_os = "linux")]
    batch_headers: BatchHeaders,
}

/// Preallocated `mmsghdr` arrays: without control data, and with room for one IPv4 or IPv6
/// packet-info message (the source address of the run).
#[cfg(target_os = "linux")]
struct BatchHeaders {
    plain: RefCell<nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>>,
    v4: RefCell<nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>>,
    v6: RefCell<nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>>,
}

#[cfg(target_os = "linux")]
impl BatchHeaders {
    fn new() -> BatchHeaders {
        use nix::libc::{in_pktinfo, in6_pktinfo};
        use nix::sys::socket::MultiHeaders;
        BatchHeaders {
            plain: RefCell::new(MultiHeaders::preallocate(SEND_BATCH, None)),
            v4: RefCell::new(MultiHeaders::preallocate(
                SEND_BATCH,
                Some(nix::cmsg_space!(in_pktinfo)),
            )),
            v6: RefCell::new(MultiHeaders::preallocate(
                SEND_BATCH,
                Some(nix::cmsg_space!(in6_pktinfo)),
            )),
        }
    }
}

impl MediaSocket {
    /// Binds the media socket. `host` is the `-http` host (`None`: every interface),
    /// `http_port` the port the web server actually listens on, `public` the `-public-ip`
    /// addresses.
    pub fn bind(
        host: Option<&str>,
        ports: Option<UdpPorts>,
        http_port: u16,
        public: &[IpAddr],
    ) -> io::Result<MediaSocket> {
        let ips: Vec<IpAddr> = match host {
            None => vec![
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ],
            Some(host) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                (host, 0).to_socket_addrs()?.map(|a| a.ip()).collect()
            }
        };
        let socket = match ports {
            Some(UdpPorts::Single(port)) => bind_first(&ips, port..=port)?,
            Some(UdpPorts::Range { first, last }) => bind_first(&ips, first..=last)?,
            None => bind_first(&ips, http_port..=http_port).or_else(|e| {
                log::warn!("UDP port {http_port} for media: {e}; using any free port");
                bind_first(&ips, 0..=0)
            })?,
        };
        let state = UdpSocketState::new((&socket).into())?;
        let local = socket.local_addr()?;
        let candidates = candidates_for(local, public, interface_addresses());
        Ok(MediaSocket {
            socket: Async::new(socket)?,
            state,
            local,
            candidates,
            public: public.to_vec(),
            dropped: Cell::new(0),
            pending: RefCell::new(Vec::with_capacity(SEND_BATCH)),
            #[cfg(target_os = "linux")]
            batch_headers: BatchHeaders::new(),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The addresses announced as host candidates.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// Datagrams dropped because the socket's send buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Sends `transmit`, at the latest on the next [`MediaSocket::flush`]; drops it (counted)
    /// if the socket would block.
    pub fn send(&self, transmit: Transmit) {
        let mut pending = self.pending.borrow_mut();
        pending.push(transmit);
        if pending.len() >= SEND_BATCH {
            self.send_batch(&mut pending);
        }
    }

    /// Sends every datagram that [`MediaSocket::send`] is holding.
    pub fn flush(&self) {
        let mut pending = self.pending.borrow_mut();
        if !pending.is_empty() {
            self.send_batch(&mut pending);
        }
    }

    /// The local address the kernel must send `transmit` from: the one the engine chose, when
    /// the socket is bound to every interface and that address is not only announced (NAT).
    fn source_ip(&self, transmit: &Transmit) -> Option<IpAddr> {
        Some(unmapped(transmit.source).ip())
            .filter(|ip| !ip.is_unspecified() && !self.public.contains(ip))
            .filter(|_| self.local.ip().is_unspecified())
    }

    /// Sends one datagram with `quinn-udp` (which can set its source address).
    #[cfg(not(target_os = "linux"))]
    fn send_one(&self, transmit: &Transmit, src_ip: Option<IpAddr>) {
        let out = quinn_udp::Transmit {
            destination: self.wire_address(transmit.destination),
            ecn: None,
            contents: &transmit.contents,
            segment_size: None,
            src_ip,
        };
        match self.state.try_send((&self.socket).into(), &out) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.count_dropped(1),
            Err(e) => log::trace!("media send to {}: {e}", transmit.destination),
        }
    }

    fn count_dropped(&self, datagrams: usize) {
        self.dropped.set(self.dropped.get() + datagrams as u64);
    }

    /// Sends `pending` with as few `sendmmsg` calls as the kernel allows, and empties it:
    /// one call per run of datagrams with the same source address, at most [`SEND_BATCH`]
    /// each. A datagram the kernel refuses (an unreachable destination) is skipped; the rest
    /// go on.
    #[cfg(target_os = "linux")]
    fn send_batch(&self, pending: &mut Vec<Transmit>) {
        let mut start = 0;
        while let Some(first) = pending.get(start) {
            let source = self.source_ip(first);
            // Never empty: the first datagram has its own source.
            let run = pending
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take(SEND_BATCH)
                .take_while(|t| self.source_ip(t) == source)
                .count();
            let end = (start + run).min(pending.len());
            if let Some(batch) = pending.get(start..end) {
                self.send_run(batch, source);
            }
            start = end;
        }
        pending.clear();
    }

    /// One `sendmmsg` run: every datagram of `batch` leaves from `source` (`None`: the
    /// kernel chooses).
    #[cfg(target_os = "linux")]
    fn send_run(&self, batch: &[Transmit], source: Option<IpAddr>) {
        use nix::errno::Errno;
        use nix::libc;
        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmmsg};
        use std::os::fd::AsRawFd;

        let addresses: heapless::Vec<Option<SockaddrStorage>, SEND_BATCH> = batch
            .iter()
            .map(|t| Some(SockaddrStorage::from(self.wire_address(t.destination))))
            .collect();
        let payloads: heapless::Vec<[io::IoSlice<'_>; 1], SEND_BATCH> = batch
            .iter()
            .map(|t| [io::IoSlice::new(&t.contents)])
            .collect();
        let v4_info;
        let v6_info;
        let (control, mut headers) = match source {
            None => (None, self.batch_headers.plain.borrow_mut()),
            Some(IpAddr::V4(ip)) => {
                v4_info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(ip.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let info = ControlMessage::Ipv4PacketInfo(&v4_info);
                (Some(info), self.batch_headers.v4.borrow_mut())
            }
            Some(IpAddr::V6(ip)) => {
                v6_info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                let info = ControlMessage::Ipv6PacketInfo(&v6_info);
                (Some(info), self.batch_headers.v6.borrow_mut())
            }
        };
        let control = control.as_slice();
        let fd = self.socket.get_ref().as_raw_fd();
        let mut next = 0;
        while next < batch.len() {
            let (Some(rest_payloads), Some(rest_addresses)) =
                (payloads.get(next..), addresses.get(next..))
            else {
                break;
            };
            let left = batch.len() - next;
            match sendmmsg(
                fd,
                &mut headers,
                rest_payloads,
                rest_addresses,
                control,
                MsgFlags::empty(),
            ) {
                Ok(results) => match results.count() {
                    0 => {
                        self.count_dropped(left);
                        break;
                    }
                    sent => next += sent,
                },
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    self.count_dropped(left);
                    break;
                }
                Err(e) => {
                    if let Some(refused) = batch.get(next) {
                        log::trace!("media send to {}: {e}", refused.destination);
                    }
                    next += 1;
                }
            }
        }
    }

    /// Sends `pending` one datagram at a time (no `sendmmsg` on this platform), and empties it.
    #[cfg(not(target_os = "linux"))]
    fn send_batch(&self, pending: &mut Vec<Transmit>) {
        for transmit in pending.drain(..) {
            self.send_one(&transmit, self.source_ip(&transmit));
        }
    }

    /// The address to give the kernel for `destination` (IPv4 peers of an IPv6 socket are
    /// IPv4-mapped).
    fn wire_address(&self, destination: SocketAddr) -> SocketAddr {
        match (self.local, destination) {
            (SocketAddr::V6(_), SocketAddr::V4(v4)) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            _ => destination,
        }
    }

    /// The local address a datagram was sent to, as the candidates name it.
    fn destination(&self, meta: &RecvMeta, source: SocketAddr) -> SocketAddr {
        if !self.local.ip().is_unspecified() {
            return self.local;
        }
        let port = self.local.port();
        if let Some(ip) = meta.dst_ip {
            return unmapped(SocketAddr::new(ip, port));
        }
        // No packet info from this platform: the first candidate of the source's family.
        self.candidates
            .iter()
            .copied()
            .find(|c| c.is_ipv4() == source.is_ipv4())
            .unwrap_or(self.local)
    }
}

/// Binds the first of `ips` × `ports` that works.
fn bind_first(ips: &[IpAddr], ports: std::ops::RangeInclusive<u16>) -> io::Result<UdpSocket> {
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind");
    for port in ports {
        for ip in ips {
            match UdpSocket::bind(SocketAddr::new(*ip, port)) {
                Ok(socket) => return Ok(socket),
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// The machine's interface addresses that are up (empty if they cannot be listed).
fn interface_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces
            .into_iter()
            .filter(|i| i.is_oper_up() || i.is_loopback())
            .map(|i| i.ip())
            .collect(),
        Err(e) => {
            log::warn!("cannot list network interfaces: {e}");
            Vec::new()
        }
    }
}

/// The host candidates for a socket bound to `local`: the public addresses first, then the
/// bound address or the usable interface addresses, loopback only when there is nothing
/// else (or the socket is bound to loopback).
fn candidates_for(
    local: SocketAddr,
    public: &[IpAddr],
    interfaces: Vec<IpAddr>,
) -> Vec<SocketAddr> {
    let port = local.port();
    let mut ips: Vec<IpAddr> = public.to_vec();
    if !local.ip().is_unspecified() {
        ips.push(unmapped(local).ip());
    } else {
        let v6_socket = local.is_ipv6();
        let usable = |ip: &IpAddr| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            IpAddr::V6(v6) => {
                v6_socket
                    && !v6.is_loopback()
                    && !v6.is_unspecified()
                    && !v6.is_unicast_link_local()
                    && v6.to_ipv4_mapped().is_none()
            }
        };
        let mut local_ips: Vec<IpAddr> = interfaces.iter().copied().filter(usable).collect();
        // IPv4 first: browsers and NATs handle it best.
        local_ips.sort_by_key(|ip| ip.is_ipv6());
        if local_ips.is_empty() {
            local_ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
            if v6_socket && interfaces.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)) {
                local_ips.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
        }
        ips.extend(local_ips);
    }
    let mut candidates: Vec<SocketAddr> = Vec::new();
    for ip in ips {
        let addr = SocketAddr::new(ip, port);
        if !candidates.contains(&addr) && candidates.len() < MAX_CANDIDATES {
            candidates.push(addr);
        }
    }
    candidates
}

/// An IPv4-mapped IPv6 address as plain IPv4.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Runs [`receive_loop`] for as long as the server runs. A panic on the datagram path (in
/// the media engine outside str0m's own guard, in the signalling side's handling of media
/// events, or in this module) is caught per datagram: it is logged and counted against the
/// panic budget like a connection's, and forwarding goes on with the next datagram. A panic
/// anywhere else in the loop restarts it.
pub(super) async fn receive_task<E: Engine>(shared: Rc<Shared<E>>, socket: Rc<MediaSocket>) {
    use futures_util::FutureExt as _;
    loop {
        let run = std::panic::AssertUnwindSafe(receive_loop(&shared, &socket));
        match run.catch_unwind().await {
            Ok(()) => return,
            Err(payload) => shared.caught_panic(
                "receiving media datagrams (the receive loop restarts)",
                payload.as_ref(),
            ),
        }
    }
}

/// Feeds every datagram of the media socket to the engine, one at a time; each engine call
/// is followed by the drain that sends what it produced. Returns only if the engine has no
/// media side.
async fn receive_loop<E: Engine>(shared: &Rc<Shared<E>>, socket: &Rc<MediaSocket>) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    let mut handled = 0usize;
    loop {
        let received = socket
            .socket
            .read_with(|s| {
                let mut meta = [RecvMeta::default()];
                let mut bufs = [IoSliceMut::new(&mut buffer)];
                socket.state.recv(s.into(), &mut bufs, &mut meta)?;
                Ok(meta[0])
            })
            .await;
        let meta = match received {
            Ok(meta) => meta,
            Err(e) => {
                // ICMP errors surface here on some systems; never spin on a broken socket.
                log::debug!("media socket: {e}");
                Timer::after(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let source = unmapped(meta.addr);
        let destination = socket.destination(&meta, source);
        let stride = meta.stride.max(1);
        let data = buffer.get(..meta.len).unwrap_or_default();
        for datagram in data.chunks(stride) {
            let handle = std::panic::AssertUnwindSafe(|| {
                handle_datagram(shared, socket, source, destination, datagram)
            });
            match std::panic::catch_unwind(handle) {
                Ok(true) => {}
                Ok(false) => return,
                Err(payload) => {
                    let what = format!("handling a media datagram from {source}");
                    shared.caught_panic(&what, payload.as_ref());
                }
            }
            handled += 1;
        }
        if handled >= DATAGRAMS_PER_TURN {
            handled = 0;
            smol::future::yield_now().await;
        }
    }
}

/// Gives one datagram to the media engine and sends its transmits straight out; the
/// signalling side runs only when the engine has events for it. `false` when there is no
/// media engine.
fn handle_datagram<E: Engine>(
    shared: &Shared<E>,
    socket: &MediaSocket,
    source: SocketAddr,
    destination: SocketAddr,
    datagram: &[u8],
) -> bool {
    let now = Instant::now();
    let has_events = {
        let mut engine = shared.engine.borrow_mut();
        let Some(sfu) = engine.media_engine() else {
            return false;
        };
        if let Err(e) = sfu.handle_receive(now, source, destination, datagram) {
            log::trace!("datagram from {source}: {e}");
        }
        while let Some(transmit) = sfu.poll_transmit() {
            socket.send(transmit);
        }
        sfu.has_events()
    };
    if has_events {
        shared.with_engine(|engine| engine.handle_media_events(now));
    } else {
        socket.flush();
        shared.kick_timer_if_sooner();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn wildcard_sockets_announce_usable_interfaces_and_public_addresses_first() {
        let local: SocketAddr = "[::]:8443".parse().unwrap();
        let interfaces = vec![
            ip("127.0.0.1"),
            ip("::1"),
            ip("fe80::1"),
            ip("2001:db8::5"),
            ip("192.168.1.20"),
        ];
        assert_eq!(
            candidates_for(local, &[ip("203.0.113.7")], interfaces),
            vec![
                "203.0.113.7:8443".parse::<SocketAddr>().unwrap(),
                "192.168.1.20:8443".parse().unwrap(),
                "[2001:db8::5]:8443".parse().unwrap(),
            ]
        );
    }

    #[test]
    fn loopback_is_announced_only_when_nothing_else_exists_or_bound_to() {
        let wildcard: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(
            candidates_for(wildcard, &[], vec![ip("127.0.0.1"), ip("::1")]),
            vec!["127.0.0.1:9000".parse::<SocketAddr>().unwrap()]
        );
        let wildcard6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(
            candidates_for(wildcard6, &[], vec![ip("127.0.0.1"), ip("::1")]),
            vec![
                "127.0.0.1:9000".parse::<SocketAddr>().unwrap(),
                "[::1]:9000".parse().unwrap()
            ]
        );
        let bound: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(
            candidates_for(bound, &[], vec![ip("10.0.0.2")]),
            vec![bound]
        );
    }

    #[test]
    fn binds_the_http_port_number_by_default_and_sends_to_itself() {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let socket = MediaSocket::bind(Some("127.0.0.1"), None, port, &[]).unwrap();
        assert_eq!(socket.local_addr().port(), port);
        assert_eq!(socket.candidates(), [socket.local_addr()]);
        // Taken: any free port instead.
        let other = MediaSocket::bind(Some("127.0.0.1"), None, port, &[]).unwrap();
        assert_ne!(other.local_addr().port(), port);
        // A datagram goes out synchronously and arrives with its destination known.
        other.send(Transmit {
            source: other.local_addr(),
            destination: socket.local_addr(),
            contents: b"hello".to_vec(),
        });
        other.flush();
        let got = smol::block_on(socket.socket.read_with(|s| {
            let mut buffer = [0u8; 64];
            let mut meta = [RecvMeta::default()];
            let mut bufs = [IoSliceMut::new(&mut buffer)];
            socket.state.recv(s.into(), &mut bufs, &mut meta)?;
            Ok((buffer[..meta[0].len].to_vec(), meta[0]))
        }))
        .unwrap();
        assert_eq!(got.0, b"hello");
        assert_eq!(unmapped(got.1.addr), other.local_addr());
        assert_eq!(
            socket.destination(&got.1, other.local_addr()),
            socket.local_addr()
        );
    }

    /// Receives `count` datagrams on `receiver` (blocking, with a timeout), returning their
    /// sources and contents.
    fn receive_all(receiver: &UdpSocket, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let mut buffer = [0u8; 64];
        while got.len() < count {
            let (n, from) = receiver.recv_from(&mut buffer).unwrap();
            got.push((unmapped(from), buffer[..n].to_vec()));
        }
        got
    }

    #[test]
    fn a_batch_larger_than_one_sendmmsg_arrives_whole_and_in_order() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = MediaSocket::bind(Some("127.0.0.1"), None, 0, &[]).unwrap();
        let count = SEND_BATCH * 2 + 5;
        for i in 0..count {
            socket.send(Transmit {
                source: socket.local_addr(),
                destination: receiver.local_addr().unwrap(),
                contents: format!("datagram {i}").into_bytes(),
            });
        }
        socket.flush();
        let got = receive_all(&receiver, count);
        for (i, (from, contents)) in got.iter().enumerate() {
            assert_eq!(*from, socket.local_addr());
            assert_eq!(contents, format!("datagram {i}").as_bytes());
        }
        assert_eq!(socket.dropped(), 0);
    }

    #[test]
    fn a_wildcard_socket_sends_each_run_from_the_address_the_engine_chose() {
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = UdpSocket::bind("[::1]:0").ok();
        let socket = MediaSocket::bind(None, None, 0, &[]).unwrap();
        let port = socket.local_addr().port();
        // Alternating sources split the batch into runs; every run names its source. 127.0.0.2
        // is local (all of 127/8 is) but never the kernel's own choice towards 127.0.0.1: only
        // the packet info makes it the source.
        for i in 0..10 {
            socket.send(Transmit {
                source: SocketAddr::new(ip("127.0.0.2"), port),
                destination: v4.local_addr().unwrap(),
                contents: vec![i],
            });
            if let Some(v6) = &v6
                && socket.local_addr().is_ipv6()
            {
                socket.send(Transmit {
                    source: SocketAddr::new(ip("::1"), port),
                    destination: v6.local_addr().unwrap(),
                    contents: vec![i],
                });
            }
        }
        socket.flush();
        let got = receive_all(&v4, 10);
        for (from, _) in &got {
            assert_eq!(*from, SocketAddr::new(ip("127.0.0.2"), port));
        }
        assert_eq!(
            got.iter().map(|(_, c)| c[0]).collect::<Vec<_>>(),
            (0..10).collect::<Vec<u8>>()
        );
        if let Some(v6) = &v6
            && socket.local_addr().is_ipv6()
        {
            let got = receive_all(v6, 10);
            assert!(
                got.iter()
                    .all(|(from, _)| *from == SocketAddr::new(ip("::1"), port))
            );
        }
    }

    #[test]
    fn a_port_range_takes_its_first_free_port() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let ports = UdpPorts::Range {
            first: port,
            last: port.saturating_add(20),
        };
        let socket = MediaSocket::bind(Some("127.0.0.1"), Some(ports), 1, &[]).unwrap();
        assert!(socket.local_addr().port() > port);
        assert!(socket.local_addr().port() <= port.saturating_add(20));
    }
}
