//! Finding which stream a datagram belongs to without asking every `Rtc`.
//!
//! Media, RTCP and DTLS from a known remote address go through an address map. STUN from a new
//! address (ICE checks, consent refreshes after a network change) carries a USERNAME attribute
//! `"<our ufrag>:<their ufrag>"`; [`stun_local_ufrag`] reads our half so the stream can be found
//! by ufrag in O(1).

use str0m::media::Mid;

/// STUN's magic cookie (RFC 5389 §6).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// The USERNAME attribute type.
const ATTR_USERNAME: u16 = 0x0006;
/// Length of the fixed STUN header.
const HEADER_LEN: usize = 20;

/// Whether `datagram` looks like a STUN message (RFC 7983 demultiplexing plus the cookie).
pub(crate) fn is_stun(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(0..=3)) && datagram.get(4..8) == Some(&MAGIC_COOKIE[..])
}

/// The local ufrag of a STUN message's USERNAME attribute (the part before the `:`), or `None`
/// if the datagram is not STUN, has no USERNAME, or is malformed.
pub(crate) fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]));
    let attrs = datagram.get(HEADER_LEN..HEADER_LEN.checked_add(declared)?)?;
    let mut rest = attrs;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _remote) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        let padded = (len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

/// The mids of the audio and video m-lines of an SDP, in order (rejected ones, port 0, left
/// out).
pub(crate) fn sdp_mids(sdp: &str) -> impl Iterator<Item = Mid> + '_ {
    let mut media_open = false;
    sdp.lines().filter_map(move |line| {
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split_ascii_whitespace();
            let kind = words.next();
            let port = words.next();
            media_open = matches!(kind, Some("audio" | "video")) && port != Some("0");
            return None;
        }
        let mid = line.strip_prefix("a=mid:")?.trim();
        if !media_open || mid.is_empty() {
            return None;
        }
        media_open = false;
        Some(Mid::from(mid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, so the parser has to skip one.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn finds_the_mids_of_media_sections() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n";
        let mids: Vec<Mid> = sdp_mids(sdp).collect();
        assert_eq!(mids, vec![Mid::from("0"), Mid::from("v")]);
    }

    #[test]
    fn reads_the_local_half_of_username() {
        let msg = stun_with_username(b"srvA:cliB");
        assert!(is_stun(&msg));
        assert_eq!(stun_local_ufrag(&msg), Some("srvA"));
    }

    #[test]
    fn rejects_non_stun_and_broken_messages() {
        assert_eq!(stun_local_ufrag(&[]), None);
        assert_eq!(stun_local_ufrag(&[0x80, 0x60, 0, 1]), None); // RTP
        let mut msg = stun_with_username(b"nocolon");
        assert_eq!(stun_local_ufrag(&msg), None);
        msg = stun_with_username(b":x");
        assert_eq!(stun_local_ufrag(&msg), None);
        let good = stun_with_username(b"a:b");
        for cut in 0..good.len() {
            // Every truncation is rejected or still well-formed; none panics.
            let _ = stun_local_ufrag(&good[..cut]);
        }
        let mut lying = good.clone();
        lying[3] = 0xff; // declared length beyond the datagram
        assert_eq!(stun_local_ufrag(&lying), None);
    }
}
