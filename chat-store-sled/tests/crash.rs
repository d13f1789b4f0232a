//! The crash test (see `chat_core::testing::crash`) on a sled directory.

use std::sync::Arc;

use chat_store_sled::SledStore;

fn main() {
    chat_core::testing::crash::main(|dir| async move {
        let path = dir.join("sled");
        let store = SledStore::open(&path.to_string_lossy())
            .await
            .expect("open the store");
        Arc::new(store) as Arc<dyn chat_core::store::Store>
    });
}
