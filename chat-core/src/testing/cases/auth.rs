//! Password authentication and the token lifecycle.

use crate::Field;
use chrono::TimeDelta;

use crate::auth::LoginName;
use crate::clock::Clock;
use crate::testing::Harness;
use crate::{Error, NewUser};

const PASSWORD: &str = "correct horse battery";

fn username(name: &str) -> LoginName {
    LoginName::Username(name.into())
}

pub async fn register_and_login_by_username_or_email(h: Harness) {
    let chat = h.chat().await;
    let new = NewUser {
        email: Some("alice@example.com".into()),
        ..NewUser::named("alice")
    };
    let alice = chat.register(new, PASSWORD).await.unwrap();
    assert!(!alice.is_admin);

    let by_name = chat.login(username("ALICE"), PASSWORD).await.unwrap();
    assert_eq!(by_name.user, alice);
    let by_email = chat
        .login(LoginName::Email("Alice@Example.com".into()), PASSWORD)
        .await
        .unwrap();
    assert_eq!(by_email.user.id, alice.id);

    let tokens = &by_name.tokens;
    assert_ne!(tokens.access_token, tokens.refresh_token);
    assert_ne!(tokens.access_token, by_email.tokens.access_token);
    assert!(tokens.access_token.len() >= 43, "at least 256 bits");
    assert!(tokens.access_expires_at > chat.clock.now());
    assert!(tokens.refresh_expires_at > tokens.access_expires_at);
    let auth = chat.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!(auth.user_id, alice.id);
}

pub async fn login_does_not_reveal_unknown_users(h: Harness) {
    let chat = h.chat().await;
    chat.register(NewUser::named("alice"), PASSWORD)
        .await
        .unwrap();
    let wrong_password = chat.login(username("alice"), "wrong password!").await;
    let unknown_user = chat.login(username("nobody"), PASSWORD).await;
    let unknown_email = chat.login(LoginName::Email("x@y.z".into()), PASSWORD).await;
    assert_err!(&wrong_password, Error::Unauthenticated);
    assert_err!(&unknown_user, Error::Unauthenticated);
    assert_err!(&unknown_email, Error::Unauthenticated);
    let text = |r: &crate::Result<_>| r.as_ref().err().map(ToString::to_string);
    assert_eq!(text(&wrong_password), text(&unknown_user));
}

