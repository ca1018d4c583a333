#!/usr/bin/python3
"""A GStreamer webrtcbin peer for sfubox's GStreamer-examples signalling protocol.

Written for sfubox's tests. It speaks the protocol the way the example clients do (HELLO,
SESSION, OFFER_REQUEST, ROOM, ROOM_PEER_MSG with {"sdp": ...} / {"ice": ...} JSON), sends a
test video (VP8) and audio (Opus) stream to every remote peer, decodes what it receives, and
checks that enough decoded video frames and audio buffers arrived from every remote peer.

Modes:
  --our-id ID                 register and wait to be called (the callee)
  --our-id ID --peer-id P     register and call P; with --remote-offerer, ask P to offer
  --our-id ID --room R --expect-peers N
                              join room R and exchange media with N other members (the
                              newcomer offers to the members already there)

A peer that has what it needs tells its remote peers {"done": true}. A caller or room member
leaves once it and all its remote peers are done; a callee stays until the server closes its
socket (which it does with 1000 when the caller leaves) and checks that close code.
Exit status 0 means every check passed.
"""

import argparse
import asyncio
import json
import re
import ssl
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: E402

import websockets  # noqa: E402

VIDEO_CAPS = "video/x-raw,width=320,height=240,framerate=15/1"


def log(*parts):
    print(f"[{ARGS.our_id}]", *parts, flush=True)


