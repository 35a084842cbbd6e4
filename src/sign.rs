//! Webhook signatures: pure functions, no I/O.
//!
//! - `X-Webhook-Signature`: HMAC-SHA256 of the raw body, keyed with the
//!   secret string's UTF-8 bytes, as 64 lowercase hex digits. This is what
//!   the subscriber snippet in the SPEC checks.
//! - Standard Webhooks (`webhook-signature`): `v1,` and the base64
//!   HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the base64-decoded
//!   part of a `whsec_` secret.
//!
//! Keys are prepared once per endpoint ([`HexSigner`], [`StandardSigner`])
//! and cloned per message, so the HMAC key schedule is not redone per send.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What Standard Webhooks secrets start with.
pub const WHSEC_PREFIX: &str = "whsec_";

/// Signs bodies for `X-Webhook-Signature`.
#[derive(Clone)]
pub struct HexSigner {
    keyed: HmacSha256,
}

impl HexSigner {
    pub fn new(secret: &str) -> HexSigner {
        HexSigner {
            keyed: HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length"),
        }
    }

    /// 64 lowercase hex digits.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` (as the header carries it: hex digits) is this
    /// key's signature of `body`, compared in constant time.
    pub fn verifies(&self, body: &[u8], signature: &[u8]) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }
}

/// Signs messages the Standard Webhooks way.
#[derive(Clone)]
pub struct StandardSigner {
    keyed: HmacSha256,
}

impl StandardSigner {
    /// Takes a `whsec_<base64>` secret.
    pub fn new(secret: &str) -> Result<StandardSigner, String> {
        let encoded = secret
            .strip_prefix(WHSEC_PREFIX)
            .ok_or_else(|| format!("the secret must start with `{WHSEC_PREFIX}`"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| format!("the secret must be `{WHSEC_PREFIX}` followed by base64"))?;
        if key.is_empty() {
            return Err(format!(
                "the secret must be `{WHSEC_PREFIX}` followed by a non-empty base64 key"
            ));
        }
        Ok(StandardSigner {
            keyed: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"),
        })
    }

    /// `v1,<base64 signature>` of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        format!("v1,{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_signature_matches_an_independent_hmac() {
        // Computed with Python's hmac module.
        let signer = HexSigner::new("s3cret with spaces and ünïcode");
        assert_eq!(
            signer.sign(br#"{"id":"evt_1","data":{"a":1.0}}"#),
            "80931d35f0fb575b7088fc572b3f62df62321c44f4ffd56c56f7d046a6622196"
        );
    }

    #[test]
    fn verifying_takes_exactly_the_signature() {
        let signer = HexSigner::new("s3cret");
        let body = b"{}";
        let signature = signer.sign(body);
        assert!(signer.verifies(body, signature.as_bytes()));
        assert!(signer.verifies(body, signature.to_uppercase().as_bytes()));
        assert!(!signer.verifies(b"{ }", signature.as_bytes()));
        assert!(!signer.verifies(body, &signature.as_bytes()[..62]));
        assert!(!signer.verifies(body, b"not hex"));
        assert!(!signer.verifies(body, b""));
    }

    #[test]
    fn standard_webhooks_signature_matches_the_reference_vector() {
        // The example from the Standard Webhooks reference libraries.
        let signer = StandardSigner::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn standard_secrets_must_be_whsec_base64() {
        assert!(StandardSigner::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(StandardSigner::new("whsec_***").is_err());
        assert!(StandardSigner::new("whsec_").is_err());
    }
}
