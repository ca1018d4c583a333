//! Connection admission and the panic budget: the runtime's defences against a client (or a
//! bug) that would otherwise take the whole server with it.
//!
//! - [`ConnectionTable`] counts open TCP connections, in total and per client address, and
//!   refuses one more above [`Limits::max_connections`](super::Limits::max_connections) or
//!   [`Limits::max_connections_per_ip`](super::Limits::max_connections_per_ip). A refused
//!   connection is closed at once (plain HTTP first gets a `503` written without waiting);
//!   refusals are logged at most once per [`REFUSAL_LOG_INTERVAL`], with a count of the
//!   others, so a flood cannot fill the journal. Admission returns a [`ConnectionPermit`]
//!   that gives the slot back when dropped, whatever way the connection task ends.
//! - [`PanicBudget`] counts panics caught while handling one peer. The runtime unwinds a
//!   panic to the peer's connection task and drops only that peer; more than
//!   [`PanicBudget::MAX_PANICS`] within [`PanicBudget::WINDOW`] means the shared state is
//!   probably damaged, and the process exits for the service manager to restart it.
//!
//! Both take the time as an argument and never read the clock, so they are tested with a
//! fake one.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The shortest time between two log lines about refused connections.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// What a plain-HTTP client gets when it is refused: a complete response that asks it to
/// come back later. (A TLS client is just closed: answering it would cost a handshake.)
pub const REFUSAL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 40\r\n\
Retry-After: 5\r\n\
Connection: close\r\n\
\r\n\
Server busy: too many open connections.\n";

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds its maximum number of connections.
    Total(usize),
    /// This client address holds its maximum number of connections.
    PerAddress(usize),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Total(limit) => write!(f, "the server has {limit} open connections"),
            Refusal::PerAddress(limit) => {
                write!(f, "this address has {limit} open connections")
            }
        }
    }
}

/// The unit a per-address limit counts: one IPv4 address, or one IPv6 /64 (what one host or
/// one home network gets; a single machine can use a whole /64 of addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of `ip`; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn of(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let mut segments = v6.segments();
                    for segment in segments.iter_mut().skip(4) {
                        *segment = 0;
                    }
                    AddressKey(IpAddr::V6(Ipv6Addr::from(segments)))
                }
            },
        }
    }

    /// Whether the key is the loopback address. Loopback is not limited per address: a
    /// reverse proxy on the same machine brings every client from there.
    pub fn is_loopback(&self) -> bool {
        self.0.is_loopback()
    }
}

/// Open connections, in total and per address, against fixed limits.
#[derive(Debug)]
pub struct ConnectionTable {
    max_total: usize,
    max_per_address: usize,
    total: usize,
    per_address: HashMap<AddressKey, usize>,
    last_refusal_log: Option<Instant>,
    unlogged_refusals: u64,
}

impl ConnectionTable {
    /// A table that admits at most `max_total` connections, and at most `max_per_address`
    /// from one [`AddressKey`] (loopback excepted).
    pub fn new(max_total: usize, max_per_address: usize) -> ConnectionTable {
        ConnectionTable {
            max_total,
            max_per_address,
            total: 0,
            per_address: HashMap::new(),
            last_refusal_log: None,
            unlogged_refusals: 0,
        }
    }

    /// Counts one more connection from `ip`, or says why it must be refused.
    pub fn admit(&mut self, ip: IpAddr) -> Result<AddressKey, Refusal> {
        let key = AddressKey::of(ip);
        if self.total >= self.max_total {
            return Err(Refusal::Total(self.max_total));
        }
        let count = self.per_address.entry(key).or_insert(0);
        if *count >= self.max_per_address && !key.is_loopback() {
            return Err(Refusal::PerAddress(self.max_per_address));
        }
        *count += 1;
        self.total += 1;
        Ok(key)
    }

    /// Gives back the slot of a connection admitted under `key`.
    pub fn release(&mut self, key: AddressKey) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_address.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&key);
            }
        }
    }

    /// Open connections in total.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Open connections counted against `ip`'s key.
    pub fn from_address(&self, ip: IpAddr) -> usize {
        self.per_address
            .get(&AddressKey::of(ip))
            .copied()
            .unwrap_or(0)
    }

    /// The log line for a refusal at `now`, or `None` when one was written less than
    /// [`REFUSAL_LOG_INTERVAL`] ago (the refusal is then counted into the next line).
    pub fn refusal_log_line(
        &mut self,
        now: Instant,
        peer: impl fmt::Display,
        refusal: Refusal,
    ) -> Option<String> {
        if self
            .last_refusal_log
            .is_some_and(|last| now.saturating_duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.unlogged_refusals += 1;
            return None;
        }
        self.last_refusal_log = Some(now);
        let others = std::mem::take(&mut self.unlogged_refusals);
        let mut line = format!("refusing a connection from {peer}: {refusal}");
        if others > 0 {
            line.push_str(&format!(" ({others} more refused since the last line)"));
        }
        Some(line)
    }
}

/// One admitted connection's slot in a shared [`ConnectionTable`]; released when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    table: Rc<RefCell<ConnectionTable>>,
    key: AddressKey,
}