class Counts:
    """Decoded media from one remote peer, updated from streaming threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.video = 0
        self.audio = 0


class Link:
    """One webrtcbin pipeline towards one remote peer."""

    def __init__(self, peer, remote, send, video_pt=96, audio_pt=97):
        self.peer = peer
        self.remote = remote
        self.send = send  # coroutine function taking a dict, bound to this remote
        self.counts = Counts()
        self.pipeline = Gst.Pipeline.new(f"to-{remote}")
        description = f"""
            webrtcbin name=webrtc bundle-policy=max-bundle
            videotestsrc is-live=true pattern=ball ! {VIDEO_CAPS} ! videoconvert ! queue
              ! vp8enc deadline=1 keyframe-max-dist=15 ! rtpvp8pay pt={video_pt}
              ! application/x-rtp,media=video,encoding-name=VP8,payload={video_pt} ! webrtc.
            audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue
              ! opusenc ! rtpopuspay pt={audio_pt}
              ! application/x-rtp,media=audio,encoding-name=OPUS,payload={audio_pt} ! webrtc.
        """
        bin_ = Gst.parse_bin_from_description(description, False)
        self.pipeline.add(bin_)
        # Receiving branches go into the same bin as webrtcbin, so their pads can link.
        self.bin = bin_
        self.webrtc = bin_.get_by_name("webrtc")
        self.offerer = False
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self.on_ice_candidate)
        self.webrtc.connect("pad-added", self.on_incoming_stream)

    def start(self, offerer):
        self.offerer = offerer
        self.pipeline.set_state(Gst.State.PLAYING)

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)

    def poll_bus(self):
        """The first error on the bus, if any (there is no GLib main loop: buses are polled)."""
        bus = self.pipeline.get_bus()
        while True:
            message = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.WARNING)
            if message is None:
                return None
            if message.type == Gst.MessageType.ERROR:
                error, debug = message.parse_error()
                return f"{error.message} ({debug})"
            warning, _ = message.parse_warning()
            log("warning:", warning.message)

    # -- offer / answer -------------------------------------------------------------------

    def on_negotiation_needed(self, _webrtc):
        if not self.offerer:
            return
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _data):
        promise.wait()
        # The reply owns the description: keep it referenced while the offer is used.
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        text = offer.sdp.as_text()
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        self.peer.post(self.send({"sdp": {"type": "offer", "sdp": text}}))
        del reply

    def on_remote_description(self, kind, text):
        result, message = GstSdp.SDPMessage.new_from_text(text)
        if result != GstSdp.SDPResult.OK:
            raise RuntimeError(f"bad SDP from {self.remote}")
        sdp_type = (
            GstWebRTC.WebRTCSDPType.OFFER if kind == "offer" else GstWebRTC.WebRTCSDPType.ANSWER
        )
        description = GstWebRTC.WebRTCSessionDescription.new(sdp_type, message)
        if kind == "offer":
            promise = Gst.Promise.new_with_change_func(self.on_offer_set, None)
        else:
            promise = Gst.Promise.new()
        self.webrtc.emit("set-remote-description", description, promise)

    def on_offer_set(self, promise, _data):
        promise.wait()
        promise = Gst.Promise.new_with_change_func(self.on_answer_created, None)
        self.webrtc.emit("create-answer", None, promise)

    def on_answer_created(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()  # owns the answer, see on_offer_created
        answer = reply.get_value("answer")
        text = answer.sdp.as_text()
        self.webrtc.emit("set-local-description", answer, Gst.Promise.new())
        self.peer.post(self.send({"sdp": {"type": "answer", "sdp": text}}))
        del reply

    def on_ice_candidate(self, _webrtc, mline, candidate):
        self.peer.post(self.send({"ice": {"candidate": candidate, "sdpMLineIndex": mline}}))

    def add_ice_candidate(self, ice):
        self.webrtc.emit("add-ice-candidate", ice["sdpMLineIndex"], ice["candidate"])

    # -- receiving --------------------------------------------------------------------------

    def on_incoming_stream(self, _webrtc, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decodebin = Gst.ElementFactory.make("decodebin")
        decodebin.connect("pad-added", self.on_decoded_pad)
        self.bin.add(decodebin)
        decodebin.sync_state_with_parent()
        pad.link(decodebin.get_static_pad("sink"))

    def on_decoded_pad(self, _decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        if name.startswith("video/"):
            kind, convert = "video", "videoconvert"
        elif name.startswith("audio/"):
            kind, convert = "audio", "audioconvert"
        else:
            log("ignoring decoded", name)
            return
        queue = Gst.ElementFactory.make("queue")
        converter = Gst.ElementFactory.make(convert)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)
        sink.connect("handoff", self.on_decoded_buffer, kind)
        for element in (queue, converter, sink):
            self.bin.add(element)
            element.sync_state_with_parent()
        queue.link(converter)
        converter.link(sink)
        pad.link(queue.get_static_pad("sink"))
        log(f"decoding {kind} from {self.remote}")

    def on_decoded_buffer(self, _sink, _buffer, _pad, kind):
        with self.counts.lock:
            if kind == "video":
                self.counts.video += 1
            else:
                self.counts.audio += 1
        self.peer.loop.call_soon_threadsafe(self.peer.check_media)


def payload_types(sdp):
    """The payload types the offer uses for VP8 and Opus (so our answer sends with them)."""
    video = re.search(r"a=rtpmap:(\d+) VP8/90000", sdp, re.IGNORECASE)
    audio = re.search(r"a=rtpmap:(\d+) OPUS/48000", sdp, re.IGNORECASE)
    return (int(video.group(1)) if video else 96, int(audio.group(1)) if audio else 97)


class Peer:
    def __init__(self, args, loop):
        self.args = args
        self.loop = loop
        self.ws = None
        self.links = {}  # remote uid -> Link
        self.pending_ice = {}  # remote uid -> [ice] received before the link exists
        self.done_remotes = set()  # remotes that told us they are done
        self.media_ok = set()  # remotes we have enough media from
        self.told_done = False
        self.finished = loop.create_future()
        self.failure = None

    # -- plumbing ---------------------------------------------------------------------------

    def post(self, coroutine):
        """Runs a coroutine on the asyncio loop (from any thread)."""
        asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def fail(self, why):
        if self.failure is None:
            self.failure = why
            log("FAIL:", why)
        if not self.finished.done():
            self.finished.set_result(None)

    def sender_for(self, remote):
        async def send(payload):
            text = json.dumps(payload)
            if self.args.room:
                await self.ws.send(f"ROOM_PEER_MSG {remote} {text}")
            else:
                await self.ws.send(text)

        return send

    def link(self, remote, offerer, video_pt=96, audio_pt=97):
        link = Link(self, remote, self.sender_for(remote), video_pt, audio_pt)
        self.links[remote] = link
        link.start(offerer)
        for ice in self.pending_ice.pop(remote, []):
            link.add_ice_candidate(ice)
        return link

    # -- media checks -----------------------------------------------------------------------

    def check_media(self):
        for remote, link in self.links.items():
            with link.counts.lock:
                video, audio = link.counts.video, link.counts.audio
            if (
                remote not in self.media_ok
                and video >= self.args.min_video
                and audio >= self.args.min_audio
            ):
                self.media_ok.add(remote)
                log(f"MEDIA OK from {remote}: {video} video frames, {audio} audio buffers")
        if len(self.media_ok) >= self.expected_remotes() and not self.told_done:
            self.told_done = True
            for remote in self.links:
                self.post(self.sender_for(remote)({"done": True}))
        self.maybe_finish()

    def expected_remotes(self):
        return self.args.expect_peers if self.args.room else 1

    def maybe_finish(self):
        callee = not self.args.room and not self.args.peer_id
        if callee:
            return  # a callee leaves when the server closes its socket
        if self.told_done and self.done_remotes >= set(self.links):
            self.finished.done() or self.finished.set_result(None)

    # -- signalling -------------------------------------------------------------------------

    async def handle(self, text):
        if text.startswith("ERROR"):
            self.fail(f"server said {text!r}")
        elif text == "HELLO":
            if self.args.room:
                await self.ws.send(f"ROOM {self.args.room}")
            elif self.args.peer_id:
                await self.ws.send(f"SESSION {self.args.peer_id}")
        elif text == "SESSION_OK":
            if self.args.remote_offerer:
                await self.ws.send("OFFER_REQUEST")
            else:
                self.link(self.args.peer_id, offerer=True)
        elif text == "OFFER_REQUEST":
            self.link(self.session_partner(), offerer=True)
        elif text.startswith("ROOM_OK "):
            for member in text[len("ROOM_OK ") :].split():
                self.link(member, offerer=True)
        elif text.startswith("ROOM_PEER_JOINED "):
            log("joined:", text.split(" ", 1)[1])
        elif text.startswith("ROOM_PEER_LEFT "):
            remote = text.split(" ", 1)[1]
            log("left:", remote)
            if remote not in self.done_remotes:
                self.fail(f"{remote} left before it was done")
        elif text.startswith("ROOM_PEER_MSG "):
            _, remote, payload = text.split(" ", 2)
            self.on_payload(remote, json.loads(payload))
        elif self.args.room:
            self.fail(f"unexpected message {text[:80]!r}")
        else:
            self.on_payload(self.session_partner(), json.loads(text))

    def session_partner(self):
        # The callee learns its caller's uid from nothing on the wire; one session only.
        return self.args.peer_id or "caller"

    def on_payload(self, remote, payload):
        if "sdp" in payload:
            kind, sdp = payload["sdp"]["type"], payload["sdp"]["sdp"]
            link = self.links.get(remote)
            if link is None:
                if kind != "offer":
                    self.fail(f"{kind} from {remote} without a call")
                    return
                video_pt, audio_pt = payload_types(sdp)
                link = self.link(remote, False, video_pt, audio_pt)
            link.on_remote_description(kind, sdp)
        elif "ice" in payload:
            link = self.links.get(remote)
            if link is None:
                self.pending_ice.setdefault(remote, []).append(payload["ice"])
            else:
                link.add_ice_candidate(payload["ice"])
        elif payload.get("done"):
            self.done_remotes.add(remote)
            self.maybe_finish()
        else:
            self.fail(f"unknown payload {payload!r}")

    async def watch_buses(self):
        while not self.finished.done():
            for link in list(self.links.values()):
                error = link.poll_bus()
                if error:
                    self.fail(f"pipeline to {link.remote}: {error}")
            await asyncio.sleep(0.2)

    async def run(self):
        ssl_context = None
        if self.args.server.startswith("wss://"):
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        async with websockets.connect(self.args.server, ssl=ssl_context, max_size=None) as ws:
            self.ws = ws
            await ws.send(f"HELLO {self.args.our_id}")
            watcher = asyncio.ensure_future(self.watch_buses())

            async def receive():
                try:
                    async for message in ws:
                        if isinstance(message, bytes):
                            self.fail("unexpected binary frame")
                        else:
                            try:
                                await self.handle(message)
                            except (ValueError, KeyError, TypeError, RuntimeError) as error:
                                self.fail(f"cannot handle {message[:80]!r}: {error!r}")
                except websockets.ConnectionClosed:
                    pass
                self.on_closed(ws.close_code)

            receiver = asyncio.ensure_future(receive())
            try:
                await asyncio.wait_for(asyncio.shield(self.finished), self.args.timeout)
            except asyncio.TimeoutError:
                self.fail(
                    f"timed out; media from {sorted(self.media_ok)} of {sorted(self.links)}"
                )
            watcher.cancel()
            receiver.cancel()
        for link in self.links.values():
            with link.counts.lock:
                log(f"RESULT remote={link.remote} video={link.counts.video} "
                    f"audio={link.counts.audio}")
            link.stop()
        return self.failure is None

    def on_closed(self, code):
        log("socket closed by the server, code", code)
        callee = not self.args.room and not self.args.peer_id
        if self.finished.done():
            return
        if callee and self.told_done and code == 1000:
            self.finished.set_result(None)
        elif callee and self.told_done:
            self.fail(f"closed with {code}, expected 1000")
        else:
            self.fail(f"closed with {code} before the media checks passed")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="ws:// or wss:// URL of sfubox")
    parser.add_argument("--our-id", required=True)
    parser.add_argument("--peer-id", help="call this peer")
    parser.add_argument("--remote-offerer", action="store_true", help="ask the callee to offer")
    parser.add_argument("--room", help="join this room")
    parser.add_argument("--expect-peers", type=int, default=1, help="remote peers in the room")
    parser.add_argument("--min-video", type=int, default=30, help="decoded frames per remote")
    parser.add_argument("--min-audio", type=int, default=50, help="decoded buffers per remote")
    parser.add_argument("--timeout", type=float, default=90.0)
    ARGS = parser.parse_args()
    Gst.init(None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ok = loop.run_until_complete(Peer(ARGS, loop).run())
    log("PASS" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
