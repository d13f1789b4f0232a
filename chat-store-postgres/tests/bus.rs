//! The bus conformance suite on `PostgresBus`: two nodes on a notification channel of the
//! case's own, on the test database (see `conformance.rs` for where it is and when it skips).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::events::{Delivery, EventBus};
use chat_core::testing::Guard;
use chat_core::testing::bus::message_event;
use chat_core::testing::slow_link::SlowLink;
use chat_store_postgres::PostgresBus;
use chat_store_postgres::testing::{postgres_missing, test_url};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

async fn two_nodes() -> (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard) {
    let channel = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
    let (a, b, pool) = two_nodes_on(&channel).await;
    (a, b, Box::new(pool))
}

async fn two_nodes_on(channel: &str) -> (Arc<dyn EventBus>, Arc<dyn EventBus>, sqlx::PgPool) {
    let pool = sqlx::PgPool::connect(&test_url()).await.expect("connect");
    let a = PostgresBus::connect(&pool, channel).await.expect("node a");
    let b = PostgresBus::connect(&pool, channel).await.expect("node b");
    (Arc::new(a), Arc::new(b), pool)
}

chat_core::bus_conformance_tests!(two_nodes, skip_when = postgres_missing);

/// Waits for the next delivery, at most 5 s.
async fn next(stream: &mut chat_core::events::EventStream) -> Delivery {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("a delivery in time")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_too_large_for_one_notification_arrive_whole_and_in_order() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("large_events", &why);
    }
    let (a, b, _guard) = two_nodes().await;
    let mut on_b = b.subscribe();
    // 3 × 30 000 characters, two-byte ones among them, between small events.
    let bodies = ["a", &"é".repeat(30_000), "b", &"x\"y".repeat(10_000), "c"];
    for (seq, body) in (1..).zip(bodies) {
        a.publish(message_event(seq, body.to_owned()));
    }
    for (seq, body) in (1..).zip(bodies) {
        assert_eq!(
            next(&mut on_b).await,
            Delivery::Event(message_event(seq, body.to_owned()))
        );
    }
}

/// Ends the connections listening on `channel`, as when PostgreSQL restarts.
async fn terminate_listeners(pool: &sqlx::PgPool, channel: &str) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND strpos(query, $1) > 0",
    )
    .bind(channel)
    .execute(pool)
    .await
    .expect("terminate listeners");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_connection_is_a_lag_and_delivery_resumes() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("lost_listener", &why);
    }
    let channel = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
    let (a, b, pool) = two_nodes_on(&channel).await;
    let mut on_b = b.subscribe();
    a.publish(message_event(1, "before".into()));
    assert_eq!(
        next(&mut on_b).await,
        Delivery::Event(message_event(1, "before".into()))
    );
    terminate_listeners(&pool, &channel).await;
    assert_eq!(next(&mut on_b).await, Delivery::Lagged);
    // Once listening again, b hears a again.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        a.publish(message_event(2, "after".into()));
        let heard = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            use futures_util::StreamExt;
            on_b.next().await
        })
        .await;
        if let Ok(Some(Delivery::Event(event))) = heard {
            assert_eq!(event, message_event(2, "after".into()));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "b never heard a again"
        );
    }
}

/// Two nodes on a channel of their own: `a` on a pool of its own, `b` on a pool whose
/// connections go through a link that delays what `b` sends by `delay` (and gives up on a
/// connection after a second). Also returns `a`'s pool and the link.
async fn nodes_across_a_link(
    delay: Duration,
) -> (String, PgPool, SlowLink, PostgresBus, PostgresBus) {
    let channel = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
    let options = PgConnectOptions::from_str(&test_url()).expect("the test URL");
    let link = SlowLink::to(
        format!("{}:{}", options.get_host(), options.get_port()),
        delay,
    )
    .await;
    let linked = options
        .host(&link.address().ip().to_string())
        .port(link.address().port());
    let pool = PgPool::connect(&test_url()).await.expect("connect");
    let linked_pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(linked)
        .await
        .expect("connect across the link");
    let a = PostgresBus::connect(&pool, &channel).await.expect("node a");
    let b = PostgresBus::connect(&linked_pool, &channel)
        .await
        .expect("node b");
    (channel, pool, link, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_back_on_a_slow_link_lags_only_once_it_listens_again() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("listener_on_a_slow_link", &why);
    }
    let (channel, pool, _link, a, b) = nodes_across_a_link(Duration::from_millis(300)).await;
    let mut on_b = b.subscribe();
    terminate_listeners(&pool, &channel).await;
    // b says it lagged; whatever a publishes from then on, b hears (its LISTEN, sent again
    // on the slow link, must have reached the server by then).
    assert_eq!(next(&mut on_b).await, Delivery::Lagged);
    a.publish(message_event(1, "after the lag".into()));
    assert_eq!(
        next(&mut on_b).await,
        Delivery::Event(message_event(1, "after the lag".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_cannot_reconnect_for_a_while_lags_again_once_it_listens() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("listener_cannot_reconnect", &why);
    }
    let (channel, pool, link, a, b) = nodes_across_a_link(Duration::ZERO).await;
    let mut on_b = b.subscribe();
    link.cut();
    terminate_listeners(&pool, &channel).await;
    assert_eq!(next(&mut on_b).await, Delivery::Lagged, "the outage");
    // Notified while b cannot listen: lost to b, which must say so once it listens again.
    a.publish(message_event(1, "while b was away".into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    link.mend();
    let after = next(&mut on_b).await;
    assert!(
        after == Delivery::Lagged
            || after == Delivery::Event(message_event(1, "while b was away".into())),
        "b listens again without a word: {after:?}"
    );
}
