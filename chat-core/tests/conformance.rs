//! The conformance suite on `MemoryStore`, the reference every other store is compared with.

chat_core::store_conformance_tests!(chat_core::testing::memory_store);
