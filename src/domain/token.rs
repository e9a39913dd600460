//! Opaque bearer tokens. A token is 65 random-looking bytes in URL-safe base64: a kind byte, the
//! owner's routing tag, the session id and 256 bits from the OS CSPRNG. Only the tag and the
//! session id (which locate the Redis keys) can be read back; the store keeps a SHA-256 digest of
//! the whole token, never the token itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

const SECRET_LEN: usize = 32;
const RAW_LEN: usize = 1 + 16 + 16 + SECRET_LEN;
/// Length of a token's text form.
pub const TOKEN_LEN: usize = (RAW_LEN * 4).div_ceil(3);

/// Whether a token grants access or refreshes its session; written into the token itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Access => 0x01,
            TokenKind::Refresh => 0x02,
        }
    }
}

/// Routing tag of a user: all of a user's session keys share it, so they sit in one Redis
/// Cluster hash slot. A hash of the user's uuid, so a token does not reveal whose it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserTag([u8; 16]);

impl UserTag {
    /// The tag of the user with `uuid`; one uuid always gives the same tag.
    pub fn for_user(uuid: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"token-server/user-tag\0")
            .chain_update(uuid.as_bytes())
            .finalize();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&digest[..16]);
        UserTag(tag)
    }

    /// The tag as it appears in Redis keys: 22 characters of URL-safe base64.
    pub fn key_part(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Appends [`Self::key_part`] to `out`.
    pub fn push_key_part(&self, out: &mut String) {
        URL_SAFE_NO_PAD.encode_string(self.0, out);
    }

    /// The tag that [`Self::key_part`] spelled; `None` for any other text.
    pub fn from_key_part(text: &str) -> Option<Self> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()?
            .try_into()
            .ok()
            .map(UserTag)
    }
}

impl fmt::Debug for UserTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserTag({})", self.key_part())
    }
}

/// Identifier of one session (one login on one device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A new random id.
    pub fn generate() -> Self {
        SessionId(Uuid::new_v4())
    }

    /// Parses either uuid form (hyphenated or simple hex).
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(SessionId)
    }

    /// The id as it appears in Redis keys and indexes: 22 characters of URL-safe base64.
    pub fn key_part(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Appends [`Self::key_part`] to `out`.
    pub fn push_key_part(&self, out: &mut String) {
        URL_SAFE_NO_PAD.encode_string(self.0.as_bytes(), out);
    }

    /// The id that [`Self::key_part`] spelled; `None` for any other text.
    pub fn from_key_part(text: &str) -> Option<Self> {
        let bytes: [u8; 16] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        Some(SessionId(Uuid::from_bytes(bytes)))
    }

    /// The id as a uuid, the form the API and the admin commands show.
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

/// Where a token's session lives: the owner's tag and the session id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionRef {
    pub tag: UserTag,
    pub id: SessionId,
}

/// SHA-256 of a token, the only form in which a token is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenDigest(String);

