//! SRTP without a WebRTC stack, for the raw relay (`loadgen raw-relay`): the floor of
//! forwarding on this machine.
//!
//! The raw relay still needs ICE-lite and DTLS to interoperate with the generator's peers; it
//! lets str0m do those (and RTCP), and takes the SRTP master keys out of the DTLS handshake
//! with [`KeyTap`], a DTLS provider that wraps the default one and copies the exported
//! keying material. From then on every RTP packet bypasses str0m: one AEAD-AES-GCM open per
//! incoming packet ([`SrtpRx`], RFC 7714) and one seal per receiver ([`SrtpTx`]), with
//! aws-lc-rs (the library under sfubox's str0m).
//!
//! Only the AEAD profiles are implemented (str0m's peers negotiate AES-256-GCM first, then
//! AES-128-GCM); a peer that negotiates AES-CM-HMAC-SHA1 stays on str0m and says so.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::crypto::CryptoError;
use str0m::crypto::dtls::{
    DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
    SrtpProfile,
};

/// The SRTP master keys of one DTLS session, once its handshake exported them.
#[derive(Debug, Default)]
pub struct KeySlot {
    exported: Mutex<Option<Exported>>,
}

#[derive(Debug, Clone)]
struct Exported {
    material: Vec<u8>,
    profile: SrtpProfile,
    active: bool,
}

thread_local! {
    /// The slot of the DTLS instance made last on this thread (str0m makes it while an `Rtc`
    /// is built).
    static LAST_SLOT: RefCell<Option<Arc<KeySlot>>> = const { RefCell::new(None) };
}

/// Takes the key slot of the `Rtc` built last on this thread.
pub fn take_last_slot() -> Option<Arc<KeySlot>> {
    LAST_SLOT.with(|s| s.borrow_mut().take())
}

/// A crypto provider whose DTLS sessions report their SRTP keys.
pub fn tapping_provider() -> CryptoProvider {
    let mut provider = str0m::crypto::from_feature_flags();
    let inner = provider.dtls_provider;
    // Leaked once per process: the provider wants a `'static` DTLS provider.
    provider.dtls_provider = Box::leak(Box::new(KeyTap { inner }));
    provider
}

/// The DTLS provider wrapper.
#[derive(Debug)]
struct KeyTap {
    inner: &'static dyn DtlsProvider,
}

impl DtlsProvider for KeyTap {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        self.inner.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let inner = self.inner.new_dtls(cert, now, dtls_version, mtu)?;
        let slot = Arc::new(KeySlot::default());
        LAST_SLOT.with(|s| *s.borrow_mut() = Some(Arc::clone(&slot)));
        Ok(Box::new(TappedDtls { inner, slot }))
    }
}

#[derive(Debug)]
struct TappedDtls {
    inner: Box<dyn DtlsInstance>,
    slot: Arc<KeySlot>,
}

impl DtlsInstance for TappedDtls {
    fn set_active(&mut self, active: bool) {
        self.inner.set_active(active)
    }
    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.inner.handle_packet(packet)
    }
    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let out = self.inner.poll_output(buf);
        if let DtlsOutput::KeyingMaterial(km, profile) = &out {
            let exported = Exported {
                material: km.to_vec(),
                profile: *profile,
                active: self.inner.is_active(),
            };
            if let Ok(mut e) = self.slot.exported.lock() {
                *e = Some(exported);
            }
        }
        out
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.inner.handle_timeout(now)
    }
    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.inner.send_application_data(data)
    }
    fn is_active(&self) -> bool {
        self.inner.is_active()
    }
    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.inner.protocol_version()
    }
    fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.inner.close()
    }
}

/// SRTP's key derivation labels (RFC 3711 §4.3.1).
const LABEL_RTP_KEY: u8 = 0;
const LABEL_RTP_SALT: u8 = 2;
/// AEAD-AES-GCM: 12-byte salts, 16-byte tags (RFC 7714).
const SALT_LEN: usize = 12;
/// The GCM tag.
pub const TAG_LEN: usize = 16;

/// One direction's RTP session key and salt.
struct SessionKeys {
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
}

