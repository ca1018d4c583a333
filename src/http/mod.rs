//! A sans-IO HTTP front: request heads in, responses out (Galène's routes; docs/galene.md, "HTTP").
//!
//! Nothing here touches a socket, a file or the clock. The runtime (`run/`) reads bytes until
//! [`parse_head`] finds a complete head, passes the [`Request`] to [`route::route`] together
//! with a [`files::FileSource`] (the embedded site or the `-static` directory) and a
//! [`source::GroupSource`] (the application), and writes back what comes out: a [`Response`]
//! or, for `/ws`, the 101 of a WebSocket upgrade. [`admin`] answers Galène's administrative API
//! (`/galene-api/`), which the runtime runs on a thread of its own. Routes that need the
//! request body go first: [`whip::route`] (WHIP and WHEP, docs/whip.md) and [`camus::route`].
//!
//! Every response closes the connection (`Connection: close`): browsers open a new one as
//! needed and the server stays simple.

pub mod admin;
pub mod camus;
pub mod date;
pub mod files;
pub mod path;
pub mod recordings;
pub mod route;
pub mod source;
pub mod status;
pub mod whip;

use std::borrow::Cow;
use std::time::SystemTime;

/// The largest request head accepted; a larger one gets 431.
pub const MAX_HEAD_SIZE: usize = 16 * 1024;

/// The most header lines accepted; more gets 431.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head. Header names keep their spelling; look them up with
/// [`Request::header`], which ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent (`/path?query`).
    pub target: String,
    /// Header lines in order; values decoded as UTF-8 with replacement.
    pub headers: Vec<(String, String)>,
    /// Whether the request arrived over TLS.
    pub tls: bool,
}

