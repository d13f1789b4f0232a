//! Import: an export read back into an empty store, and the files and stores it refuses.

use crate::auth::LoginName;
use crate::check::check;
use crate::export::{Record, export};
use crate::import::{ImportError, import};
use crate::store::Store;
use crate::testing::fixture::{every_kind_of_data, view};
use crate::testing::{Harness, epoch, test_config};
use crate::{Chat, NewMessage};

/// The whole chat in `store`, as an export names it in tests.
async fn exported(store: &dyn Store) -> String {
    let mut out = Vec::new();
    export(store, "test", epoch(), &mut out, |_| {})
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// Imports `text` into `store`.
async fn import_text(store: &dyn Store, text: &str) -> Result<(), ImportError> {
    import(store, &mut text.as_bytes(), |_| {}).await.map(drop)
}

pub async fn import_reads_back_what_was_exported(h: Harness) {
    let source = h.chat().await;
    let users = every_kind_of_data(&source).await;
    let text = exported(&*source.store).await;
    let (store, _guard) = h.store().await;

    import_text(&*store, &text).await.unwrap();

    assert_eq!(
        exported(&*store).await,
        text,
        "exported again, the same file"
    );
    let moved = Chat::builder(store.clone()).config(test_config()).build();
    let moved = moved.unwrap();
    for user in &users {
        let (before, after) = (view(&source, user.id).await, view(&moved, user.id).await);
        if let Some((field, differs)) = after.differences(&before).pop() {
            panic!(
                "{}'s {field} differ after the move: {differs}",
                user.username
            );
        }
    }
    let report = check(&*store).await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    let alice = LoginName::Username("alice".into());
    moved.login(alice, "alice's password 1").await.unwrap();
    let (alice, bob, carol) = (users[0].id, users[1].id, users[2].id);
    let (room, _) = view(&moved, alice).await.rooms.remove(0);
    let sent = moved.send(alice, room.id, NewMessage::text("moved in"));
    assert_eq!(sent.await.unwrap().message.seq, room.last_seq + 1);
    let retry = moved.send(
        alice,
        room.id,
        NewMessage::text("root of the thread").with_txn_id("t-1"),
    );
    let retry = retry.await.unwrap();
    assert_eq!(
        (retry.created, retry.message.seq),
        (false, 1),
        "the transaction id"
    );
    let rooms = view(&moved, bob).await.rooms;
    let (direct, _) = rooms.iter().find(|(room, _)| room.is_direct()).unwrap();
    let again = moved.send_direct(carol, bob, NewMessage::text("still here?"));
    let again = again.await.unwrap().message;
    assert_eq!((again.room_id, again.seq), (direct.id, direct.last_seq + 1));
    assert!(
        matches!(
            import_text(&*store, &text).await,
            Err(ImportError::NotEmpty)
        ),
        "a store in use is refused"
    );
}

pub async fn import_names_the_bad_line_and_finishes_what_was_cut_short(h: Harness) {
    let source = h.chat().await;
    every_kind_of_data(&source).await;
    let text = exported(&*source.store).await;
    let lines: Vec<&str> = text.lines().collect();
    let (store, _guard) = h.store().await;
    let line_of = |error| match error {
        Err(ImportError::Truncated { line })
        | Err(ImportError::Corrupt { line, .. })
        | Err(ImportError::Invalid { line, .. }) => line,
        other => panic!("an error naming a line, not {other:?}"),
    };

    // Cut in the middle of the first message: everything before it is in the store.
    let first = lines.iter().position(|l| l.contains(r#""type":"message""#));
    let first = first.unwrap();
    let cut = lines[..first].iter().map(|l| l.len() + 1).sum::<usize>() + 10;
    assert_eq!(
        line_of(import_text(&*store, &text[..cut]).await),
        first as u64 + 1
    );
    assert!(!store.list_rooms(None, 10).await.unwrap().is_empty());
    // Cut after a whole line: no end record.
    let without_end = lines[..lines.len() - 1].join("\n") + "\n";
    let last = lines.len() as u64 - 1;
    assert_eq!(line_of(import_text(&*store, &without_end).await), last);
    // A line that is not JSON, and a message missing from its room's sequence.
    let mut corrupt = lines.clone();
    corrupt[first + 2] = "{\"type\": \"message\", \"mess";
    let corrupt = corrupt.join("\n") + "\n";
    assert_eq!(
        line_of(import_text(&*store, &corrupt).await),
        first as u64 + 3
    );
    let mut gap = lines.clone();
    gap.remove(first + 1);
    let gap = gap.join("\n") + "\n";
    assert_eq!(line_of(import_text(&*store, &gap).await), first as u64 + 2);
    // A username no store holds (stores compare them lowercase).
    let shouting = text.replacen("\"username\":\"alice\"", "\"username\":\"ALICE\"", 1);
    let user_line = lines.iter().position(|l| l.contains("\"alice\"")).unwrap();
    assert_eq!(
        line_of(import_text(&*store, &shouting).await),
        user_line as u64 + 1
    );
    // Another export is not mixed in.
    let Ok(Record::Header { .. }) = serde_json::from_str::<Record>(lines[0]) else {
        panic!("a header first");
    };
    let other = text.replacen("\"source\":\"test\"", "\"source\":\"elsewhere\"", 1);
    let refused = import_text(&*store, &other).await;
    assert!(
        matches!(&refused, Err(ImportError::OtherImport(what)) if what.contains("test")),
        "{refused:?}"
    );

    import_text(&*store, &text).await.unwrap();
    assert_eq!(exported(&*store).await, text, "finished as if never cut");
}
