//! Connections a client holds without finishing a request: bounded in time and in number.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use chat_http::ConnectionLimits;
use common::App;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Whether the server closed the connection within `within` (EOF or reset), reading and
/// dropping whatever it sent first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let reading = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(within, reading).await.is_ok()
}

async fn health(base: &str) -> Option<String> {
    let mut stream = TcpStream::connect(base).await.ok()?;
    let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(answer)
}

fn quick() -> ConnectionLimits {
    ConnectionLimits::default().with_header_read_timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn headers_trickled_byte_by_byte_are_cut_off() {
    let app = App::new();
    let base = app.serve_with(quick()).await;
    let mut stream = TcpStream::connect(&base).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    // A header byte every 100 ms for up to 10 s: each byte is progress, yet the headers as a
    // whole are late.
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b"X").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(trickle.await, "the server cut the trickling request off");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let app = App::new();
    let base = app.serve_with(quick()).await;
    // Connected, nothing sent.
    let mut silent = TcpStream::connect(&base).await.unwrap();
    // Kept alive after a request, then idle.
    let mut kept = TcpStream::connect(&base).await.unwrap();
    let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    kept.write_all(request.as_bytes()).await.unwrap();
    let mut answer = [0u8; 1024];
    let read = kept.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(closed_within(&mut kept, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_health_answers_once_one_leaves() {
    let app = App::new();
    let base = app
        .serve_with(ConnectionLimits::default().with_max_connections(2))
        .await;
    let first = TcpStream::connect(&base).await.unwrap();
    let _second = TcpStream::connect(&base).await.unwrap();
    // Both held (they sent nothing): a third is closed at once, unanswered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(&base).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(5)).await);
    assert_eq!(health(&base).await.filter(|a| a.contains("200 OK")), None);
    drop(first);
    let mut answered = None;
    for _ in 0..50 {
        answered = health(&base).await;
        if answered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered.unwrap().starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn websockets_count_against_the_cap() {
    let app = App::new();
    let (token, _) = app.signup("alice").await;
    let base = app
        .serve_with(ConnectionLimits::default().with_max_connections(2))
        .await;
    // An upgraded connection still holds a descriptor: it keeps its place in the cap.
    let _socket = common::ws::connect(&base, Some(&token), None).await;
    let _held = TcpStream::connect(&base).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(&base).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(5)).await);
}
