//! Tokens reach the database file only as hashes.

use std::sync::Arc;

use base64::Engine as _;
use chat_core::auth::{LoginName, TokenHash};
use chat_core::{Chat, NewUser};
use chat_store_sqlite::SqliteStore;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn the_file_holds_token_hashes_never_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path.to_string_lossy())
        .await
        .expect("open");
    let chat = Chat::builder(Arc::new(store))
        .config(chat_core::testing::test_config())
        .build()
        .expect("engine");
    chat.register(NewUser::named("alice"), "alice-password")
        .await
        .expect("register");
    let login = chat
        .login(LoginName::Username("alice".into()), "alice-password")
        .await
        .expect("login");
    let refreshed = chat
        .refresh(&login.tokens.refresh_token)
        .await
        .expect("refresh");

    // The database and its write-ahead log, as they are on disk.
    let mut bytes = std::fs::read(&path).expect("db file");
    if let Ok(wal) = std::fs::read(dir.path().join("chat.db-wal")) {
        bytes.extend(wal);
    }
    for token in [
        &login.tokens.access_token,
        &login.tokens.refresh_token,
        &refreshed.access_token,
        &refreshed.refresh_token,
    ] {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("base64url token");
        assert_eq!(raw.len(), 32, "256-bit tokens");
        assert!(
            !contains(&bytes, token.as_bytes()),
            "a token is in the file"
        );
        assert!(!contains(&bytes, &raw), "a token's bytes are in the file");
    }
    let hash = TokenHash::of(&refreshed.access_token);
    assert!(
        contains(&bytes, hash.as_bytes()),
        "the hash is what is stored"
    );
    assert!(!contains(&bytes, b"alice-password"));
}
