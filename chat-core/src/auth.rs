//! Built-in password authentication: Argon2id hashes and opaque bearer tokens.
//!
//! Passwords are hashed with Argon2id on the blocking thread pool, never on the async runtime.
//! Tokens are 256 random bits, given to the client once and stored only as their SHA-256.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::ids::{SessionId, UserId};
use crate::user::User;

/// The SHA-256 of a token: what stores keep instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of a token as the client presents it.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash in lowercase hexadecimal.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Rebuilds a hash from its raw bytes (as a store reads them back).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A new random token (256 bits, base64url) and its hash.
pub(crate) fn new_token() -> (String, TokenHash) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = TokenHash::of(&token);
    (token, hash)
}

/// An access token and a refresh token, as handed to the client.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    /// Sent as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchanged once for a new pair.
    pub refresh_token: String,
    /// When the access token stops being accepted.
    pub access_expires_at: DateTime<Utc>,
    /// When the refresh token stops being accepted.
    pub refresh_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// A single-use ticket for opening a live feed, as handed to the client
/// ([`Chat::issue_ticket`](crate::Chat::issue_ticket)).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket (256 random bits, base64url); the store keeps only its hash.
    pub ticket: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOutcome {
    /// The new tokens.
    pub tokens: TokenPair,
    /// Who logged in.
    pub user: User,
}

/// Who a valid access token authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticated {
    /// The user, to pass as the actor of every call.
    pub user_id: UserId,
    /// The login, to revoke on logout.
    pub session_id: SessionId,
}

/// How a user identifies at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginName {
    /// By username (case-insensitive).
    Username(String),
    /// By email address (case-insensitive).
    Email(String),
}

/// Argon2id hashing with a fixed cost, off the async runtime, a few at a time.
///
/// Each hash holds its cost in memory (19 MiB by default) while it runs: unbounded, 300
/// concurrent wrong room passwords took a server to 5.4 GB. Hashes run in at most
/// `max_concurrent` slots; at most `max_queued` requests wait for one, and the rest are refused
/// at once.
pub(crate) struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    slots: Arc<Semaphore>,
    memory: Arc<Memory>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
    /// A hash of a random password, verified against when the user is unknown so that login
    /// takes the same time either way.
    dummy: OnceCell<String>,
}

/// Argon2's working memory (19 MiB a hash by default), kept for the next hash: at most one
/// buffer per slot, so hashing allocates nothing once warm. When each hash allocated its own,
/// glibc's allocator kept the freed blocks (its mmap threshold grows to their size): 10 s of
/// logins at 16 connections left an idle server at 566 MiB.
#[derive(Default)]
struct Memory(Mutex<Vec<Vec<Block>>>);

impl Memory {
    /// Runs `work` with a buffer of `blocks` blocks, then keeps the buffer.
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let pool = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut buffer = pool()
            .pop()
            .filter(|buffer| buffer.len() == blocks)
            .unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = work(&mut buffer);
        pool().push(buffer);
        result
    }
}

/// Argon2 of `password` with `salt` as a PHC string's parts, computed in `memory` (what
/// `argon2::PasswordHasher::hash_password` does in memory of its own). Labelled Argon2id v19,
/// the only kind this engine writes; verifying other kinds compares only the output.
fn phc<'a>(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'a>,
    memory: &mut [Block],
) -> argon2::password_hash::Result<PasswordHash<'a>> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let params = argon2.params();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)?)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// Whether `password` gives `stored` with the algorithm, version and cost written in it.
fn phc_matches(
    password: &[u8],
    stored: &PasswordHash<'_>,
    memory: &Memory,
) -> argon2::password_hash::Result<bool> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored.version.map(Version::try_from).transpose()?;
    let params = Params::try_from(stored)?;
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let computed = memory.with(blocks, |memory| phc(&argon2, password, salt, memory))?;
    // `Output`'s equality is constant-time.
    Ok(computed.hash == Some(expected))
}

