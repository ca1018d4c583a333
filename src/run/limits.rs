//! Connection admission and the panic budget: the runtime's defences against a client (or a
//! bug) that would otherwise take the whole server with it.
//!
//! - [`ConnectionTable`] counts open TCP connections, in total and per client address, against
//!   [`Limits::max_connections`](super::Limits::max_connections) and
//!   [`Limits::max_connections_per_ip`](super::Limits::max_connections_per_ip). A connection is
//!   *opening* until its request head is complete (TLS handshake included), then *established*.
//!   When a limit is reached, the oldest opening connection (of the whole server, or of that
//!   address) is evicted to make room: half-open connections cannot lock real users out, while
//!   established ones (WebSocket sessions, responses being written) are never touched. Only
//!   when no opening connection is left to evict is the newcomer refused (plain HTTP first
//!   gets a `503` written without waiting). Under pressure (at least half the total in use)
//!   an opening connection older than
//!   [`Limits::opening_under_pressure`](super::Limits::opening_under_pressure) is evicted as
//!   soon as another connection arrives, which shortens the head timeout to that. Refusals and
//!   evictions are logged at most once per [`PRESSURE_LOG_INTERVAL`], with a count of the
//!   others, so a flood cannot fill the journal. Admission returns a [`ConnectionPermit`] that
//!   gives the slot back when dropped, whatever way the connection task ends, and that tells
//!   the task when it was evicted.
//! - [`PanicBudget`] counts panics caught while handling one peer. The runtime unwinds a
//!   panic to the peer's connection task and drops only that peer; more than
//!   [`PanicBudget::MAX_PANICS`] within [`PanicBudget::WINDOW`] means the shared state is
//!   probably damaged, and the process exits for the service manager to restart it.
//!
//! Both take the time as an argument and never read the clock, so they are tested with a
//! fake one.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The shortest time between two log lines about refused or evicted connections.
pub const PRESSURE_LOG_INTERVAL: Duration = Duration::from_secs(1);

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
    /// The server holds its maximum number of connections, all established.
    Total(usize),
    /// This client address holds its maximum number of connections, all established.
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

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One admitted connection's place in a [`ConnectionTable`], in admission order (the oldest
/// has the smallest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(u64);

/// Ends an opening connection when the table drops it: the connection's [`EvictionWatch`]
/// sees the channel close.
#[derive(Debug)]
pub struct EvictionNotice {
    /// Never sent on: held only to be dropped.
    _sender: smol::channel::Sender<()>,
}

/// The connection's side of an [`EvictionNotice`].
#[derive(Debug, Clone)]
pub struct EvictionWatch(smol::channel::Receiver<()>);

impl EvictionWatch {
    /// A notice and its watch.
    pub fn pair() -> (EvictionNotice, EvictionWatch) {
        let (sender, receiver) = smol::channel::bounded(1);
        (EvictionNotice { _sender: sender }, EvictionWatch(receiver))
    }

    /// Whether the notice was dropped (the connection was evicted, or established).
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Completes once the notice is dropped.
    pub async fn closed(&self) {
        // Nothing is ever sent: `recv` returns only when the channel closes.
        let _ = self.0.recv().await;
    }
}

/// A connection that has not finished its request head yet.
#[derive(Debug)]
struct Opening {
    key: AddressKey,
    since: Instant,
    /// Dropped to evict the connection.
    _notice: EvictionNotice,
}

/// A successful admission.
#[derive(Debug)]
pub struct Admitted {
    /// The new connection's slot.
    pub slot: SlotId,
    /// Opening connections evicted to make room for it (or because they were older than the
    /// limit under pressure).
    pub evicted: usize,
}

/// Open connections, in total and per address, against fixed limits.
#[derive(Debug)]
pub struct ConnectionTable {
    max_total: usize,
    max_per_address: usize,
    opening_under_pressure: Duration,
    /// Every admitted connection not yet released or evicted.
    slots: HashMap<SlotId, AddressKey>,
    per_address: HashMap<AddressKey, usize>,
    /// Opening connections, oldest first.
    opening: BTreeMap<SlotId, Opening>,
    /// The same, per address.
    opening_by_address: HashMap<AddressKey, BTreeSet<SlotId>>,
    next_slot: u64,
    last_pressure_log: Option<Instant>,
    unlogged_refusals: u64,
    unlogged_evictions: u64,
}

