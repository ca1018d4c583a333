//! Datagram demultiplexing: which stream a datagram belongs to. A STUN request names its stream
//! by the USERNAME's local ufrag; everything else is routed by the remote address that STUN
//! learned, never by asking every `Rtc`.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::net::{Protocol, Receive};

use super::Sfu;
use super::demux;
use super::guard::guarded;
use super::ids::PeerId;
use super::peer::MAX_ADDRS_PER_PEER;
use super::types::MediaError;

impl Sfu {
    /// Handles one datagram received on the media socket.
    ///
    /// Errors say why it was dropped; none of them is fatal for the engine.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), MediaError> {
        let stun_ufrag = demux::stun_local_ufrag(datagram);
        let id = stun_ufrag
            .and_then(|u| self.ufrags.get(u).copied())
            .or_else(|| self.routes.get(&source).copied())
            .ok_or(MediaError::Unroutable)?;
        let receive = Receive::new(Protocol::Udp, source, destination, datagram)
            .map_err(|_| MediaError::Malformed)?;
        let input = Input::Receive(now, receive);
        let peer = self.peer_mut(id).ok_or(MediaError::Unroutable)?;
        if !peer.rtc.accepts(&input) {
            return Err(MediaError::Unroutable);
        }
        let handled = guarded(|| peer.rtc.handle_input(input));
        if stun_ufrag.is_some() && handled.is_ok() {
            self.learn_route(source, id);
        }
        let result = self.settle(id, handled, MediaError::Rejected);
        self.drain(now, id);
        self.run_deferred(now);
        result
    }

    /// Routes datagrams from `source` to peer `id` (learned from a STUN request that `id`
    /// accepted); a peer keeps its latest few addresses.
    fn learn_route(&mut self, source: SocketAddr, id: PeerId) {
        if self.routes.get(&source) == Some(&id) {
            return;
        }
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let mut evicted = None;
        if peer.addrs.len() >= MAX_ADDRS_PER_PEER {
            evicted = Some(peer.addrs.remove(0)); // full (and the capacity is > 0): index 0 exists
        }
        // Cannot fail: there is room now.
        let _ = peer.addrs.push(source);
        if let Some(old) = evicted
            && self.routes.get(&old) == Some(&id)
        {
            self.routes.remove(&old);
        }
        self.routes.insert(source, id);
    }

    /// Keeps the ufrag map in step with the `Rtc`'s ICE credentials (they change on restarts).
    pub(super) fn refresh_ufrag(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let ufrag = peer.rtc.direct_api().local_ice_credentials().ufrag;
        if ufrag == peer.ufrag {
            return;
        }
        let old = std::mem::replace(&mut peer.ufrag, ufrag.clone());
        if self.ufrags.get(&old) == Some(&id) {
            self.ufrags.remove(&old);
        }
        self.ufrags.insert(ufrag, id);
    }
}
