//! One-time codes: the six digits a user types, whom a code is for, and the keyed HMAC that
//! is all a store keeps of it. Neither a code nor its HMAC is ever printed.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Digits in a code, as DIGIT's egov-otp makes them and its app asks for them.
pub const CODE_LEN: usize = 6;

/// A new one-time code. Its `Debug` is redacted.
pub struct Code(String);

impl Code {
    /// Six digits from the thread's CSPRNG (ChaCha12, reseeded from the OS), uniform over
    /// 000000..=999999.
    pub fn generate() -> Self {
        let n: u32 = rand::rng().random_range(0..1_000_000);
        Code(format!("{n:06}"))
    }

    /// The digits, for delivery only; never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `text` has the shape of a code: six ASCII digits.
    pub fn looks_like(text: &str) -> bool {
        text.len() == CODE_LEN && text.bytes().all(|b| b.is_ascii_digit())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(..)")
    }
}

/// Whom a code is for: a mobile number in a tenant, as DIGIT's egov-otp names a code's
/// `identity` and `tenantId`. One number has at most one live code per tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodeOwner {
    number: String,
    tenant: String,
}

impl CodeOwner {
    /// The owner `number` in `tenant`.
    pub fn new(number: &str, tenant: &str) -> Self {
        CodeOwner {
            number: number.to_string(),
            tenant: tenant.to_string(),
        }
    }

    /// An owner no code is ever sent to (sends need a number): checking a code against it
    /// costs what a real check does and matches nothing.
    pub fn nobody() -> Self {
        Self::new("", "")
    }

    pub fn number(&self) -> &str {
        &self.number
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// The key of codes' HMACs, prepared once.
#[derive(Clone)]
pub struct CodeKey(Hmac<Sha256>);

impl CodeKey {
    /// The key for `secret`, of any length.
    pub fn new(secret: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if secret.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        CodeKey(<Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into()))
    }

    /// HMAC-SHA256 of (owner's number, owner's tenant, `text`): what a store keeps of a code,
    /// and what a presented password is compared as. Each part is length-prefixed, so no two
    /// triples share an input.
    pub fn digest(&self, owner: &CodeOwner, text: &str) -> CodeDigest {
        let mut mac = self.0.clone();
        mac.update(b"token-server one-time code\0");
        for part in [
            owner.number.as_bytes(),
            owner.tenant.as_bytes(),
            text.as_bytes(),
        ] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        let bytes = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        CodeDigest(hex)
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(***)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A code's HMAC as 64 lowercase hex digits. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeDigest(String);

impl CodeDigest {
    /// The hex digits, for the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Equality in constant time.
    pub fn matches(&self, other: &CodeDigest) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_spread_over_every_digit_in_every_place() {
        let mut seen = [[false; 10]; CODE_LEN];
        for _ in 0..2000 {
            let code = Code::generate();
            assert!(Code::looks_like(code.expose()), "{}", code.expose());
            for (place, b) in code.expose().bytes().enumerate() {
                seen[place][usize::from(b - b'0')] = true;
            }
        }
        assert!(seen.iter().all(|place| place.iter().all(|d| *d)));
        assert!(
            !format!("{:?}", Code::generate())
                .chars()
                .any(|c| c.is_ascii_digit())
        );
    }

    #[test]
    fn a_digest_binds_the_code_to_its_number_tenant_and_key() {
        let key = CodeKey::new(b"k");
        let owner = CodeOwner::new("9876543210", "pb");
        let d = key.digest(&owner, "123456");
        assert_eq!(d.as_str().len(), 64);
        assert!(!d.as_str().contains("123456"));
        assert!(d.matches(&key.digest(&owner, "123456")));
        assert!(!d.matches(&key.digest(&owner, "123457")));
        assert!(!d.matches(&key.digest(&CodeOwner::new("9876543210", "mz"), "123456")));
        assert!(!d.matches(&key.digest(&CodeOwner::new("987654321", "0pb"), "123456")));
        assert!(!d.matches(&CodeKey::new(b"other").digest(&owner, "123456")));
    }
}