impl TokenDigest {
    /// The digest as 64 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 32 bits, in hex: how older ancestors of a refresh token are remembered.
    pub fn prefix(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// A parsed or freshly generated token. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    kind: TokenKind,
    session: SessionRef,
    secret: [u8; SECRET_LEN],
}

/// A secret as an HMAC-SHA256 key: padded (or, past 64 bytes, hashed) to the block size as
/// RFC 2104 does, once, so that keying a MAC cannot fail and costs nothing per token.
#[derive(Clone)]
pub struct HmacKey([u8; 64]);

impl HmacKey {
    /// The key for a `secret` of any length.
    pub fn new(secret: &[u8]) -> Self {
        let mut key = [0u8; 64];
        if secret.len() > key.len() {
            key[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        HmacKey(key)
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(***)")
    }
}

impl Token {
    /// A new token of `kind` for `session`, with a fresh 256-bit random secret.
    pub fn generate(kind: TokenKind, session: SessionRef) -> Self {
        let mut secret = [0u8; SECRET_LEN];
        // ThreadRng is a CSPRNG (ChaCha12) reseeded from the OS.
        rand::rng().fill_bytes(&mut secret);
        Token {
            kind,
            session,
            secret,
        }
    }

    /// The token of `kind` that a refresh presenting `from` yields: HMAC-SHA256 keyed by the
    /// server secret, so every replica derives the same successor for a retried refresh without
    /// the store ever holding it.
    pub fn derive(kind: TokenKind, from: &Token, key: &HmacKey) -> Self {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key.0.into());
        mac.update(&[kind.byte()]);
        mac.update(&from.raw());
        let secret: [u8; SECRET_LEN] = mac.finalize().into_bytes().into();
        Token {
            kind,
            session: from.session,
            secret,
        }
    }

    /// Parses the text form; anything that is not a token of this server is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        if URL_SAFE_NO_PAD.decode_slice(text, &mut raw).ok()? != RAW_LEN {
            return None;
        }
        let kind = match raw[0] {
            0x01 => TokenKind::Access,
            0x02 => TokenKind::Refresh,
            _ => return None,
        };
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&raw[1..17]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&raw[17..33]);
        let mut secret = [0u8; SECRET_LEN];
        secret.copy_from_slice(&raw[33..]);
        Some(Token {
            kind,
            session: SessionRef {
                tag: UserTag(tag),
                id: SessionId(Uuid::from_bytes(id)),
            },
            secret,
        })
    }

    fn raw(&self) -> [u8; RAW_LEN] {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = self.kind.byte();
        raw[1..17].copy_from_slice(&self.session.tag.0);
        raw[17..33].copy_from_slice(self.session.id.0.as_bytes());
        raw[33..].copy_from_slice(&self.secret);
        raw
    }

    /// The text handed to the client.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.raw())
    }

    /// Whether this is an access or a refresh token.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The session the token names; only a stored digest proves the token is live.
    pub fn session(&self) -> SessionRef {
        self.session
    }

    /// SHA-256 of the whole token: the only form of it the store keeps.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(hex(&Sha256::digest(self.raw())))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:?}, {:?})", self.kind, self.session.id)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0xf) as usize]);
    }
    // Hex digits are ASCII: this never falls back.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SessionRef {
        SessionRef {
            tag: UserTag::for_user("u-1"),
            id: SessionId::generate(),
        }
    }

    #[test]
    fn a_token_round_trips_through_its_text_form() {
        let token = Token::generate(TokenKind::Refresh, session());
        let text = token.expose();
        assert_eq!(text.len(), TOKEN_LEN);
        assert_eq!(Token::parse(&text), Some(token));
    }

    #[test]
    fn two_tokens_of_one_session_differ() {
        let s = session();
        let a = Token::generate(TokenKind::Access, s);
        let b = Token::generate(TokenKind::Access, s);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn foreign_strings_are_not_tokens() {
        let text = Token::generate(TokenKind::Access, session()).expose();
        for bad in [
            "",
            "not-a-token",
            "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            &text[1..],
            &format!("{text}A"),
            &text.replace(&text[..1], "!"),
        ] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
        let mut wrong_kind = URL_SAFE_NO_PAD.decode(&text).unwrap();
        wrong_kind[0] = 0x07;
        assert_eq!(Token::parse(&URL_SAFE_NO_PAD.encode(wrong_kind)), None);
    }

    #[test]
    fn a_prepared_key_gives_the_mac_of_the_secret_itself() {
        use hmac::{Hmac, Mac};
        for secret in [&b"short"[..], &[7u8; 64][..], &[9u8; 100][..]] {
            let mut plain = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            plain.update(b"x");
            let mut prepared =
                <Hmac<Sha256> as hmac::digest::KeyInit>::new(&HmacKey::new(secret).0.into());
            prepared.update(b"x");
            assert_eq!(
                plain.finalize().into_bytes(),
                prepared.finalize().into_bytes()
            );
        }
    }

    #[test]
    fn derived_successors_are_deterministic_and_keyed() {
        let parent = Token::generate(TokenKind::Refresh, session());
        let one = HmacKey::new(b"key-one");
        let a = Token::derive(TokenKind::Refresh, &parent, &one);
        let b = Token::derive(TokenKind::Refresh, &parent, &one);
        let other_key = Token::derive(TokenKind::Refresh, &parent, &HmacKey::new(b"key-two"));
        let access = Token::derive(TokenKind::Access, &parent, &one);
        assert_eq!(a, b);
        assert_ne!(a, other_key);
        assert_ne!(a.expose(), access.expose());
        assert_eq!(a.session(), parent.session());
        assert_ne!(a, parent);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let token = Token::generate(TokenKind::Access, session());
        let shown = format!("{token:?} {:?}", token.digest());
        assert!(!shown.contains(&token.expose()));
        assert!(!shown.contains(token.digest().as_str()));
    }
}
