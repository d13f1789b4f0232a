//! The whole conformance suite on `SqliteStore`, each case on a fresh file in a temp dir.

use std::sync::Arc;

use chat_core::store::Store;
use chat_core::testing::Guard;
use chat_store_sqlite::SqliteStore;

async fn fresh_store() -> (Arc<dyn Store>, Guard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path.to_string_lossy())
        .await
        .expect("open store");
    (Arc::new(store), Box::new(dir))
}

chat_core::store_conformance_tests!(fresh_store);
