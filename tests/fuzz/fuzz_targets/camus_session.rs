//! The Camus protocol: the message parser, then three clients admitted to one room sending
//! arbitrary frames to the hub.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfubox::camus::msg::Incoming;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(incoming) = Incoming::parse(text) {
            let _ = incoming.receiver();
            let _ = incoming.kind();
            let _ = incoming.kind_for_error();
            let _ = incoming.profile_username();
        }
    }
    sfubox_fuzz::run_session(data, |app, clock| {
        let admission = app
            .camus_admit(clock.now, "room", &[])
            .expect("rooms are created on demand");
        app.camus_connect(clock.now, None, admission)
    });
});