/// Counts a request waiting for a hashing slot while it exists.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PasswordHasher {
    pub(crate) fn new(params: Params, max_concurrent: usize, max_queued: usize) -> Self {
        Self {
            argon2: Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            memory: Arc::default(),
            waiting: Arc::default(),
            max_queued,
            dummy: OnceCell::new(),
        }
    }

    /// A hashing slot, held until the hash is done (even if its caller goes away first).
    async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::RateLimited {
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        let _waiting = Waiting(Arc::clone(&self.waiting));
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.into()))
    }

    /// The PHC string of a new salted hash of `password`.
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let slot = self.slot().await?;
        let (argon2, memory) = (Arc::clone(&self.argon2), Arc::clone(&self.memory));
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let salt = SaltString::generate(&mut OsRng);
            let blocks = argon2.params().block_count();
            memory
                .with(blocks, |memory| {
                    phc(&argon2, password.as_bytes(), salt.as_salt(), memory)
                })
                .map(|hash| hash.to_string())
                .map_err(|e| Error::Internal(format!("argon2 hashing: {e}").into()))
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?
    }

    /// Whether `password` matches `hash`; with no hash, checks against the dummy hash (same
    /// cost) and answers false.
    pub(crate) async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool> {
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let slot = self.slot().await?;
        let memory = Arc::clone(&self.memory);
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let checked = PasswordHash::new(&hash)
                .and_then(|stored| phc_matches(password.as_bytes(), &stored, &memory));
            checked.unwrap_or_else(|error| {
                tracing::error!(%error, "stored password hash is not an Argon2 PHC string");
                false
            })
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(real && matches)
    }

    async fn dummy_hash(&self) -> Result<&str> {
        self.dummy
            .get_or_try_init(|| async {
                let (random, _) = new_token();
                self.hash(&random).await
            })
            .await
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HashCost;

    #[test]
    fn the_default_cost_is_argon2s_default() {
        // `Chat::new` relies on it to need no check.
        assert_eq!(HashCost::default().params().unwrap(), Params::default());
    }

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let (a, hash_a) = new_token();
        let (b, hash_b) = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, b);
        assert_ne!(hash_a, hash_b);
        assert_eq!(TokenHash::of(&a), hash_a);
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let hasher = PasswordHasher::new(HashCost::insecure_fast().params().unwrap(), 2, 8);
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse", Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse", Some(hash)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
        assert!(!hasher.verify("x", Some("not a hash".into())).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(HashCost::insecure_fast().params().unwrap(), 2, 8);
        // Ours, checked by the argon2 crate's own verifier…
        let ours = hasher.hash("correct horse").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // …and the crate's, at another cost and as Argon2i, checked by ours.
        let params = Params::new(64, 3, 1, Some(24)).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"battery staple", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify("battery staple", Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("battery stapler", Some(theirs))
                .await
                .unwrap()
        );
        // One buffer per slot at most is kept for the next hash.
        assert!(hasher.memory.0.lock().unwrap().len() <= 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_beyond_the_slots_and_the_queue_is_refused() {
        // One slot, two waiting: of ten at once, at most three are hashed, the rest refused.
        let hasher = Arc::new(PasswordHasher::new(Params::default(), 1, 2));
        let attempts: Vec<_> = (0..10)
            .map(|i| {
                let hasher = Arc::clone(&hasher);
                tokio::spawn(async move { hasher.hash(&format!("password {i}")).await })
            })
            .collect();
        let (mut hashed, mut refused) = (0, 0);
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => hashed += 1,
                Err(Error::RateLimited { .. }) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            hashed >= 1 && refused >= 1,
            "{hashed} hashed, {refused} refused"
        );
        assert!(
            hashed <= 3 + 1,
            "{hashed} hashed: the queue did not bound them"
        );
        // Once the burst is over, hashing works again.
        assert!(hasher.hash("afterwards").await.is_ok());
    }
}
