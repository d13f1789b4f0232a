//! The bus conformance suite on `NatsBus`: two nodes on a subject of the case's own, on the
//! test server (`CHAT_TEST_NATS_URL`, or NATS on this machine; skipped loudly without it,
//! required in CI); and a server stopped and started under running nodes.

use std::sync::Arc;
use std::time::Duration;

use chat_bus_nats::NatsBus;
use chat_bus_nats::testing::{PrivateServer, nats_missing, test_url};
use chat_core::events::{Delivery, EventBus, EventStream};
use chat_core::testing::Guard;
use chat_core::testing::bus::message_event;
use chat_core::testing::slow_link::SlowLink;
use futures_util::StreamExt;

async fn two_nodes_on(url: &str, subject: &str) -> (Arc<dyn EventBus>, Arc<dyn EventBus>) {
    let a = NatsBus::connect(url, subject).await.expect("node a");
    let b = NatsBus::connect(url, subject).await.expect("node b");
    (Arc::new(a), Arc::new(b))
}

async fn two_nodes() -> (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard) {
    // What the bus logs (a lost connection, a lag) shows under a case that fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_ansi(false)
        .try_init();
    let subject = format!("chat.test.{}", uuid::Uuid::now_v7().simple());
    let (a, b) = two_nodes_on(&test_url(), &subject).await;
    (a, b, Box::new(()))
}

chat_core::bus_conformance_tests!(two_nodes, skip_when = nats_missing);

/// The `host:port` of a `nats://` URL.
fn nats_address(url: &str) -> String {
    url.trim_start_matches("nats://").to_owned()
}

/// The next delivery, if one comes within `wait`.
async fn within(stream: &mut EventStream, wait: Duration) -> Option<Delivery> {
    tokio::time::timeout(wait, stream.next())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_events_arrive_whole_and_in_order() {
    if let Some(why) = nats_missing() {
        return chat_core::testing::skipped("many_large_events", &why);
    }
    let (a, b, _guard) = two_nodes().await;
    let mut on_b = b.subscribe();
    // 300 events of 30 000 characters (two-byte ones among them): more than one NATS message
    // may carry, so they go out in several frames.
    let body = |seq: u64| format!("{seq}{}", "é".repeat(30_000));
    for seq in 1..=300 {
        a.publish(message_event(seq, body(seq)));
    }
    for seq in 1..=300 {
        let delivery = within(&mut on_b, Duration::from_secs(10)).await;
        assert_eq!(
            delivery,
            Some(Delivery::Event(message_event(seq, body(seq))))
        );
    }
}

/// Publishes `body` on `a` until `on_b` gets it (for at most 15 s): whether a lag came
/// before it, or `None` if it never came.
async fn heard_again(a: &Arc<dyn EventBus>, on_b: &mut EventStream, body: &str) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut lagged = false;
    while tokio::time::Instant::now() < deadline {
        a.publish(message_event(1, body.into()));
        match within(on_b, Duration::from_millis(300)).await {
            Some(Delivery::Lagged) => lagged = true,
            Some(Delivery::Event(event))
                if event.as_ref() == message_event(1, body.into()).as_ref() =>
            {
                return Some(lagged);
            }
            _ => {}
        }
    }
    None
}

/// A `nats-server` of the case's own, or `None` when the case is skipped (no NATS here, and
/// none required).
fn private_server(case: &str) -> Option<PrivateServer> {
    let server = PrivateServer::start();
    if server.is_none() {
        // The program comes with the machine's NATS; where NATS is required, so is it.
        let why = nats_missing().expect("NATS answers but no nats-server program starts here");
        chat_core::testing::skipped(case, &why);
    }
    server
}

/// Stops `server` and waits until both nodes have seen it go.
async fn stop_under(server: &mut PrivateServer, a: &dyn EventBus, b: &dyn EventBus) {
    server.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.is_connected() || b.is_connected() {
        assert!(tokio::time::Instant::now() < deadline, "the outage is seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_a_lag_then_delivery_resumes_and_health_follows() {
    let Some(mut server) = private_server("restarted_server") else {
        return;
    };
    let (a, b) = two_nodes_on(&server.url, "chat.events").await;
    let mut on_b = b.subscribe();
    let heard = heard_again(&a, &mut on_b, "before").await;
    assert_eq!(heard, Some(false), "b hears a, and nothing lags");
    assert!(a.is_connected() && b.is_connected());

    stop_under(&mut server, &*a, &*b).await;
    // Published while the server is away: lost to b, which is told.
    a.publish(message_event(2, "during".into()));
    assert!(server.resume(), "the server starts again");

    let heard = heard_again(&a, &mut on_b, "after").await;
    assert_eq!(
        heard,
        Some(true),
        "the outage reaches b as a lag before what follows it"
    );
    assert!(
        a.is_connected() && b.is_connected(),
        "both reconnected by themselves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_slow_link_hears_what_is_published_once_it_is_connected() {
    if let Some(why) = nats_missing() {
        return chat_core::testing::skipped("slow_link", &why);
    }
    let subject = format!("chat.test.{}", uuid::Uuid::now_v7().simple());
    let a = NatsBus::connect(&test_url(), &subject)
        .await
        .expect("node a");
    let slow = SlowLink::to(nats_address(&test_url()), Duration::from_millis(300)).await;
    let b = NatsBus::connect(&format!("nats://{}", slow.address()), &subject)
        .await
        .expect("node b");
    let mut on_b = b.subscribe();
    // Published once b's connect has returned: its subscription must be in place by then,
    // at the server, not only written to the link.
    a.publish(message_event(1, "first".into()));
    assert_eq!(
        within(&mut on_b, Duration::from_secs(5)).await,
        Some(Delivery::Event(message_event(1, "first".into())))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_on_a_slow_link_lags_for_what_it_missed_before_resubscribing() {
    let Some(mut server) = private_server("back_on_a_slow_link") else {
        return;
    };
    let subject = "chat.events";
    let a = NatsBus::connect(&server.url, subject)
        .await
        .expect("node a");
    let slow = SlowLink::to(nats_address(&server.url), Duration::from_millis(300)).await;
    let b = NatsBus::connect(&format!("nats://{}", slow.address()), subject)
        .await
        .expect("node b");
    let mut on_b = b.subscribe();

    stop_under(&mut server, &a, &b).await;
    assert!(server.resume(), "the server starts again");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !a.is_connected() {
        assert!(tokio::time::Instant::now() < deadline, "a reconnects");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // b is back once it says so; its subscription is then still on the slow link.
    assert_eq!(
        within(&mut on_b, Duration::from_secs(10)).await,
        Some(Delivery::Lagged)
    );
    a.publish(message_event(1, "missed".into()));
    let after = within(&mut on_b, Duration::from_secs(5)).await;
    assert!(
        matches!(after, Some(Delivery::Lagged))
            || after == Some(Delivery::Event(message_event(1, "missed".into()))),
        "an event published while b resubscribed is heard or lagged for, not lost: {after:?}"
    );
}
