//! The whole conformance suite on `SledStore`, each case in a fresh temp directory.

use std::sync::Arc;

use chat_core::store::Store;
use chat_core::testing::Guard;
use chat_store_sled::SledStore;

async fn fresh_store() -> (Arc<dyn Store>, Guard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sled");
    let store = SledStore::open(&path.to_string_lossy())
        .await
        .expect("open store");
    (Arc::new(store), Box::new(dir))
}

chat_core::store_conformance_tests!(fresh_store);
