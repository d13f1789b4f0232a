//! The whole conformance suite on `PostgresStore`, each case in a schema of its own (dropped
//! afterwards), so cases run in parallel on one database and leave nothing behind.
//!
//! The database is `CHAT_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Without one, every case prints why it was skipped and passes, unless
//! `CHAT_TEST_REQUIRE_POSTGRES=1` (as `.ci/run` sets), when they fail.

use std::sync::Arc;

use chat_core::store::Store;
use chat_core::testing::Guard;
use chat_store_postgres::testing::{TestSchema, postgres_missing};
use chat_store_postgres::{PostgresOptions, PostgresStore};

async fn fresh_store() -> (Arc<dyn Store>, Guard) {
    let schema = TestSchema::new();
    let options = PostgresOptions::new(&schema.url)
        .expect("a PostgreSQL URL")
        .pool_size(4)
        .schema(&schema.name);
    let store = PostgresStore::open_with(options).await.expect("open store");
    (Arc::new(store), Box::new(schema))
}

chat_core::store_conformance_tests!(fresh_store, skip_when = postgres_missing);