pub async fn weak_passwords_are_rejected(h: Harness) {
    let chat = h.chat().await;
    assert_err!(
        chat.register(NewUser::named("alice"), "short").await,
        Error::Invalid {
            field: Field::Password,
            ..
        }
    );
    assert_err!(
        chat.register(NewUser::named("alice"), &"p".repeat(1025))
            .await,
        Error::Invalid {
            field: Field::Password,
            ..
        }
    );
    assert!(
        chat.store
            .user_by_username("alice")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn access_tokens_expire(h: Harness) {
    let chat = h.chat().await;
    chat.register(NewUser::named("alice"), PASSWORD)
        .await
        .unwrap();
    let login = chat.login(username("alice"), PASSWORD).await.unwrap();
    let ttl = TimeDelta::from_std(chat.config().access_token_ttl).unwrap();
    chat.clock.advance(ttl - TimeDelta::seconds(1));
    chat.authenticate(&login.tokens.access_token).await.unwrap();
    chat.clock.advance(TimeDelta::seconds(1));
    assert_err!(
        chat.authenticate(&login.tokens.access_token).await,
        Error::Unauthenticated
    );
    // The refresh token outlives it and gets a fresh pair.
    let fresh = chat.refresh(&login.tokens.refresh_token).await.unwrap();
    chat.authenticate(&fresh.access_token).await.unwrap();
    // An expired refresh token gets nothing.
    let refresh_ttl = TimeDelta::from_std(chat.config().refresh_token_ttl).unwrap();
    chat.clock.advance(refresh_ttl);
    assert_err!(
        chat.refresh(&fresh.refresh_token).await,
        Error::Unauthenticated
    );
}

pub async fn logout_revokes_at_once(h: Harness) {
    let chat = h.chat().await;
    chat.register(NewUser::named("alice"), PASSWORD)
        .await
        .unwrap();
    let first = chat.login(username("alice"), PASSWORD).await.unwrap();
    let second = chat.login(username("alice"), PASSWORD).await.unwrap();
    chat.logout(&first.tokens.access_token).await.unwrap();
    assert_err!(
        chat.authenticate(&first.tokens.access_token).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.refresh(&first.tokens.refresh_token).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.logout(&first.tokens.access_token).await,
        Error::Unauthenticated
    );
    // Only that login ended.
    chat.authenticate(&second.tokens.access_token)
        .await
        .unwrap();
    assert_err!(chat.authenticate("garbage").await, Error::Unauthenticated);
    assert_err!(chat.authenticate("").await, Error::Unauthenticated);
}

pub async fn refresh_rotates_and_reuse_revokes_the_login(h: Harness) {
    let chat = h.chat().await;
    chat.register(NewUser::named("alice"), PASSWORD)
        .await
        .unwrap();
    let login = chat.login(username("alice"), PASSWORD).await.unwrap();
    let second = chat.refresh(&login.tokens.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, login.tokens.refresh_token);
    assert_err!(
        chat.authenticate(&login.tokens.access_token).await,
        Error::Unauthenticated
    );
    chat.authenticate(&second.access_token).await.unwrap();

    // Replaying the rotated token is theft: the whole login ends, the new pair with it.
    assert_err!(
        chat.refresh(&login.tokens.refresh_token).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.authenticate(&second.access_token).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.refresh(&second.refresh_token).await,
        Error::Unauthenticated
    );
}

pub async fn password_change_ends_every_login(h: Harness) {
    let chat = h.chat().await;
    let alice = chat
        .register(NewUser::named("alice"), PASSWORD)
        .await
        .unwrap();
    let one = chat.login(username("alice"), PASSWORD).await.unwrap();
    let two = chat.login(username("alice"), PASSWORD).await.unwrap();
    assert_err!(
        chat.change_password(alice.id, "not the password", "new password 1")
            .await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.change_password(alice.id, PASSWORD, "short").await,
        Error::Invalid {
            field: Field::Password,
            ..
        }
    );
    chat.change_password(alice.id, PASSWORD, "new password 1")
        .await
        .unwrap();
    for login in [&one, &two] {
        assert_err!(
            chat.authenticate(&login.tokens.access_token).await,
            Error::Unauthenticated
        );
        assert_err!(
            chat.refresh(&login.tokens.refresh_token).await,
            Error::Unauthenticated
        );
    }
    assert_err!(
        chat.login(username("alice"), PASSWORD).await,
        Error::Unauthenticated
    );
    chat.login(username("alice"), "new password 1")
        .await
        .unwrap();
}

pub async fn passwordless_users_cannot_log_in(h: Harness) {
    let chat = h.chat().await;
    let host_user = chat.new_user("hosted").await;
    assert_err!(
        chat.login(username("hosted"), "").await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.login(username("hosted"), PASSWORD).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.change_password(host_user.id, "", "new password 1")
            .await,
        Error::Forbidden(_)
    );
}

pub async fn refresh_tokens_do_not_authenticate(h: Harness) {
    let chat = h.chat().await;
    chat.register(NewUser::named("alice"), PASSWORD)
        .await
        .unwrap();
    let login = chat.login(username("alice"), PASSWORD).await.unwrap();
    assert_err!(
        chat.authenticate(&login.tokens.refresh_token).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.refresh(&login.tokens.access_token).await,
        Error::Unauthenticated
    );
    // Presenting the access token as a refresh token did not end the login.
    chat.authenticate(&login.tokens.access_token).await.unwrap();
}
