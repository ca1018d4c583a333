//! Trickle ICE SDP fragments (`application/trickle-ice-sdpfrag`, RFC 8840) as WHIP and WHEP
//! clients send them in `PATCH`: reading one, patching a stored offer for an ICE restart, and
//! writing the fragment that answers a restart.

/// What a client's fragment says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    /// `a=ice-ufrag` and `a=ice-pwd`, when given (both or neither).
    pub credentials: Option<(String, String)>,
    /// The `a=candidate:` lines, without the `a=` prefix.
    pub candidates: Vec<String>,
}

/// Why a fragment was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFragment(pub &'static str);

/// Reads a fragment. Lines are `x=value` (CRLF or LF); unknown attributes are ignored.
/// Refused: an empty body, a line that is not an SDP line, or only one of `a=ice-ufrag` and
/// `a=ice-pwd`.
pub fn parse(text: &str) -> Result<Fragment, BadFragment> {
    let mut ufrag = None;
    let mut pwd = None;
    let mut candidates = Vec::new();
    let mut lines = 0;
    for line in text.split('\n') {
        let line = line.trim_end_matches(['\r', ' ']);
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(BadFragment("not an SDP line"));
        }
        if let Some(value) = line.strip_prefix("a=ice-ufrag:") {
            ufrag = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("a=ice-pwd:") {
            pwd = Some(value.trim().to_owned());
        } else if let Some(candidate) = line.strip_prefix("a=candidate:") {
            candidates.push(format!("candidate:{candidate}"));
        }
    }
    if lines == 0 {
        return Err(BadFragment("empty fragment"));
    }
    let credentials = match (ufrag, pwd) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some((u, p)),
        (None, None) => None,
        _ => return Err(BadFragment("a=ice-ufrag and a=ice-pwd go together")),
    };
    Ok(Fragment {
        credentials,
        candidates,
    })
}

/// The ICE credentials of an SDP (the first `a=ice-ufrag` and `a=ice-pwd`).
pub fn credentials(sdp: &str) -> Option<(String, String)> {
    let value = |prefix: &str| {
        sdp.lines()
            .find_map(|l| l.trim_end().strip_prefix(prefix).map(str::to_owned))
    };
    Some((value("a=ice-ufrag:")?, value("a=ice-pwd:")?))
}

/// `offer` with new ICE credentials everywhere and its candidates replaced by
/// `candidates` (on the first m-line): the offer an ICE restart stands for.
pub fn restarted_offer(offer: &str, (ufrag, pwd): (&str, &str), candidates: &[String]) -> String {
    let mut out = String::with_capacity(offer.len() + 256);
    let mut first_media = true;
    let mut in_media = false;
    for line in offer.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("m=") {
            in_media = true;
        }
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
        if in_media && first_media && line.starts_with("a=mid:") {
            first_media = false;
            for candidate in candidates {
                out.push_str("a=");
                out.push_str(candidate);
                out.push_str("\r\n");
            }
        }
    }
    out
}

/// The fragment answering an ICE restart: our new credentials and candidates from `answer`.
pub fn answer_fragment(answer: &str) -> String {
    let mut out = String::new();
    let mut seen_ufrag = false;
    let mut seen_pwd = false;
    let mut candidates: Vec<&str> = Vec::new();
    for line in answer.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("a=ice-ufrag:") && !seen_ufrag {
            seen_ufrag = true;
            out.push_str(line);
            out.push_str("\r\n");
        } else if line.starts_with("a=ice-pwd:") && !seen_pwd {
            seen_pwd = true;
            out.push_str(line);
            out.push_str("\r\n");
        } else if line.starts_with("a=candidate:") && !candidates.contains(&line) {
            candidates.push(line);
        }
    }
    for candidate in candidates {
        out.push_str(candidate);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_whip_clients_send() {
        let text = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
                    m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
                    a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
                    a=end-of-candidates\r\n";
        let fragment = parse(text).expect("a valid fragment");
        assert_eq!(
            fragment.credentials,
            Some(("EsAw".into(), "P2uYro0UCOQ4zxjKXaWCBui1".into()))
        );
        assert_eq!(
            fragment.candidates,
            ["candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0"]
        );
        // LF only, no credentials: candidates alone.
        let fragment = parse("a=candidate:1 1 udp 1 192.0.2.1 9 typ host\n").expect("valid");
        assert_eq!((fragment.credentials, fragment.candidates.len()), (None, 1));
    }

    #[test]
    fn refuses_what_is_not_a_fragment() {
        assert_eq!(parse(""), Err(BadFragment("empty fragment")));
        assert_eq!(parse("\r\n\r\n"), Err(BadFragment("empty fragment")));
        assert_eq!(parse("hello world"), Err(BadFragment("not an SDP line")));
        assert_eq!(parse("{\"a\": 1}"), Err(BadFragment("not an SDP line")));
        assert!(parse("a=ice-ufrag:abcd\r\n").is_err());
        assert!(parse("a=ice-ufrag:\r\na=ice-pwd:x\r\n").is_err());
    }

    #[test]
    fn a_restart_patches_credentials_and_candidates() {
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:old\r\n\
                     a=ice-pwd:oldpassword\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                     a=candidate:1 1 udp 1 192.0.2.1 9 typ host\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
                     a=mid:1\r\na=ice-ufrag:old\r\na=ice-pwd:oldpassword\r\n";
        let new = vec!["candidate:2 1 udp 1 192.0.2.2 10 typ host".to_owned()];
        let patched = restarted_offer(offer, ("new", "newpassword"), &new);
        assert!(!patched.contains("old"), "{patched}");
        assert_eq!(patched.matches("a=ice-ufrag:new\r\n").count(), 2);
        assert_eq!(patched.matches("a=ice-pwd:newpassword\r\n").count(), 2);
        assert!(patched.contains("a=mid:0\r\na=candidate:2 1 udp 1 192.0.2.2 10 typ host\r\n"));
        assert!(!patched.contains("192.0.2.1"));
        assert_eq!(
            credentials(&patched),
            Some(("new".into(), "newpassword".into()))
        );
    }

    #[test]
    fn the_restart_answer_fragment_carries_credentials_and_candidates_once() {
        let answer = "v=0\r\na=ice-ufrag:u1\r\na=ice-pwd:p1\r\nm=audio 9 X 111\r\n\
                      a=candidate:1 1 udp 1 192.0.2.1 8443 typ host\r\nm=video 9 X 96\r\n\
                      a=ice-ufrag:u1\r\na=ice-pwd:p1\r\na=candidate:1 1 udp 1 192.0.2.1 8443 typ host\r\n";
        assert_eq!(
            answer_fragment(answer),
            "a=ice-ufrag:u1\r\na=ice-pwd:p1\r\na=candidate:1 1 udp 1 192.0.2.1 8443 typ host\r\n"
        );
    }
}
