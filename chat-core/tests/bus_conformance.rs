//! The bus conformance suite on `InProcessBus`.

chat_core::bus_conformance_tests!(chat_core::testing::bus::in_process_bus);
