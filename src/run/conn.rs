//! One TCP connection: TLS handshake, request head (bounded in size and time), then either
//! one HTTP response or a WebSocket session pumped into the engine. Until its request head is
//! complete a connection is *opening*: the connection table may evict it to make room
//! ([`super::limits`]). The opening ([`open`]) and the session ([`session`]) are two futures,
//! so that a long session does not keep the memory of the handshake and the request.

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use smol::channel::Receiver;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::stream::StreamExt;
use smol::{Async, Timer};

use super::admin;
use super::files::DiskRecordings;
use super::limits::ConnectionPermit;
use super::prefetch::{self, FrameNeeds};
use super::{Engine, Shared};
use crate::conn::ConnOutput;
use crate::http::camus::{MAX_FORM_BODY, route as camus_route};
use crate::http::path::parse_target;
use crate::http::recordings::{self, FileRange};
use crate::http::route::{Routed, Signalling, route};
use crate::http::whip::{MAX_SDP_BODY, is_whip_path, route as whip_route};
use crate::http::{HeadParse, Response, parse_head, upgrade_response};

/// Runs `future` for at most `limit`; `None` when time ran out.
async fn within<T>(limit: std::time::Duration, future: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(future.await) }, async {
        Timer::after(limit).await;
        None
    })
    .await
}

/// Bytes read from the stream at a time while reading a request.
const READ_CHUNK: usize = 4096;

/// Capacity tungstenite reserves for incoming frames, per WebSocket (its default, 128 KiB, was
/// the largest item of a subscriber's memory). Larger frames still arrive whole: the buffer
/// grows to a frame's announced length.
const WEBSOCKET_READ_BUFFER: usize = 4096;

/// Bytes of outgoing TLS that rustls holds per connection before a write waits for the socket
/// (its default is 64 KiB). Frames are written one at a time within
/// [`super::Limits::frame_write`], so this bounds what a client that does not read makes the
/// server hold in TLS buffers; larger frames still go out, in pieces.
const TLS_SEND_BUFFER: usize = 16 * 1024;

/// Reads what `stream` has (at most [`READ_CHUNK`] bytes) onto the end of `buffer`; `None` when
/// `deadline` passed first. The bytes go straight into `buffer`: a chunk array in `read_request`
/// would make every opening connection's future 4 KiB larger.
async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
    deadline: Instant,
) -> Option<std::io::Result<usize>> {
    let filled = buffer.len();
    // Room for the read; `get_mut(filled..)` below is therefore never empty.
    buffer.resize(filled + READ_CHUNK, 0);
    let read = smol::future::or(
        async {
            Some(
                stream
                    .read(buffer.get_mut(filled..).unwrap_or_default())
                    .await,
            )
        },
        async {
            Timer::at(deadline).await;
            None
        },
    )
    .await;
    // `read` never returns more than it was given; the `min` only keeps the length in range.
    let got = match &read {
        Some(Ok(n)) => (*n).min(READ_CHUNK),
        _ => 0,
    };
    buffer.truncate(filled + got);
    read
}

/// A connection upgraded to a WebSocket, ready for its session.
// Moved once, into the session's boxed future: boxing the larger variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Session {
    /// Over plain TCP (`-insecure`).
    Plain(WebSocketStream<Async<TcpStream>>, Signalling),
    /// Over TLS.
    Tls(
        WebSocketStream<futures_rustls::server::TlsStream<Async<TcpStream>>>,
        Signalling,
    ),
}