impl KeySlot {
    /// The (receive, send) RTP contexts, once the handshake has exported keys; `Err` when the
    /// profile is not an AEAD one.
    pub fn contexts(&self) -> Option<Result<(SrtpRx, SrtpTx), SrtpProfile>> {
        let exported = self.exported.lock().ok()?.clone()?;
        let key_len = match exported.profile {
            SrtpProfile::AEAD_AES_128_GCM => 16,
            SrtpProfile::AEAD_AES_256_GCM => 32,
            other => return Some(Err(other)),
        };
        let m = &exported.material;
        if m.len() != 2 * key_len + 2 * SALT_LEN {
            return Some(Err(exported.profile));
        }
        // Layout (RFC 5764 §4.2): client key, server key, client salt, server salt.
        let client = (&m[..key_len], &m[2 * key_len..2 * key_len + SALT_LEN]);
        let server = (
            &m[key_len..2 * key_len],
            &m[2 * key_len + SALT_LEN..2 * key_len + 2 * SALT_LEN],
        );
        let (local, remote) = if exported.active {
            (client, server)
        } else {
            (server, client)
        };
        let derive = |(master, salt): (&[u8], &[u8])| -> Option<SessionKeys> {
            let mut key = vec![0u8; key_len];
            kdf(master, salt, LABEL_RTP_KEY, &mut key)?;
            let mut session_salt = [0u8; SALT_LEN];
            kdf(master, salt, LABEL_RTP_SALT, &mut session_salt)?;
            let algorithm = if key_len == 16 {
                &AES_128_GCM
            } else {
                &AES_256_GCM
            };
            Some(SessionKeys {
                key: LessSafeKey::new(UnboundKey::new(algorithm, &key).ok()?),
                salt: session_salt,
            })
        };
        let (Some(rx), Some(tx)) = (derive(remote), derive(local)) else {
            return Some(Err(exported.profile));
        };
        Some(Ok((
            SrtpRx {
                keys: rx,
                roc: Vec::new(),
            },
            SrtpTx { keys: tx },
        )))
    }
}

/// RFC 3711's AES-CM key derivation with a key derivation rate of 0: the keystream of AES-CTR
/// under the master key, starting at (salt padded to 14 bytes, label XORed into byte 7) × 2¹⁶.
fn kdf(master: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) -> Option<()> {
    let algorithm = if master.len() == 16 {
        &AES_128
    } else {
        &AES_256
    };
    let key = EncryptingKey::ctr(UnboundCipherKey::new(algorithm, master).ok()?).ok()?;
    let mut iv = [0u8; 16];
    iv.get_mut(..master_salt.len())?
        .copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    key.less_safe_encrypt(out, EncryptionContext::Iv128(iv.into()))
        .ok()?;
    Some(())
}

/// The GCM nonce of an RTP packet (RFC 7714 §8.1).
fn nonce(salt: &[u8; SALT_LEN], ssrc: u32, roc: u32, seq: u16) -> Nonce {
    let mut iv = [0u8; SALT_LEN];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq.to_be_bytes());
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// The length of an RTP header (fixed part, CSRCs, extension), if the packet holds one.
pub fn rtp_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let mut len = 12 + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (packet.len() >= len).then_some(len)
}

/// Receiving side: decrypts a publisher's RTP, tracking each SSRC's rollover counter.
pub struct SrtpRx {
    keys: SessionKeys,
    /// Per SSRC: (highest sequence number, rollover counter).
    roc: Vec<(u32, u16, u32)>,
}

/// An RTP packet decrypted in place.
pub struct Opened {
    /// Header length (the payload follows).
    pub header_len: usize,
    /// End of the payload (the tag is cut off).
    pub payload_end: usize,
    /// The packet's rollover counter.
    pub roc: u32,
}

impl SrtpRx {
    /// Decrypts `packet` in place; `None` if it is not valid SRTP under these keys.
    pub fn open(&mut self, packet: &mut [u8]) -> Option<Opened> {
        let header_len = rtp_header_len(packet)?;
        let payload_end = packet.len().checked_sub(TAG_LEN)?;
        if payload_end < header_len {
            return None;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        // RFC 3711 appendix A: the index closest to the highest one seen.
        let entry = match self.roc.iter().position(|(s, _, _)| *s == ssrc) {
            Some(i) => i,
            None => {
                self.roc.push((ssrc, seq, 0));
                self.roc.len() - 1
            }
        };
        let (_, high, roc) = self.roc[entry]; // entry is in range: found or pushed
        let guess = if high < 0x8000 {
            if seq > high + 0x8000 {
                roc.wrapping_sub(1)
            } else {
                roc
            }
        } else if seq < high - 0x8000 {
            roc.wrapping_add(1)
        } else {
            roc
        };
        let (header, rest) = packet.split_at_mut(header_len);
        let n = nonce(&self.keys.salt, ssrc, guess, seq);
        self.keys
            .key
            .open_in_place(n, Aad::from(&*header), rest)
            .ok()?;
        let slot = &mut self.roc[entry];
        if guess == roc.wrapping_add(1) || (guess == roc && seq > high) {
            slot.1 = seq;
            slot.2 = guess;
        }
        Some(Opened {
            header_len,
            payload_end,
            roc: guess,
        })
    }
}

/// Sending side: encrypts RTP for one receiver.
pub struct SrtpTx {
    keys: SessionKeys,
}

impl SrtpTx {
    /// Encrypts, in place, the packet at `out[start..]` (header and payload) and appends the
    /// tag.
    pub fn seal(&self, out: &mut Vec<u8>, start: usize, header_len: usize, roc: u32) -> Option<()> {
        let packet = out.get_mut(start..)?;
        if packet.len() < header_len || header_len < 12 {
            return None;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let n = nonce(&self.keys.salt, ssrc, roc, seq);
        let (header, payload) = packet.split_at_mut(header_len);
        let tag = self
            .keys
            .key
            .seal_in_place_separate_tag(n, Aad::from(&*header), payload)
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(())
    }
}