impl ConnectionPermit {
    /// Admits a connection from `ip` into `table`, or says why not.
    pub fn acquire(
        table: &Rc<RefCell<ConnectionTable>>,
        ip: IpAddr,
    ) -> Result<ConnectionPermit, Refusal> {
        let key = table.borrow_mut().admit(ip)?;
        Ok(ConnectionPermit {
            table: Rc::clone(table),
            key,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        // Never borrowed elsewhere across a call that could drop a permit; if it ever were,
        // losing one count is better than a panic in a destructor.
        if let Ok(mut table) = self.table.try_borrow_mut() {
            table.release(self.key);
        }
    }
}

/// Panics caught recently, against the limit above which the process restarts.
#[derive(Debug, Default)]
pub struct PanicBudget {
    recent: VecDeque<Instant>,
}

impl PanicBudget {
    /// The window in which panics are counted.
    pub const WINDOW: Duration = Duration::from_secs(60);
    /// The most panics tolerated within [`PanicBudget::WINDOW`].
    pub const MAX_PANICS: usize = 5;

    /// Records a panic at `now`; `false` when the budget is exhausted and the process
    /// should exit.
    pub fn record(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|first| now.saturating_duration_since(*first) >= Self::WINDOW)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.recent.len() <= Self::MAX_PANICS
    }
}

/// The message of a caught panic payload, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn per_address_limit_counts_ipv4_hosts_and_ipv6_prefixes() {
        let mut table = ConnectionTable::new(100, 2);
        table.admit(ip("192.0.2.1")).unwrap();
        table.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            table.admit(ip("192.0.2.1")),
            Err(Refusal::PerAddress(2)),
            "the mapped form counts as the same host"
        );
        assert!(table.admit(ip("192.0.2.2")).is_ok());

        table.admit(ip("2001:db8:1:2::1")).unwrap();
        table.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            table.admit(ip("2001:db8:1:2::77")),
            Err(Refusal::PerAddress(2)),
            "one /64 is one key"
        );
        assert!(table.admit(ip("2001:db8:1:3::1")).is_ok());
        assert_eq!(table.total(), 6);
        assert_eq!(table.from_address(ip("2001:db8:1:2::5")), 2);
    }

    #[test]
    fn total_limit_applies_to_everybody_including_loopback() {
        let mut table = ConnectionTable::new(3, 1);
        for _ in 0..3 {
            table.admit(ip("127.0.0.1")).unwrap();
        }
        assert_eq!(table.admit(ip("127.0.0.1")), Err(Refusal::Total(3)));
        assert_eq!(table.admit(ip("192.0.2.9")), Err(Refusal::Total(3)));
        table.release(AddressKey::of(ip("127.0.0.1")));
        assert!(table.admit(ip("192.0.2.9")).is_ok());
    }

    #[test]
    fn releasing_gives_the_slot_back_and_forgets_idle_addresses() {
        let mut table = ConnectionTable::new(10, 1);
        let key = table.admit(ip("198.51.100.7")).unwrap();
        assert!(table.admit(ip("198.51.100.7")).is_err());
        table.release(key);
        assert_eq!(table.total(), 0);
        assert!(table.per_address.is_empty());
        assert!(table.admit(ip("198.51.100.7")).is_ok());
        // A stray release never underflows.
        table.release(AddressKey::of(ip("203.0.113.1")));
        table.release(AddressKey::of(ip("203.0.113.1")));
        assert_eq!(table.total(), 0);
    }

    #[test]
    fn permits_release_on_drop() {
        let table = Rc::new(RefCell::new(ConnectionTable::new(1, 1)));
        let permit = ConnectionPermit::acquire(&table, ip("192.0.2.1")).unwrap();
        assert_eq!(
            ConnectionPermit::acquire(&table, ip("192.0.2.2")).unwrap_err(),
            Refusal::Total(1)
        );
        drop(permit);
        assert_eq!(table.borrow().total(), 0);
        assert!(ConnectionPermit::acquire(&table, ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn refusals_are_logged_once_per_interval_with_a_count() {
        let t0 = Instant::now();
        let mut table = ConnectionTable::new(0, 0);
        let peer = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 5000));
        let refusal = table.admit(peer.ip()).unwrap_err();
        let first = table.refusal_log_line(t0, peer, refusal).unwrap();
        assert_eq!(
            first,
            "refusing a connection from 192.0.2.1:5000: the server has 0 open connections"
        );
        for ms in [1, 500, 999] {
            assert_eq!(
                table.refusal_log_line(t0 + Duration::from_millis(ms), peer, refusal),
                None
            );
        }
        let next = table
            .refusal_log_line(t0 + Duration::from_secs(1), peer, Refusal::PerAddress(4))
            .unwrap();
        assert!(
            next.ends_with(
                "this address has 4 open connections (3 more refused since the last line)"
            ),
            "{next}"
        );
    }

    #[test]
    fn panic_budget_allows_a_few_panics_per_window() {
        let t0 = Instant::now();
        let mut budget = PanicBudget::default();
        for n in 0..PanicBudget::MAX_PANICS {
            assert!(budget.record(t0 + Duration::from_secs(n as u64)));
        }
        assert!(!budget.record(t0 + Duration::from_secs(10)));

        let mut spaced = PanicBudget::default();
        for n in 0..20 {
            assert!(spaced.record(t0 + PanicBudget::WINDOW / 2 * n));
        }
    }

    #[test]
    fn the_refusal_response_is_complete_http() {
        let text = std::str::from_utf8(REFUSAL_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
    }

    #[test]
    fn panic_messages_are_extracted() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "boom 1");
        let payload = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "static");
    }
}
