//! The admin API (`http::admin::handle`) on arbitrary requests: the input is a request head
//! and body (the first byte picks the caller's address: local or not), answered over an
//! in-memory store holding a writable configuration, a group and a token; every answer must
//! encode, and every file the API leaves must parse as the server will read it.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use sfubox::config::edit::GroupDocument;
use sfubox::config::{GlobalConfig, parse_tokens};
use sfubox::http::admin::memory::MemoryStore;
use sfubox::http::admin::{AdminFile, AdminRequest, AdminStore, Answer, PasswordChecks, handle};
use sfubox::http::{HeadParse, parse_head};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let HeadParse::Complete { request, head_len } = parse_head(bytes, flags & 1 == 1) else {
        return;
    };
    let body = bytes.get(head_len..).unwrap_or_default();
    let clock = sfubox_fuzz::Clock::new();
    let peer = if flags & 2 == 2 {
        SocketAddr::from(([192, 168, 1, 9], 5000))
    } else {
        SocketAddr::from(([203, 0, 113, 9], 5000))
    };
    let mut store = MemoryStore::default()
        .with(
            AdminFile::Config,
            r#"{"writableGroups":true,"users":{"root":{"password":"pw","permissions":"admin"}}}"#,
        )
        .with(
            AdminFile::Group("g".into()),
            r#"{"public":true,"users":{"bob":{"password":"b","permissions":"op"}}}"#,
        )
        .with(
            AdminFile::Tokens,
            "{\"token\":\"t\",\"group\":\"g\",\"permissions\":[\"present\"],\"expires\":\"2030-01-01T00:00:00Z\"}\n",
        );
    if flags & 4 == 4 {
        // No administrator yet: the first-run setup is open.
        store = store.with(AdminFile::Config, "{}");
    }
    let reply = handle(
        AdminRequest {
            request: &request,
            body,
            peer: Some(peer),
            now: clock.wall,
        },
        &mut store,
        &mut PasswordChecks::new(),
    );
    if let Answer::Response(response) | Answer::Stats(response) = &reply.answer {
        let mut out = Vec::new();
        response.encode(request.is_head(), clock.wall, &mut out);
        assert!(out.starts_with(b"HTTP/1.1 "));
    }
    for file in &reply.changed {
        let Ok(Some(snapshot)) = store.read(file) else {
            continue;
        };
        match file {
            AdminFile::Group(name) => {
                if let Err(e) = GroupDocument::parse(&snapshot.text) {
                    panic!("the API wrote an invalid groups/{name}.json: {e}");
                }
            }
            AdminFile::Config => {
                if let Err(e) = GlobalConfig::from_json_str(&snapshot.text) {
                    panic!("the API wrote an invalid config.json: {e}");
                }
            }
            AdminFile::Tokens => {
                let _ = parse_tokens(&snapshot.text);
            }
        }
    }
});
