//! The Galène message decoder and the payload parsers behind it: whatever parses must
//! serialise and parse back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfubox::galene::{Message, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(message) = Message::parse(text) else {
        return;
    };
    let _ = parse::stream_request(message.request.as_ref());
    let _ = parse::seed_request(message.request.as_ref());
    let _ = parse::clear_scope(message.value.as_ref());
    let _ = parse::token_request(message.value.as_ref());
    let _ = parse::token_edit(message.value.as_ref());
    let again = Message::parse(&message.to_json()).expect("our own output parses");
    assert_eq!(again.to_json(), message.to_json());
});
