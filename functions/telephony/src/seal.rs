//! The telephony function's own secrets, all derived from one master key
//! (`TELEPHONY_SECRETS_KEY`, 32 random bytes): the key that seals each tenant's Twilio
//! subaccount auth token at rest (AES-256-GCM, the tenant and account SID bound as
//! associated data, so a sealed token moved to another item does not open), the key that
//! signs the query of our callback URLs, and the key that makes agents' Twilio Client
//! identities unguessable across tenants.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Keys derived from the master key; cheap to clone, never printed.
#[derive(Clone)]
pub struct Keys {
    seal: [u8; 32],
    callback: [u8; 32],
    identity: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// Why a sealed value does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is not base64 of nonce and ciphertext")]
    Malformed,
    #[error("the sealed value does not open with this key and context")]
    Tampered,
}

fn derive(master: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).unwrap_or_else(|_| {
        // HMAC takes keys of any length; this branch cannot run.
        <HmacSha256 as Mac>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable!())
    });
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

fn mac(key: &[u8; 32], parts: &[&str]) -> Vec<u8> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

impl Keys {
    /// The keys derived from `master`: base64 of at least 32 random bytes, or a random
    /// string of at least 40 characters (what Secrets Manager generates).
    pub fn from_base64(master: &str) -> Result<Self, String> {
        let master = master.trim();
        let bytes = STANDARD
            .decode(master)
            .or_else(|_| URL_SAFE_NO_PAD.decode(master))
            .ok()
            .filter(|b| b.len() >= 32)
            .or_else(|| (master.chars().count() >= 40).then(|| master.as_bytes().to_vec()))
            .ok_or_else(|| {
                "must be base64 of at least 32 random bytes, or 40+ random characters".to_owned()
            })?;
        Ok(Self {
            seal: derive(&bytes, "vocelio/telephony/seal/v1"),
            callback: derive(&bytes, "vocelio/telephony/callback/v1"),
            identity: derive(&bytes, "vocelio/telephony/identity/v1"),
        })
    }

    /// A new random master key, base64 (the local stack keeps one under `.local/`).
    pub fn generate_master() -> String {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// Seals `secret` for `context` (e.g. `tenant|AC…`): base64 of nonce ‖ ciphertext.
    pub fn seal(&self, context: &str, secret: &str) -> String {
        let cipher = Aes256Gcm::new((&self.seal).into());
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Opens what [`Keys::seal`] sealed for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, body) = bytes.split_at(12);
        let cipher = Aes256Gcm::new((&self.seal).into());
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)?;
        String::from_utf8(plain).map_err(|_| SealError::Tampered)
    }

    /// The signature of a callback URL's parameters (path and sorted pairs), URL-safe.
    pub fn sign_callback(&self, path: &str, pairs: &[(&str, &str)]) -> String {
        let mut sorted: Vec<(&str, &str)> = pairs.to_vec();
        sorted.sort_unstable();
        let mut parts = vec![path];
        for (k, v) in &sorted {
            parts.push(k);
            parts.push(v);
        }
        URL_SAFE_NO_PAD.encode(&mac(&self.callback, &parts)[..20])
    }

    /// Whether `signature` is [`Keys::sign_callback`] of these parameters (constant time).
    pub fn verify_callback(&self, path: &str, pairs: &[(&str, &str)], signature: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.sign_callback(path, pairs);
        expected.as_bytes().ct_eq(signature.as_bytes()).into()
    }

    /// The Twilio Client identity of agent `agent_id` of `tenant`: `agent_` + 24 hex digits
    /// of a keyed hash, the same every time, impossible to guess or collide across tenants.
    pub fn client_identity(&self, tenant: &str, agent_id: &str) -> String {
        let digest = mac(&self.identity, &[tenant, agent_id]);
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("agent_{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_base64(&STANDARD.encode([7u8; 32])).expect("keys")
    }

    #[test]
    fn sealed_tokens_open_only_in_their_context() {
        let k = keys();
        let sealed = k.seal("acme|AC1", "token-1");
        assert!(!sealed.contains("token-1"));
        assert_eq!(k.open("acme|AC1", &sealed).as_deref(), Ok("token-1"));
        assert_eq!(k.open("globex|AC1", &sealed), Err(SealError::Tampered));
        assert_ne!(
            k.seal("acme|AC1", "token-1"),
            sealed,
            "a fresh nonce each time"
        );
        let other = Keys::from_base64(&STANDARD.encode([8u8; 32])).expect("keys");
        assert_eq!(other.open("acme|AC1", &sealed), Err(SealError::Tampered));
        assert_eq!(k.open("acme|AC1", "!!"), Err(SealError::Malformed));
        assert!(Keys::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn callback_signatures_cover_every_pair_and_the_path() {
        let k = keys();
        let pairs = [("tenant", "acme"), ("call_id", "call_1")];
        let sig = k.sign_callback("/twilio/status", &pairs);
        assert!(k.verify_callback(
            "/twilio/status",
            &[("call_id", "call_1"), ("tenant", "acme")],
            &sig
        ));
        assert!(!k.verify_callback(
            "/twilio/status",
            &[("tenant", "victim"), ("call_id", "call_1")],
            &sig
        ));
        assert!(!k.verify_callback("/twilio/dial-action", &pairs, &sig));
        assert!(!k.verify_callback(
            "/twilio/status",
            &[("tenant", "acme"), ("call_id", "call_1"), ("leg", "agent")],
            &sig
        ));
    }

    #[test]
    fn identities_differ_across_tenants_and_are_stable() {
        let k = keys();
        let a = k.client_identity("acme", "ana");
        assert_eq!(a, k.client_identity("acme", "ana"));
        assert_ne!(a, k.client_identity("globex", "ana"));
        assert!(a.starts_with("agent_") && a.len() == 30);
    }
}