/// Serves one accepted connection up to its WebSocket session: TLS handshake, request head,
/// then an HTTP response (`None`) or the upgrade. Until its request head is complete the
/// connection is *opening* and ends as soon as the connection table evicts it (`permit`).
///
/// The session is a separate future ([`session`]) so that the runtime can free this one,
/// sized for TLS handshakes, request parsing and responses, before a session that may last
/// for hours.
pub(super) async fn open<E: Engine>(
    shared: &Rc<Shared<E>>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    permit: &ConnectionPermit,
) -> Option<Session> {
    // Nagle would delay small WebSocket frames; failure only costs latency.
    let _ = stream.get_ref().set_nodelay(true);
    match shared.tls.clone() {
        None => {
            let mut stream = stream;
            let request =
                until_evicted(permit, peer, read_request(shared, &mut stream, peer, false)).await?;
            permit.established();
            let (socket, signalling) = respond(shared, stream, peer, request).await?;
            Some(Session::Plain(socket, signalling))
        }
        Some(acceptor) => {
            let opening = async {
                let mut tls =
                    match within(shared.limits.tls_handshake, acceptor.accept(stream)).await {
                        Some(Ok(mut tls)) => {
                            tls.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
                            tls
                        }
                        Some(Err(e)) => {
                            log::debug!("{peer}: TLS handshake failed: {e}");
                            return None;
                        }
                        None => {
                            log::info!(
                                "{peer}: TLS handshake not done in {:?}, closing",
                                shared.limits.tls_handshake
                            );
                            return None;
                        }
                    };
                let request = read_request(shared, &mut tls, peer, true).await?;
                Some((tls, request))
            };
            let (tls, request) = until_evicted(permit, peer, opening).await?;
            permit.established();
            let (socket, signalling) = respond(shared, tls, peer, request).await?;
            Some(Session::Tls(socket, signalling))
        }
    }
}

/// Runs an upgraded connection's WebSocket session to its end.
pub(super) async fn session<E: Engine>(shared: &Rc<Shared<E>>, session: Session, peer: SocketAddr) {
    match session {
        Session::Plain(socket, signalling) => websocket(shared, socket, peer, signalling).await,
        Session::Tls(socket, signalling) => websocket(shared, socket, peer, signalling).await,
    }
}

/// Runs `opening` (the TLS handshake and request head) unless the connection table evicts
/// the connection first (`None` then).
async fn until_evicted<T>(
    permit: &ConnectionPermit,
    peer: SocketAddr,
    opening: impl Future<Output = Option<T>>,
) -> Option<T> {
    let evicted = async {
        permit.evicted().await;
        log::debug!("{peer}: evicted before its request head was complete");
        None
    };
    smol::future::or(opening, evicted).await
}

/// A complete request: its head, and the bytes read so far (the head, the body, and for a
/// WebSocket upgrade perhaps the first frames).
struct ReadRequest {
    request: crate::http::Request,
    buffer: Vec<u8>,
    head_len: usize,
    body_len: usize,
    /// For the admin API ([`admin::wants`]).
    admin_api: bool,
    /// For a WHIP endpoint.
    whip: bool,
}

