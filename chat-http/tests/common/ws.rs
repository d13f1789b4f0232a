//! WebSocket clients for the tests that use real sockets.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/events` on `base` (`host:port`) with a bearer token or a ticket; the refusal as text.
pub async fn open(base: &str, token: Option<&str>, ticket: Option<&str>) -> Result<Socket, String> {
    let url = match ticket {
        Some(ticket) => format!("ws://{base}/api/v1/events?ticket={ticket}"),
        None => format!("ws://{base}/api/v1/events"),
    };
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

/// Opens `/events`, failing the test if it is refused.
pub async fn connect(base: &str, token: Option<&str>, ticket: Option<&str>) -> Socket {
    open(base, token, ticket).await.unwrap()
}

/// The next text frame as JSON (`{"type":"closed","code":…}` once closed), or `None` after
/// `wait` without one.
pub async fn next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                let code = frame.map(|f| u16::from(f.code));
                return Some(json!({ "type": "closed", "code": code }));
            }
            Ok(None) | Ok(Some(Err(_))) => return Some(json!({ "type": "closed" })),
            Ok(Some(Ok(_))) => continue,
            Err(_) => return None,
        }
    }
}

/// Frames until one of type `kind` (failing after 5 s without one, or on a close while
/// waiting for something else).
pub async fn expect_frame(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next_frame(socket, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {kind} frame within 5 s"));
        if frame["type"] == kind {
            return frame;
        }
        assert_ne!(frame["type"], "closed", "closed while waiting for {kind}");
    }
}
