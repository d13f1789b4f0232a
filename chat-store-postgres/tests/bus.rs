//! The bus conformance suite on `PostgresBus`: two nodes on a notification channel of the
//! case's own, on the test database (see `conformance.rs` for where it is and when it skips).

use std::sync::Arc;

use chat_core::events::{Delivery, EventBus};
use chat_core::testing::Guard;
use chat_core::testing::bus::message_event;
use chat_core::testing::slow_link::slow_link;
use chat_store_postgres::PostgresBus;
use chat_store_postgres::testing::{postgres_missing, test_url};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_back_on_a_slow_link_lags_only_once_it_listens_again() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("listener_on_a_slow_link", &why);
    }
    use std::str::FromStr;
    let channel = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
    let options = sqlx::postgres::PgConnectOptions::from_str(&test_url()).expect("the test URL");
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let slow = slow_link(server, std::time::Duration::from_millis(300)).await;
    let slow_options = options.host(&slow.ip().to_string()).port(slow.port());
    let pool = sqlx::PgPool::connect(&test_url()).await.expect("connect");
    let slow_pool = sqlx::PgPool::connect_with(slow_options)
        .await
        .expect("connect slowly");
    let a = PostgresBus::connect(&pool, &channel).await.expect("node a");
    let b = PostgresBus::connect(&slow_pool, &channel)
        .await
        .expect("node b");
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
