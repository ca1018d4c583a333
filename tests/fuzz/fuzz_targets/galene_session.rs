//! Galène sessions through the application facade: three clients send arbitrary frames
//! (handshakes, joins, chat, offers, ...) to the same groups, with timers running.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sfubox_fuzz::run_session(data, |app, clock| app.galene_connect(clock.now, None));
});
