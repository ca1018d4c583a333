//! Configuration files: the first byte picks the parser (group file, config.json,
//! ice-servers.json, camus-rooms.json, tokens.jsonl, a JWT against a key set), the rest is
//! the file. Parsed groups also go through the authentication decision.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sfubox::config::{self, Credentials, Description, GlobalConfig, GroupEntry};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let clock = sfubox_fuzz::Clock::new();
    match which % 6 {
        0 => {
            if let Ok(description) = Description::from_json_str(text) {
                let group = GroupEntry {
                    name: "g".to_owned(),
                    description: Arc::new(description),
                    is_subgroup: false,
                    revision: 0,
                };
                for (username, password) in [("bob", "pw"), ("", ""), ("alice", "x")] {
                    let creds = Credentials {
                        username: Some(username),
                        password: Some(password),
                        token: None,
                    };
                    let _ = config::authenticate(&group, creds, None, clock.wall, |_| None);
                }
            }
        }
        1 => {
            if let Ok(global) = GlobalConfig::from_json_str(text) {
                let _ = global.is_admin("admin", "pw");
            }
        }
        2 => {
            if let Ok(entries) = config::parse_ice_servers(text) {
                let _ = config::resolve_ice_servers(&entries, clock.wall);
            }
        }
        3 => {
            if let Ok(file) = config::camus::parse_camus_rooms(text) {
                let rooms = file.resolve(false);
                let _ = rooms.resolve("room");
            }
        }
        4 => {
            let _ = config::parse_tokens(text);
        }
        _ => {
            let keys: Vec<serde_json::Value> = serde_json::from_str(
                r#"[{"kty": "oct", "alg": "HS256", "k": "c2VjcmV0"}]"#,
            )
            .expect("a valid key set");
            let _ = config::parse_jwt(text, &keys, clock.wall);
        }
    }
});
