//! The generator's event loop: every peer socket in one epoll set, the cameras on their
//! schedule, str0m's timers and the signalling clients, all on one thread.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use polling::{Events, PollMode, Poller};
use sfubox::testing::PeerConfig;

use crate::peer::{Camera, Link, Meter, Peer};
use crate::signal::{Client, Env};

/// How often str0m timers and the WebSockets are looked at.
const HOUSEKEEPING: Duration = Duration::from_millis(5);

/// Everything the generator runs.
pub struct World {
    // Declared first so it is dropped first: the epoll set must go before the sockets in it.
    poller: Poller,
    events: Events,
    registered: usize,
    /// The clock every payload time stamp counts from.
    pub epoch: Instant,
    peer_config: PeerConfig,
    ip: IpAddr,
    /// Every peer (publishers and receivers).
    pub peers: Vec<Peer>,
    /// Signalling clients.
    pub clients: Vec<Box<dyn Client>>,
    /// Cameras on publishing peers.
    pub cameras: Vec<Camera>,
    /// Receive counters.
    pub meter: Meter,
    /// Peers behind an emulated link (indices into `peers`).
    shaped: Vec<usize>,
    buf: Vec<u8>,
    next_housekeeping: Instant,
}

impl World {
    /// An empty world whose peers bind to `ip`.
    pub fn new(ip: IpAddr) -> Result<World, String> {
        let now = Instant::now();
        Ok(World {
            poller: Poller::new().map_err(|e| e.to_string())?,
            events: Events::with_capacity(NonZeroUsize::MIN.saturating_add(1023)),
            registered: 0,
            epoch: now,
            // Statistics once a second: the NACK counts come from them.
            peer_config: PeerConfig {
                stats_interval: Some(Duration::from_secs(1)),
                ..PeerConfig::new()
            },
            ip,
            peers: Vec::new(),
            clients: Vec::new(),
            cameras: Vec::new(),
            meter: Meter::default(),
            shaped: Vec::new(),
            buf: vec![0; 2048],
            next_housekeeping: now,
        })
    }

    /// Runs `f` on client `c` with the shared environment, then watches new sockets.
    pub fn with_client<T>(
        &mut self,
        c: usize,
        f: impl FnOnce(&mut dyn Client, &mut Env) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut env = Env {
            peers: &mut self.peers,
            peer_config: &self.peer_config,
            ip: self.ip,
        };
        let client = self.clients.get_mut(c).ok_or("no such client")?;
        let out = f(client.as_mut(), &mut env)?;
        self.register()?;
        Ok(out)
    }

    fn register(&mut self) -> Result<(), String> {
        while self.registered < self.peers.len() {
            let i = self.registered;
            // SAFETY: the socket stays open as long as the poller: both live in `self`, the
            // poller is dropped first, and peers are never removed.
            unsafe {
                self.poller
                    .add_with_mode(
                        &self.peers[i].socket,
                        polling::Event::readable(i),
                        PollMode::Level,
                    )
                    .map_err(|e| e.to_string())?;
            }
            self.registered += 1;
        }
        Ok(())
    }

    /// Puts peer `p` behind an emulated link (from its next datagram on, once connected).
    pub fn shape(&mut self, p: usize, link: Link) {
        if let Some(peer) = self.peers.get_mut(p) {
            peer.link = Some(link);
            if !self.shaped.contains(&p) {
                self.shaped.push(p);
            }
        }
    }

    /// Pumps everything for `d`.
    pub fn run_for(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        self.run_until(until, |_| false).map(|_| ())
    }

    /// Pumps until `done` holds or `until` passes; says whether `done` held.
    pub fn run_until(
        &mut self,
        until: Instant,
        mut done: impl FnMut(&World) -> bool,
    ) -> Result<bool, String> {
        loop {
            let now = Instant::now();
            if now >= self.next_housekeeping {
                self.next_housekeeping = now + HOUSEKEEPING;
                self.housekeeping(now)?;
                if done(self) {
                    return Ok(true);
                }
            }
            if now >= until {
                return Ok(false);
            }
            let mut wake = self.next_housekeeping.min(until);
            for cam in &self.cameras {
                wake = wake.min(cam.next_due());
            }
            for &p in &self.shaped {
                if let Some(at) = self.peers.get(p).and_then(Peer::next_release) {
                    wake = wake.min(at);
                }
            }
            self.events.clear();
            let timeout = wake.saturating_duration_since(now);
            self.poller
                .wait(&mut self.events, Some(timeout))
                .map_err(|e| e.to_string())?;
            for ev in self.events.iter() {
                if let Some(peer) = self.peers.get_mut(ev.key) {
                    peer.pump(&mut self.buf, self.epoch, &mut self.meter);
                }
            }
            let now = Instant::now();
            for &p in &self.shaped {
                if let Some(peer) = self.peers.get_mut(p)
                    && peer.next_release().is_some_and(|at| at <= now)
                {
                    peer.release(now, self.epoch, &mut self.meter);
                    peer.tick(Instant::now(), self.epoch, &mut self.meter);
                }
            }
            for cam in &mut self.cameras {
                if cam.next_due() <= now
                    && let Some(peer) = self.peers.get_mut(cam.peer)
                {
                    cam.run(peer, now, self.epoch, &mut self.meter);
                }
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) -> Result<(), String> {
        for peer in &mut self.peers {
            peer.tick(now, self.epoch, &mut self.meter);
        }
        for c in 0..self.clients.len() {
            self.with_client(c, |client, env| {
                client.poll(env)?;
                client.keepalive(now)
            })?;
        }
        Ok(())
    }
}
