//! Helpers shared by the fuzz targets: an application over an in-memory configuration, a
//! fake clock, and the input format of the session targets; [`media`] holds the media input
//! target's established streams and input format.
//!
//! Session targets read their input as lines; each line is one WebSocket text frame, and its
//! first byte says which of the target's [`CLIENTS`] connections sends it (`b'0' + n`, any
//! other byte means client 0 and is part of the frame). Every frame advances the clock by
//! 50 ms; at the end the clock jumps one minute, so every timer fires, and every connection
//! disconnects. Outputs are drained after every input, as the runtime does.

pub mod media;

use std::time::{Duration, Instant, SystemTime};

use sfubox::app::{App, AppOptions, ConnId};
use sfubox::config::{CamusRooms, MemoryDirectory};

/// Connections a session target opens.
pub const CLIENTS: usize = 3;

/// Groups of the fuzzing configuration: open, operator-only, and one with auto-subgroups.
const GROUPS: [(&str, &str); 3] = [
    (
        "public",
        r#"{"public": true, "wildcard-user": {"password": "", "permissions": "op"}}"#,
    ),
    (
        "locked",
        r#"{"users": {"bob": {"password": "pw", "permissions": "present"}}, "max-clients": 2,
            "autolock": true}"#,
    ),
    (
        "school",
        r#"{"auto-subgroups": true, "wildcard-user": {"password": "", "permissions": "present"}}"#,
    ),
];

/// A fixed point on the fake clock and the wall clock.
pub struct Clock {
    /// The monotonic time now.
    pub now: Instant,
    /// The wall time at the start.
    pub wall: SystemTime,
}

impl Clock {
    /// A clock at a fixed wall time (2025-01-01), so runs are reproducible.
    pub fn new() -> Clock {
        Clock {
            now: Instant::now(),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// The in-memory configuration every target uses.
pub fn directory() -> MemoryDirectory {
    let mut directory = MemoryDirectory::new();
    for (name, json) in GROUPS {
        // The fixed group files above are valid.
        directory.set_group_json(name, json).expect("valid group");
    }
    directory.set_camus_rooms(CamusRooms {
        auto_create: true,
        rooms: Vec::new(),
    });
    directory
}

/// An application over [`directory`].
pub fn app(clock: &Clock) -> App {
    App::new(
        Box::new(directory()),
        AppOptions::default(),
        clock.now,
        clock.wall,
    )
}

/// Splits session input into `(client index, frame)`.
pub fn frames(data: &[u8]) -> impl Iterator<Item = (usize, &str)> {
    data.split(|b| *b == b'\n').filter_map(|line| {
        let text = std::str::from_utf8(line).ok()?;
        let first = line.first().copied().unwrap_or(b'0');
        match first.checked_sub(b'0').map(usize::from) {
            Some(client) if client < CLIENTS => Some((client, text.get(1..).unwrap_or(""))),
            _ => Some((0, text)),
        }
    })
}

/// Drains every output, checking what the runtime relies on: nothing for a connection after
/// its close frame.
pub fn drain(app: &mut App, closed: &mut Vec<ConnId>) {
    while let Some((conn, output)) = app.poll_output() {
        assert!(!closed.contains(&conn), "{conn:?} got {output:?} after its close");
        if matches!(output, sfubox::app::ConnOutput::Close { .. }) {
            closed.push(conn);
        }
    }
}

/// Runs session input against connections made by `connect`, then lets time run out.
pub fn run_session(data: &[u8], mut connect: impl FnMut(&mut App, &Clock) -> ConnId) {
    let mut clock = Clock::new();
    let mut app = app(&clock);
    let mut closed = Vec::new();
    let conns: Vec<ConnId> = (0..CLIENTS)
        .map(|_| {
            let conn = connect(&mut app, &clock);
            drain(&mut app, &mut closed);
            conn
        })
        .collect();
    for (client, frame) in frames(data) {
        clock.advance(Duration::from_millis(50));
        if let Some(conn) = conns.get(client) {
            if frame.starts_with("\u{1}binary") {
                app.handle_binary(clock.now, *conn, frame.as_bytes());
            } else {
                app.handle_text(clock.now, *conn, frame);
            }
        }
        if app.poll_timeout().is_some_and(|due| due <= clock.now) {
            app.handle_timeout(clock.now);
        }
        drain(&mut app, &mut closed);
    }
    clock.advance(Duration::from_secs(60));
    app.handle_timeout(clock.now);
    drain(&mut app, &mut closed);
    for conn in conns {
        app.handle_disconnect(clock.now, conn);
        drain(&mut app, &mut closed);
    }
}
