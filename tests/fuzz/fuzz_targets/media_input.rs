//! The media input path: arbitrary datagrams into a running `Sfu` whose streams are
//! established (ICE, DTLS and SRTP up) with real str0m peers: a simulcast publisher (audio,
//! video layers `h` and `l`) and two subscribers, over the in-memory network of
//! `sfubox::media::sim`. See `sfubox_fuzz::media` for the input format: raw datagrams from
//! known and unknown addresses, STUN requests with valid integrity (and fuzzed attributes),
//! DTLS-, RTP- and RTCP-looking records, valid SRTP with fuzzed payloads and headers, layer
//! switches and time jumps.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sfubox_fuzz::media::run(data);
});