impl ConnectionTable {
    /// A table that admits at most `max_total` connections, and at most `max_per_address`
    /// from one [`AddressKey`] (loopback excepted); under pressure an opening connection
    /// older than `opening_under_pressure` is evicted when another arrives.
    pub fn new(
        max_total: usize,
        max_per_address: usize,
        opening_under_pressure: Duration,
    ) -> ConnectionTable {
        ConnectionTable {
            max_total,
            max_per_address,
            opening_under_pressure,
            slots: HashMap::new(),
            per_address: HashMap::new(),
            opening: BTreeMap::new(),
            opening_by_address: HashMap::new(),
            next_slot: 0,
            last_pressure_log: None,
            unlogged_refusals: 0,
            unlogged_evictions: 0,
        }
    }

    /// Whether at least half the total is in use.
    pub fn under_pressure(&self) -> bool {
        self.slots.len().saturating_mul(2) >= self.max_total
    }

    /// Counts one more connection from `ip` at `now`, opening until
    /// [`ConnectionTable::established`]; `notice` is dropped if it is evicted. Evicts what it
    /// must to make room, or says why the connection must be refused.
    pub fn admit(
        &mut self,
        now: Instant,
        ip: IpAddr,
        notice: EvictionNotice,
    ) -> Result<Admitted, Refusal> {
        let key = AddressKey::of(ip);
        let mut evicted = 0;
        // Under pressure, opening connections past their shortened time make room first.
        if self.under_pressure() {
            while let Some((&slot, oldest)) = self.opening.first_key_value()
                && now.saturating_duration_since(oldest.since) >= self.opening_under_pressure
            {
                self.evict(slot);
                evicted += 1;
            }
        }
        if self.slots.len() >= self.max_total {
            let Some(&slot) = self.opening.keys().next() else {
                return Err(Refusal::Total(self.max_total));
            };
            self.evict(slot);
            evicted += 1;
        }
        if !key.is_loopback() && self.count_of(key) >= self.max_per_address {
            let oldest = self
                .opening_by_address
                .get(&key)
                .and_then(|slots| slots.first().copied());
            let Some(slot) = oldest else {
                return Err(Refusal::PerAddress(self.max_per_address));
            };
            self.evict(slot);
            evicted += 1;
        }
        self.next_slot += 1;
        let slot = SlotId(self.next_slot);
        self.slots.insert(slot, key);
        *self.per_address.entry(key).or_insert(0) += 1;
        self.opening.insert(
            slot,
            Opening {
                key,
                since: now,
                _notice: notice,
            },
        );
        self.opening_by_address.entry(key).or_default().insert(slot);
        self.unlogged_evictions += evicted as u64;
        Ok(Admitted { slot, evicted })
    }

    /// The connection in `slot` finished its request head: it is never evicted from now on.
    pub fn established(&mut self, slot: SlotId) {
        if let Some(opening) = self.opening.remove(&slot) {
            self.forget_opening(opening.key, slot);
        }
    }