/// Reads a request head (and its body, see below) within [`super::Limits::request_head`]; answers
/// a malformed, oversized or late one itself and returns `None`.
async fn read_request<E, S>(
    shared: &Rc<Shared<E>>,
    stream: &mut S,
    peer: SocketAddr,
    tls: bool,
) -> Option<ReadRequest>
where
    E: Engine,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + shared.limits.request_head;
    let mut buffer = Vec::with_capacity(2048);
    let (request, head_len) = loop {
        match parse_head(&buffer, tls) {
            HeadParse::Complete { request, head_len } => break (request, head_len),
            HeadParse::Invalid(response) => {
                // 431 is a limit (head size, header count); 400 is just a bad request.
                if response.status == 431 {
                    log::info!("{peer}: request head above the size limit, answering 431");
                } else {
                    log::debug!(
                        "{peer}: malformed request head, answering {}",
                        response.status
                    );
                }
                write_response(shared, stream, &response, false).await;
                return None;
            }
            HeadParse::Partial => {}
        }
        match read_more(stream, &mut buffer, deadline).await {
            None => {
                log::info!(
                    "{peer}: request head not complete in {:?}, closing",
                    shared.limits.request_head
                );
                if !buffer.is_empty() {
                    let response = Response::text(408, "Request Timeout");
                    write_response(shared, stream, &response, false).await;
                }
                return None;
            }
            Some(Ok(0)) | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    };
    // A body is read whole, within the same deadline: a POST's (a Camus password form, a WHIP
    // offer), a WHIP PATCH's (a trickle fragment), an admin API request's (any method).
    let admin_api = admin::wants(&request);
    let whip = parse_target(&request.target).is_some_and(|t| is_whip_path(&t.path));
    let body_limit = if admin_api {
        Some(admin::BODY_LIMIT)
    } else if whip {
        matches!(request.method.as_str(), "POST" | "PATCH").then_some(MAX_SDP_BODY)
    } else {
        (request.method == "POST").then_some(MAX_FORM_BODY)
    };
    let body_len = match body_limit {
        None => 0,
        Some(_) if (admin_api || whip) && request.header("transfer-encoding").is_some() => {
            // A chunked body is not read: without this it would look like an empty one.
            let response = Response::text(411, "Length Required");
            write_response(shared, stream, &response, false).await;
            return None;
        }
        Some(limit) => match request
            .header("content-length")
            .map(|v| v.trim().parse::<usize>())
        {
            None => 0,
            Some(Ok(len)) if len <= limit => len,
            Some(Ok(_)) => {
                let response = Response::text(413, "Request body too large");
                write_response(shared, stream, &response, false).await;
                return None;
            }
            Some(Err(_)) => {
                let response = Response::text(400, "Bad Request");
                write_response(shared, stream, &response, false).await;
                return None;
            }
        },
    };
    if body_len > buffer.len() - head_len
        && request
            .header("expect")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"))
    {
        let written = within(shared.limits.response_write, async {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            stream.flush().await
        })
        .await;
        if !matches!(written, Some(Ok(()))) {
            return None;
        }
    }
    while buffer.len() < head_len + body_len {
        match read_more(stream, &mut buffer, deadline).await {
            Some(Ok(n)) if n > 0 => {}
            _ => {
                log::debug!("{peer}: request body not complete in time");
                return None;
            }
        }
    }
    Some(ReadRequest {
        request,
        buffer,
        head_len,
        body_len,
        admin_api,
        whip,
    })
}

/// Routes a complete request and writes the response, or upgrades to a WebSocket session.
async fn respond<E, S>(
    shared: &Rc<Shared<E>>,
    mut stream: S,
    peer: SocketAddr,
    read: ReadRequest,
) -> Option<(WebSocketStream<S>, Signalling)>
where
    E: Engine,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ReadRequest {
        request,
        buffer,
        head_len,
        body_len,
        admin_api,
        whip,
    } = read;
    let body = buffer
        .get(head_len..head_len + body_len)
        .unwrap_or_default();
    if admin_api {
        let body = body.to_vec();
        let (method, target) = (request.method.clone(), request.target.clone());
        let response = admin::serve(shared, request, body, peer).await;
        log::debug!("{peer}: {method} {target} -> {}", response.status);
        write_response(shared, &mut stream, &response, method == "HEAD").await;
        return None;
    }
    let freshness = shared.refresh_files(prefetch::for_request(&request)).await;
    let (routed, delay) = {
        let _files = shared.files_for_input(freshness);
        let mut engine = shared.engine.borrow_mut();
        let now = Instant::now();
        let files = shared.files.as_ref();
        let store = DiskRecordings::new(&shared.recordings_dir);
        if let Some(response) = whip_route(&request, body, files, &mut *engine, Some(peer), now) {
            (Routed::Response(response), None)
        } else if let Some(answer) =
            recordings::route(&request, body, &store, &mut *engine, now, SystemTime::now())
        {
            (answer.routed, answer.delay)
        } else {
            let camus = shared.camus_client.as_ref();
            let routed = camus_route(&request, body, camus, &mut *engine, now)
                .unwrap_or_else(|| route(&request, files, &mut *engine, now));
            (routed, None)
        }
    };
    // The engine may have run (a recorder's group looked up): send what it has.
    shared.drain();
    if let Some(delay) = delay {
        Timer::after(delay).await;
    }
    match routed {
        Routed::File { response, file } => {
            log::debug!(
                "{peer}: {} {} -> {} ({} bytes)",
                request.method,
                request.target,
                response.status,
                file.len
            );
            send_recording(shared, &mut stream, &response, &file, request.is_head()).await;
            None
        }
        Routed::Response(response) => {
            if whip && response.status == 401 {
                // As after a bad password on a WebSocket: guessing costs time.
                Timer::after(crate::core::NOT_AUTHORISED_DELAY).await;
            }
            log::debug!(
                "{peer}: {} {} -> {}",
                request.method,
                request.target,
                response.status
            );
            write_response(shared, &mut stream, &response, request.is_head()).await;
            None
        }
        Routed::Upgrade {
            accept_key,
            signalling,
        } => {
            let head = upgrade_response(&accept_key);
            let written = within(shared.limits.response_write, async {
                stream.write_all(&head).await?;
                stream.flush().await
            })
            .await;
            if !matches!(written, Some(Ok(()))) {
                return None;
            }
            let leftover = buffer.get(head_len..).unwrap_or_default().to_vec();
            // The session lasts as long as the connection: keep nothing of the request.
            drop(buffer);
            drop(request);
            let config = WebSocketConfig::default()
                .read_buffer_size(WEBSOCKET_READ_BUFFER)
                .max_message_size(Some(shared.limits.max_message))
                .max_frame_size(Some(shared.limits.max_message));
            let socket =
                WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(config))
                    .await;
            Some((socket, signalling))
        }
    }
}

