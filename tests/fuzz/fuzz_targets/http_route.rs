//! HTTP request heads and routing: arbitrary bytes as a request (the first byte says whether
//! it came over TLS), routed as the runtime does to the WHIP and WHEP routes, the Camus pages,
//! the embedded site and the groups; every response must encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfubox::http::files::EmbeddedSite;
use sfubox::http::route::{Routed, route};
use sfubox::http::{HeadParse, camus, parse_head, whip};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let clock = sfubox_fuzz::Clock::new();
    let (request, head_len) = match parse_head(bytes, flags & 1 == 1) {
        HeadParse::Complete { request, head_len } => (request, head_len),
        HeadParse::Invalid(response) => {
            let mut out = Vec::new();
            response.encode(false, clock.wall, &mut out);
            return;
        }
        HeadParse::Partial => return,
    };
    assert!(head_len <= bytes.len());
    let body = bytes.get(head_len..).unwrap_or_default();
    let mut app = sfubox_fuzz::app(&clock);
    let site = EmbeddedSite::new(clock.wall);
    let routed = whip::route(&request, body, &site, &mut app, None, clock.now)
        .map(Routed::Response)
        .or_else(|| camus::route(&request, body, None, &mut app, clock.now))
        .unwrap_or_else(|| route(&request, &site, &mut app, clock.now));
    if let Routed::Response(response) = routed {
        let mut out = Vec::new();
        response.encode(request.is_head(), clock.wall, &mut out);
        assert!(out.starts_with(b"HTTP/1.1 "));
    }
});