    /// Gives back the slot of a connection that ended (nothing if it was evicted).
    pub fn release(&mut self, slot: SlotId) {
        let Some(key) = self.slots.remove(&slot) else {
            return;
        };
        if let Some(opening) = self.opening.remove(&slot) {
            self.forget_opening(opening.key, slot);
        }
        if let Some(count) = self.per_address.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&key);
            }
        }
    }

    /// Removes an opening connection and its slot, dropping its notice.
    fn evict(&mut self, slot: SlotId) {
        self.release(slot);
    }

    fn forget_opening(&mut self, key: AddressKey, slot: SlotId) {
        if let Some(slots) = self.opening_by_address.get_mut(&key) {
            slots.remove(&slot);
            if slots.is_empty() {
                self.opening_by_address.remove(&key);
            }
        }
    }

    /// Open connections in total.
    pub fn total(&self) -> usize {
        self.slots.len()
    }

    /// Connections that have not finished their request head.
    pub fn opening(&self) -> usize {
        self.opening.len()
    }

    /// Open connections counted against `ip`'s key.
    pub fn from_address(&self, ip: IpAddr) -> usize {
        self.count_of(AddressKey::of(ip))
    }

    fn count_of(&self, key: AddressKey) -> usize {
        self.per_address.get(&key).copied().unwrap_or(0)
    }

    /// The log line for a refusal at `now`, or `None` when a line about refusals or
    /// evictions was written less than [`PRESSURE_LOG_INTERVAL`] ago (the refusal is then
    /// counted into the next line).
    pub fn refusal_log_line(
        &mut self,
        now: Instant,
        peer: impl fmt::Display,
        refusal: Refusal,
    ) -> Option<String> {
        self.unlogged_refusals += 1;
        self.pressure_log_line(now, format!("refusing a connection from {peer}: {refusal}"))
    }

    /// The log line for the evictions the admission of `peer` at `now` caused, or `None`
    /// (see [`ConnectionTable::refusal_log_line`]).
    pub fn eviction_log_line(&mut self, now: Instant, peer: impl fmt::Display) -> Option<String> {
        let line = format!(
            "closing the oldest connections that have not sent a request head, to admit \
             {peer} ({} open, {} of them opening)",
            self.total(),
            self.opening()
        );
        self.pressure_log_line(now, line)
    }

    fn pressure_log_line(&mut self, now: Instant, mut line: String) -> Option<String> {
        if self
            .last_pressure_log
            .is_some_and(|last| now.saturating_duration_since(last) < PRESSURE_LOG_INTERVAL)
        {
            return None;
        }
        self.last_pressure_log = Some(now);
        let refused = std::mem::take(&mut self.unlogged_refusals);
        let evicted = std::mem::take(&mut self.unlogged_evictions);
        line.push_str(&format!(
            "; since the last line: {refused} refused, {evicted} evicted"
        ));
        Some(line)
    }
}

/// One admitted connection's slot in a shared [`ConnectionTable`]; released when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    table: Rc<RefCell<ConnectionTable>>,
    slot: SlotId,
    /// Dropped once the connection is established (it can no longer be evicted).
    watch: RefCell<Option<EvictionWatch>>,
    established: Cell<bool>,
}

impl ConnectionPermit {
    /// Admits a connection from `ip` at `now` into `table`, or says why not. Returns the
    /// permit and how many opening connections were evicted to make room.
    pub fn acquire(
        table: &Rc<RefCell<ConnectionTable>>,
        now: Instant,
        ip: IpAddr,
    ) -> Result<(ConnectionPermit, usize), Refusal> {
        let (notice, watch) = EvictionWatch::pair();
        let admitted = table.borrow_mut().admit(now, ip, notice)?;
        let permit = ConnectionPermit {
            table: Rc::clone(table),
            slot: admitted.slot,
            watch: RefCell::new(Some(watch)),
            established: Cell::new(false),
        };
        Ok((permit, admitted.evicted))
    }

    /// The request head is complete: the connection can no longer be evicted.
    pub fn established(&self) {
        self.established.set(true);
        self.watch.replace(None);
        // See `Drop`: never borrowed elsewhere across this call.
        if let Ok(mut table) = self.table.try_borrow_mut() {
            table.established(self.slot);
        }
    }