async fn write_response<E, S>(
    shared: &Shared<E>,
    stream: &mut S,
    response: &Response,
    head_only: bool,
) where
    S: AsyncWrite + Unpin,
{
    let mut bytes = Vec::with_capacity(512 + response.body.len());
    response.encode(head_only, SystemTime::now(), &mut bytes);
    let _ = within(shared.limits.response_write, async {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        stream.close().await
    })
    .await;
}

/// Bytes of a recording read at a time while sending it.
const RECORDING_CHUNK: usize = 64 * 1024;

/// Sends a recording: the head, then `file.len` bytes read from the file `RECORDING_CHUNK` at
/// a time between writes (each write within the response time limit). A file that shrank
/// meanwhile ends the connection early; the client sees a short body.
async fn send_recording<E, S>(
    shared: &Shared<E>,
    stream: &mut S,
    response: &Response,
    file: &FileRange,
    head_only: bool,
) where
    S: AsyncWrite + Unpin,
{
    use std::io::Read as _;
    let mut head = Vec::with_capacity(512);
    response.encode_head(file.len, SystemTime::now(), &mut head);
    let limit = shared.limits.response_write;
    if !matches!(within(limit, stream.write_all(&head)).await, Some(Ok(()))) {
        return;
    }
    if !head_only && file.len > 0 {
        let store = DiskRecordings::new(&shared.recordings_dir);
        let mut source = match store.open(&file.path, file.start) {
            Ok(source) => source,
            Err(e) => {
                log::warn!("recording {}: {e}", file.path);
                return;
            }
        };
        let mut left = file.len;
        let mut chunk = vec![0u8; RECORDING_CHUNK];
        while left > 0 {
            let want = usize::try_from(left)
                .unwrap_or(RECORDING_CHUNK)
                .min(RECORDING_CHUNK);
            // `want` is at most the chunk's length.
            let got = match source.read(&mut chunk[..want]) {
                Ok(0) | Err(_) => return,
                Ok(got) => got,
            };
            if !matches!(
                within(limit, stream.write_all(&chunk[..got])).await,
                Some(Ok(()))
            ) {
                return;
            }
            left -= got as u64;
        }
    }
    let _ = within(limit, async {
        stream.flush().await?;
        stream.close().await
    })
    .await;
}

