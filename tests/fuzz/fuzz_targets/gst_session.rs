//! The GStreamer examples' signalling: the word parsers, then three clients sending
//! arbitrary frames (HELLO, SESSION, ROOM, messages, binary) to the hub.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfubox::gst::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse::hello(text);
        let _ = parse::command(text);
        let _ = parse::valid_room_id(text);
    }
    sfubox_fuzz::run_session(data, |app, clock| app.gst_connect(clock.now, None));
});
