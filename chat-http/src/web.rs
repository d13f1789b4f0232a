//! The web chat client: plain ES modules and a stylesheet compiled into the binary (no build
//! step, no network at run time), served at `/` by [`web_client`]. It talks to the server only
//! through the public API (`/api/v1` and the WebSocket), as any other client would.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One file of the client.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../web/", $file)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/web/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/web/api.js", "api.js", "text/javascript; charset=utf-8"),
    asset!("/web/live.js", "live.js", "text/javascript; charset=utf-8"),
    asset!("/web/app.js", "app.js", "text/javascript; charset=utf-8"),
];

/// Scripts from this server only, never inline ones: even a message that slipped into the page
/// as HTML could not run. Connections to this server only (the WebSocket included).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The web client's routes: `/` and `/web/*`. Merge it into a server's router when the server
/// owns its root; [`ChatHttp::router`](crate::ChatHttp::router) leaves `/` to its host.
pub fn web_client() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

fn serve(asset: &'static Asset) -> Response {
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        // The client is small and changes with the binary: always revalidate.
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (StatusCode::OK, headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_client_imports_is_served() {
        let served: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS {
            for line in asset.body.lines() {
                let Some(from) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(start) = from.find("\"./") else {
                    continue;
                };
                let name = &from[start + 3..];
                let name = &name[..name.find('"').unwrap_or(name.len())];
                let path = format!("/web/{name}");
                assert!(served.contains(&path.as_str()), "{path} is not served");
            }
        }
        // And the page loads the entry module and the stylesheet by those paths.
        let page = ASSETS[0].body;
        assert!(page.contains("src=\"/web/app.js\"") && page.contains("href=\"/web/app.css\""));
    }
}