/// Pumps a WebSocket session: frames in go to the engine, the engine's outputs go out
/// through the bounded queue. Ends when either side closes or fails.
async fn websocket<E, S>(
    shared: &Rc<Shared<E>>,
    socket: WebSocketStream<S>,
    peer: SocketAddr,
    signalling: Signalling,
) where
    E: Engine,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frame_needs = FrameNeeds::new(&signalling);
    let (id, outputs, killed) = shared.open(peer, signalling);
    // Tells the engine the connection is gone however this function ends, a panic included.
    let _closer = CloseOnDrop { shared, id };
    log::debug!("{peer}: WebSocket {id:?} open");
    let (mut sender, mut receiver) = socket.split();
    // Set when the client sent a message above the limit: we close with 1009, as Gorilla
    // and Python's websockets do.
    let oversize = Cell::new(false);

    let reader = async {
        while let Some(message) = receiver.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    let needs = frame_needs.for_text(text.as_str());
                    let freshness = shared.refresh_files(needs).await;
                    let _files = shared.files_for_input(freshness);
                    shared
                        .with_engine(|engine| engine.handle_text(Instant::now(), id, text.as_str()))
                }
                Ok(Message::Binary(data)) => {
                    shared.with_engine(|engine| engine.handle_binary(Instant::now(), id, &data))
                }
                Ok(Message::Close(_)) => break,
                Ok(Message::Pong(_)) => {
                    shared.with_engine(|engine| engine.handle_pong(Instant::now(), id))
                }
                // Pings are answered by tungstenite; raw frames mean nothing here.
                Ok(_) => {}
                Err(e) => {
                    let too_big = matches!(e, async_tungstenite::tungstenite::Error::Capacity(_));
                    if too_big {
                        log::info!("{peer}: {id:?}: {e}; closing with 1009");
                    } else {
                        log::debug!("{peer}: {id:?}: {e}");
                    }
                    oversize.set(too_big);
                    break;
                }
            }
            // Frames already buffered would otherwise all be handled in one go, and the
            // outputs they cause (to this and other connections) could fill bounded queues
            // whose writers never got to run: let the writers drain between frames.
            smol::future::yield_now().await;
        }
    };

    let writer = async {
        let writer_outputs: &Receiver<ConnOutput> = &outputs;
        while let Ok(output) = writer_outputs.recv().await {
            if killed.get() {
                break;
            }
            let (message, closing) = match output {
                ConnOutput::Text(text) => (Message::text(text), false),
                ConnOutput::Binary(data) => (Message::binary(data), false),
                ConnOutput::Ping => (Message::Ping(Default::default()), false),
                ConnOutput::Close { code, reason } => (
                    Message::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    })),
                    true,
                ),
            };
            match within(shared.limits.frame_write, sender.send(message)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    log::debug!("{peer}: {id:?}: write failed: {e}");
                    break;
                }
                None => {
                    log::info!("{peer}: {id:?}: frame write timed out, disconnecting");
                    break;
                }
            }
            if closing {
                // Give the client a moment to answer the close frame; the reader ends the
                // session as soon as it does.
                Timer::after(shared.limits.shutdown_grace).await;
                break;
            }
        }
    };

    smol::future::or(reader, writer).await;
    // Completes the closing handshake when the client started it (or sends our close when
    // the session ended otherwise); errors mean the socket is gone already.
    let too_big = oversize.get().then(|| CloseFrame {
        code: CloseCode::Size,
        reason: "".into(),
    });
    let _ = within(shared.limits.frame_write, sender.close(too_big)).await;
    log::debug!("{peer}: WebSocket {id:?} closed");
}

/// Calls [`Shared::close`] for a connection when dropped.
struct CloseOnDrop<'a, E: Engine> {
    shared: &'a Shared<E>,
    id: crate::conn::ConnId,
}

impl<E: Engine> Drop for CloseOnDrop<'_, E> {
    fn drop(&mut self) {
        self.shared.close(self.id);
    }
}
