//! The crash test (see `chat_core::testing::crash`) on a SQLite file.

use std::sync::Arc;

use chat_store_sqlite::SqliteStore;

fn main() {
    chat_core::testing::crash::main(|dir| async move {
        let path = dir.join("crash.db");
        let store = SqliteStore::open(&path.to_string_lossy())
            .await
            .expect("open the store");
        Arc::new(store) as Arc<dyn chat_core::store::Store>
    });
}