impl Request {
    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Host` header, or `""`.
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("")
    }

    /// Whether only headers must be sent back.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// The result of looking for a request head at the start of a buffer.
#[derive(Debug)]
pub enum HeadParse {
    /// More bytes are needed (and the buffer is still below [`MAX_HEAD_SIZE`]).
    Partial,
    /// A complete head; the request body or WebSocket frames start at `head_len`.
    Complete {
        /// The request.
        request: Request,
        /// Length of the head in the buffer.
        head_len: usize,
    },
    /// The head is malformed or too large: send this response and close.
    Invalid(Response),
}

/// Parses the request head at the start of `buffer`.
pub fn parse_head(buffer: &[u8], tls: bool) -> HeadParse {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(buffer) {
        Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD_SIZE => {
            HeadParse::Invalid(Response::text(431, "Request Header Fields Too Large"))
        }
        Ok(httparse::Status::Partial) => HeadParse::Partial,
        Ok(httparse::Status::Complete(head_len)) if head_len > MAX_HEAD_SIZE => {
            HeadParse::Invalid(Response::text(431, "Request Header Fields Too Large"))
        }
        Ok(httparse::Status::Complete(head_len)) => {
            let (Some(method), Some(target)) = (request.method, request.path) else {
                return HeadParse::Invalid(Response::text(400, "Bad Request"));
            };
            let request = Request {
                method: method.to_owned(),
                target: target.to_owned(),
                headers: request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
                tls,
            };
            HeadParse::Complete { request, head_len }
        }
        Err(httparse::Error::TooManyHeaders) => {
            HeadParse::Invalid(Response::text(431, "Request Header Fields Too Large"))
        }
        Err(_) => HeadParse::Invalid(Response::text(400, "Bad Request")),
    }
}

/// An HTTP response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, in order. `Content-Length`, `Date` and `Connection` are added by
    /// [`Response::encode`].
    pub headers: Vec<(&'static str, String)>,
    /// The body (also when answering HEAD: its length is announced, its bytes are not sent).
    pub body: Cow<'static, [u8]>,
}

impl Response {
    /// A response with no headers and an empty body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Cow::Borrowed(b""),
        }
    }

    /// A `text/plain` response whose body is `text` and a newline (as Go's `http.Error`).
    pub fn text(status: u16, text: &str) -> Response {
        let mut response = Response::new(status);
        response.set_header("Content-Type", "text/plain; charset=utf-8");
        response.set_header("X-Content-Type-Options", "nosniff");
        response.body = Cow::Owned(format!("{text}\n").into_bytes());
        response
    }

    /// A redirect with this status (301, 308, ...) to `location`.
    pub fn redirect(status: u16, location: &str) -> Response {
        let mut response = Response::new(status);
        response.set_header("Location", location);
        response
    }

    /// Sets a header, replacing any earlier one with the same name. Control characters in
    /// `value` are replaced by spaces, so a value can never split the head.
    pub fn set_header(&mut self, name: &'static str, value: &str) {
        let value: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name, value)),
        }
    }

    /// Adds a header line even if one with the same name exists (`Link`). Control
    /// characters in `value` are replaced by spaces, as in [`Response::set_header`].
    pub fn add_header(&mut self, name: &'static str, value: &str) {
        let value: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.headers.push((name, value));
    }

    /// Removes a header.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The value of a header (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends the head of a response whose body (sent separately) is `length` bytes long:
    /// status line, headers, `Content-Length`, `Date`, `Connection: close`.
    pub fn encode_head(&self, length: u64, date: SystemTime, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(
            out,
            "Content-Length: {length}\r\nDate: {}\r\nConnection: close\r\n\r\n",
            date::format(date)
        );
    }

    /// Appends the wire form to `out`: status line, headers, `Content-Length`, `Date`,
    /// `Connection: close`, and the body unless `head_only`.
    pub fn encode(&self, head_only: bool, date: SystemTime, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let has_body = !matches!(self.status, 100..=199 | 204 | 304);
        if has_body {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        let _ = write!(
            out,
            "Date: {}\r\nConnection: close\r\n\r\n",
            date::format(date)
        );
        if has_body && !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// The head of the `101 Switching Protocols` answer to a WebSocket upgrade.
pub fn upgrade_response(accept_key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept_key}\r\n\r\n"
    )
    .into_bytes()
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        303 => "See Other",
        304 => "Not Modified",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn parses_a_complete_head_and_reports_its_length() {
        let bytes = b"GET /a?b HTTP/1.1\r\nHost: x.org\r\nX-Thing: 1\r\n\r\nrest";
        let HeadParse::Complete { request, head_len } = parse_head(bytes, true) else {
            panic!("not complete");
        };
        assert_eq!(head_len, bytes.len() - 4);
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/a?b");
        assert_eq!(request.host(), "x.org");
        assert_eq!(request.header("x-thing"), Some("1"));
        assert!(request.tls);
    }

    #[test]
    fn partial_then_too_large_then_malformed() {
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost:", false),
            HeadParse::Partial
        ));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_SIZE, b'a');
        assert!(matches!(
            parse_head(&big, false),
            HeadParse::Invalid(Response { status: 431, .. })
        ));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse_head(&many, false),
            HeadParse::Invalid(Response { status: 431, .. })
        ));
        assert!(matches!(
            parse_head(b"GET / FOO/1.1\r\n\r\n", false),
            HeadParse::Invalid(Response { status: 400, .. })
        ));
    }

    #[test]
    fn encode_writes_length_date_and_close_and_honours_head() {
        let mut response = Response::text(404, "nope");
        response.set_header("X-A", "a\r\nInjected: yes");
        let date = UNIX_EPOCH + Duration::from_secs(784111777);
        let mut out = Vec::new();
        response.encode(false, date, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("X-A: a  Injected: yes\r\n"));
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.contains("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\nnope\n"));

        let mut out = Vec::new();
        response.encode(true, date, &mut out);
        assert!(String::from_utf8(out).unwrap().ends_with("\r\n\r\n"));

        let mut out = Vec::new();
        Response::new(304).encode(false, date, &mut out);
        assert!(!String::from_utf8(out).unwrap().contains("Content-Length"));
    }
}