    /// Completes when the table evicts this connection; never once it is established.
    pub async fn evicted(&self) {
        let watch = self.watch.borrow().as_ref().map(EvictionWatch::clone);
        if let Some(watch) = watch {
            watch.closed().await;
        }
        if self.established.get() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the table evicted this connection.
    pub fn is_evicted(&self) -> bool {
        !self.established.get()
            && self
                .watch
                .borrow()
                .as_ref()
                .is_some_and(EvictionWatch::is_closed)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        // Never borrowed elsewhere across a call that could drop a permit; if it ever were,
        // losing one count is better than a panic in a destructor.
        if let Ok(mut table) = self.table.try_borrow_mut() {
            table.release(self.slot);
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

    const PRESSURE: Duration = Duration::from_secs(5);

    /// A table, the fake clock's start, and the watches of every admitted connection.
    struct Fixture {
        table: ConnectionTable,
        t0: Instant,
        watches: Vec<(SlotId, EvictionWatch)>,
        established: Vec<SlotId>,
    }

    impl Fixture {
        fn new(max_total: usize, max_per_address: usize) -> Fixture {
            Fixture {
                table: ConnectionTable::new(max_total, max_per_address, PRESSURE),
                t0: Instant::now(),
                watches: Vec::new(),
                established: Vec::new(),
            }
        }

        /// Admits a connection from `from` at `t0 + secs`; its watch is `watches[n]`.
        fn admit_at(&mut self, secs: u64, from: &str) -> Result<Admitted, Refusal> {
            let (notice, watch) = EvictionWatch::pair();
            let admitted = self
                .table
                .admit(self.t0 + Duration::from_secs(secs), ip(from), notice);
            if let Ok(admitted) = &admitted {
                self.watches.push((admitted.slot, watch));
            }
            admitted
        }

        fn admit(&mut self, from: &str) -> Result<Admitted, Refusal> {
            self.admit_at(0, from)
        }

        fn establish(&mut self, slot: SlotId) {
            self.table.established(slot);
            self.established.push(slot);
        }

        /// Which admissions (in order) were evicted.
        fn evicted(&self) -> Vec<usize> {
            (0..self.watches.len())
                .filter(|n| {
                    let (slot, watch) = &self.watches[*n];
                    watch.is_closed() && !self.established.contains(slot)
                })
                .collect()
        }
    }

    #[test]
    fn per_address_limit_counts_ipv4_hosts_and_ipv6_prefixes() {
        let mut f = Fixture::new(100, 2);
        for from in [
            "192.0.2.1",
            "::ffff:192.0.2.1",
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
        ] {
            let slot = f.admit(from).unwrap().slot;
            f.establish(slot);
        }
        assert_eq!(
            f.admit("192.0.2.1").unwrap_err(),
            Refusal::PerAddress(2),
            "the mapped form counts as the same host"
        );
        assert!(f.admit("192.0.2.2").is_ok());
        assert_eq!(
            f.admit("2001:db8:1:2::77").unwrap_err(),
            Refusal::PerAddress(2),
            "one /64 is one key"
        );
        assert!(f.admit("2001:db8:1:3::1").is_ok());
        assert_eq!(f.table.total(), 6);
        assert_eq!(f.table.from_address(ip("2001:db8:1:2::5")), 2);
        assert!(f.evicted().is_empty());
    }

    #[test]
    fn a_full_address_evicts_its_own_oldest_opening_connection() {
        let mut f = Fixture::new(100, 2);
        let first = f.admit("192.0.2.1").unwrap();
        f.admit("198.51.100.1").unwrap();
        f.admit("192.0.2.1").unwrap();
        let third = f.admit("192.0.2.1").unwrap();
        assert_eq!(third.evicted, 1);
        assert_eq!(f.evicted(), vec![0], "the other address's connection stays");
        // The evicted connection's own release later changes nothing.
        f.table.release(first.slot);
        assert_eq!(f.table.from_address(ip("192.0.2.1")), 2);
        assert_eq!(f.table.total(), 3);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_opening_connection_and_keeps_established_ones() {
        let mut f = Fixture::new(3, 100);
        let session = f.admit("127.0.0.1").unwrap().slot;
        f.establish(session);
        f.admit("127.0.0.1").unwrap();
        f.admit("192.0.2.9").unwrap();
        assert_eq!(f.admit("127.0.0.1").unwrap().evicted, 1);
        assert_eq!(f.evicted(), vec![1]);
        assert_eq!(f.admit("203.0.113.5").unwrap().evicted, 1);
        assert_eq!(f.evicted(), vec![1, 2]);
        assert_eq!(f.table.total(), 3);
        assert_eq!(f.table.opening(), 2);
        // Only established connections left: the next one is refused.
        let slots: Vec<SlotId> = f.table.opening.keys().copied().collect();
        for slot in slots {
            f.establish(slot);
        }
        assert_eq!(f.admit("127.0.0.1").unwrap_err(), Refusal::Total(3));
        assert_eq!(
            f.evicted(),
            vec![1, 2],
            "establishing does not look like an eviction"
        );
        f.table.release(session);
        assert!(f.admit("192.0.2.9").is_ok());
    }

    #[test]
    fn under_pressure_old_opening_connections_go_when_another_arrives() {
        let mut f = Fixture::new(10, 100);
        // Below half the total: no pressure, old opening connections stay.
        for n in 0..4 {
            f.admit_at(n, "127.0.0.1").unwrap();
        }
        assert_eq!(f.admit_at(60, "127.0.0.1").unwrap().evicted, 0);
        // Five open: under pressure. The next arrival at t = 62 evicts those opened at
        // t ≤ 57 (0..=3), not the one of t = 60.
        assert!(f.table.under_pressure());
        assert_eq!(f.admit_at(62, "127.0.0.1").unwrap().evicted, 4);
        assert_eq!(f.evicted(), vec![0, 1, 2, 3]);
        assert_eq!(f.table.total(), 2);
    }

    #[test]
    fn releasing_gives_the_slot_back_and_forgets_idle_addresses() {
        let mut f = Fixture::new(10, 1);
        let admitted = f.admit("198.51.100.7").unwrap();
        f.establish(admitted.slot);
        assert!(f.admit("198.51.100.7").is_err());
        f.table.release(admitted.slot);
        assert_eq!(f.table.total(), 0);
        assert!(f.table.per_address.is_empty());
        assert!(f.table.opening_by_address.is_empty());
        assert!(f.admit("198.51.100.7").is_ok());
        // A stray release never underflows.
        f.table.release(SlotId(999));
        f.table.release(admitted.slot);
        assert_eq!(f.table.total(), 1);
    }

    #[test]
    fn permits_release_on_drop_and_see_their_eviction() {
        let table = Rc::new(RefCell::new(ConnectionTable::new(1, 1, PRESSURE)));
        let t0 = Instant::now();
        let (permit, evicted) = ConnectionPermit::acquire(&table, t0, ip("192.0.2.1")).unwrap();
        assert_eq!(evicted, 0);
        assert!(!permit.is_evicted());
        let (newer, evicted) = ConnectionPermit::acquire(&table, t0, ip("192.0.2.2")).unwrap();
        assert_eq!(evicted, 1);
        assert!(permit.is_evicted());
        smol::block_on(permit.evicted());
        drop(permit);
        assert_eq!(
            table.borrow().total(),
            1,
            "the evicted permit's drop released nothing"
        );

        newer.established();
        assert!(!newer.is_evicted());
        assert_eq!(
            ConnectionPermit::acquire(&table, t0, ip("192.0.2.3")).unwrap_err(),
            Refusal::Total(1)
        );
        let waiting = smol::future::or(
            async {
                newer.evicted().await;
                true
            },
            async {
                smol::Timer::after(Duration::from_millis(20)).await;
                false
            },
        );
        assert!(
            !smol::block_on(waiting),
            "an established permit is never evicted"
        );
        drop(newer);
        assert_eq!(table.borrow().total(), 0);
        assert!(ConnectionPermit::acquire(&table, t0, ip("192.0.2.3")).is_ok());
    }

    #[test]
    fn refusals_and_evictions_are_logged_once_per_interval_with_counts() {
        let mut f = Fixture::new(1, 1);
        let t0 = f.t0;
        let peer = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 5000));
        let slot = f.admit("192.0.2.1").unwrap().slot;
        f.establish(slot);
        let refusal = f.admit("192.0.2.1").unwrap_err();
        let first = f.table.refusal_log_line(t0, peer, refusal).unwrap();
        assert_eq!(
            first,
            "refusing a connection from 192.0.2.1:5000: the server has 1 open connections; \
             since the last line: 1 refused, 0 evicted"
        );
        for ms in [1, 500, 999] {
            assert_eq!(
                f.table
                    .refusal_log_line(t0 + Duration::from_millis(ms), peer, refusal),
                None
            );
        }
        f.table.release(slot);
        f.admit("192.0.2.1").unwrap();
        assert_eq!(f.admit("192.0.2.1").unwrap().evicted, 1);
        let next = f
            .table
            .eviction_log_line(t0 + Duration::from_secs(1), peer)
            .unwrap();
        assert!(
            next.ends_with(
                "(1 open, 1 of them opening); since the last line: 3 refused, 1 evicted"
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
