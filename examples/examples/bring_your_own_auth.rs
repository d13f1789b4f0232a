//! bring-your-own-auth: a host application that already has users and logins. Chat users are
//! created without passwords, and the host passes the acting user's id to every call; the
//! engine still checks what that user may do.
//!
//! Run it with `cargo run -p examples --example bring_your_own_auth`.

use std::collections::HashMap;
use std::sync::Arc;

use chat_core::auth::LoginName;
use chat_core::store::MemoryStore;
use chat_core::{Chat, Error, HistoryQuery, NewMessage, NewRoom, NewUser, UserId, Visibility};

/// The host's own account system (a stand-in for its database and session handling).
struct HostAccounts {
    /// The host's account name → the chat user it owns.
    chat_ids: HashMap<&'static str, UserId>,
}

impl HostAccounts {
    /// The host authenticates its request its own way, then looks up the chat user.
    fn acting_user(&self, session_cookie: &str) -> Option<UserId> {
        let account = session_cookie.strip_prefix("session-of-")?;
        self.chat_ids.get(account).copied()
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let chat = Chat::new(Arc::new(MemoryStore::new()));

    // When the host creates an account, it creates a chat user: no password, the host owns
    // identity. `login` never works for these users.
    let mut chat_ids = HashMap::new();
    for account in ["erin", "frank", "grace"] {
        let user = chat.create_user(NewUser::named(account)).await?;
        chat_ids.insert(account, user.id);
    }
    let host = HostAccounts { chat_ids };

    // A request from Erin: the host resolves her session, then acts as her.
    let erin = host
        .acting_user("session-of-erin")
        .expect("a known session");
    let team = NewRoom {
        visibility: Visibility::Private,
        members: vec![host.chat_ids["frank"]],
        ..NewRoom::named("project x")
    };
    let room = chat.create_room(erin, team).await?;
    chat.send(erin, room.id, NewMessage::text("kick-off at 10"))
        .await?;

    // Frank, added by Erin, reads it.
    let frank = host
        .acting_user("session-of-frank")
        .expect("a known session");
    let page = HistoryQuery::newest(20);
    let history = chat.history(frank, room.id, page).await?;
    println!("frank reads: {}", history.items[0].body);

    // Grace is not a member: the engine refuses her, whatever the host passes.
    let grace = host
        .acting_user("session-of-grace")
        .expect("a known session");
    match chat.history(grace, room.id, page).await {
        Err(Error::Forbidden(why)) => println!("grace is refused: {why}"),
        other => panic!("expected Forbidden, got {other:?}"),
    }

    // The host's users have no chat password: built-in login is closed to them.
    let login = chat.login(LoginName::Username("erin".into()), "").await;
    assert!(matches!(login, Err(Error::Unauthenticated)));
    println!("built-in login is off for host-owned users");
    Ok(())
}
