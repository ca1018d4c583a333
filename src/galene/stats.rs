//! The JSON of `/galene-api/v0/.stats`, in Galène's layout, from the media session layer's
//! figures: groups, their clients, each client's up and down streams and their tracks.
//! Empty lists are left out, as Galène leaves them out. Each client also carries the
//! `username` it joined under (not in Galène's; the admin page lists who is in a group).

use serde_json::{Map, Value, json};

use crate::streams::{GroupStats, StreamStats};

/// The whole document, groups in the order given.
pub fn stats_json(groups: &[GroupStats]) -> String {
    let groups: Vec<Value> = groups
        .iter()
        .map(|group| {
            let mut object = Map::new();
            object.insert("name".into(), Value::String(group.name.clone()));
            let clients: Vec<Value> = group
                .clients
                .iter()
                .map(|client| {
                    let mut object = Map::new();
                    object.insert("id".into(), Value::String(client.id.clone()));
                    if let Some(username) = &client.username {
                        object.insert("username".into(), Value::String(username.clone()));
                    }
                    if !client.up.is_empty() {
                        object.insert("up".into(), streams_json(&client.up, false));
                    }
                    if !client.down.is_empty() {
                        object.insert("down".into(), streams_json(&client.down, true));
                    }
                    Value::Object(object)
                })
                .collect();
            if !clients.is_empty() {
                object.insert("clients".into(), Value::Array(clients));
            }
            Value::Object(object)
        })
        .collect();
    Value::Array(groups).to_string()
}

/// Streams with their tracks; down tracks also carry the round trip and the layer chosen.
fn streams_json(streams: &[StreamStats], down: bool) -> Value {
    let streams = streams
        .iter()
        .map(|stream| {
            let tracks: Vec<Value> = stream
                .tracks
                .iter()
                .map(|t| {
                    let mut track = json!({
                        "bitrate": t.bitrate,
                        "loss": t.loss,
                        "jitter": t.jitter_ms,
                    });
                    if down && let Some(rtt) = t.rtt_ms {
                        track["rtt"] = json!(rtt);
                    }
                    if down && let Some(layer) = t.layer {
                        track["sid"] = json!(layer.sid);
                        track["maxSid"] = json!(layer.max_sid);
                        track["tid"] = json!(layer.tid);
                        track["maxTid"] = json!(layer.max_tid);
                        if let Some(max) = layer.max_bitrate {
                            track["maxBitrate"] = json!(max);
                        }
                    }
                    track
                })
                .collect();
            json!({"id": stream.id, "tracks": tracks})
        })
        .collect();
    Value::Array(streams)
}
