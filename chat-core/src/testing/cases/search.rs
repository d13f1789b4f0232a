//! Message search: what matches, and who finds it.

use crate::testing::Harness;
use crate::{Denied, Error, Field, MessageId, NewMessage};

pub async fn search_matches_words_across_case_accents_and_scripts(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "search").await;
    let mut ids = Vec::new();
    for text in [
        "Meet at the Café at noon 🎉",
        "東京タワーに行きましょう",
        "ship it!!! (v2.0)",
        "nothing to see here",
        "Ångström units, ＦＵＬＬ width",
    ] {
        let sent = chat.send(alice.id, room.id, NewMessage::text(text)).await;
        ids.push(sent.unwrap().message.id);
    }
    let found = |text: &'static str| {
        let chat = chat.clone();
        async move {
            let page = chat.search(alice.id, text, None, None, None).await.unwrap();
            page.items.iter().map(|m| m.id).collect::<Vec<MessageId>>()
        }
    };
    assert_eq!(found("cafe").await, [ids[0]], "accents and case aside");
    assert_eq!(found("CAFÉ NOON").await, [ids[0]], "every word must match");
    assert_eq!(found("caf").await, [ids[0]], "a prefix of a word");
    assert!(found("cafe midnight").await.is_empty());
    assert_eq!(found("東京").await, [ids[1]], "text without spaces");
    assert_eq!(found("タワー").await, [ids[1]]);
    assert_eq!(found("東").await, [ids[1]]);
    assert!(found("大阪").await.is_empty());
    assert_eq!(
        found("ship v2").await,
        [ids[2]],
        "punctuation separates words"
    );
    assert_eq!(
        found("🎉 meet").await,
        [ids[0]],
        "an emoji in the query is no word"
    );
    assert_eq!(found("angstrom full").await, [ids[4]]);
    assert!(found("ee").await.is_empty(), "inside a word is no match");
    assert_err!(
        chat.search(alice.id, "🎉 !!!", None, None, None).await,
        Error::Invalid {
            field: Field::Search,
            ..
        }
    );
    assert_err!(
        chat.search(alice.id, &"a ".repeat(200), None, None, None)
            .await,
        Error::Invalid {
            field: Field::Search,
            ..
        }
    );
}

pub async fn search_finds_current_text_in_current_rooms_newest_first(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let one = chat.new_room(&alice, "one").await;
    let two = chat.new_room(&alice, "two").await;
    let private = chat.new_room(&bob, "bob's").await;
    chat.join_room(bob.id, one.id, None).await.unwrap();
    let send = |user, room, text: &'static str| {
        let chat = chat.clone();
        async move {
            let sent = chat.send(user, room, NewMessage::text(text)).await;
            sent.unwrap().message.id
        }
    };
    let first = send(alice.id, one.id, "lunch plans").await;
    let second = send(bob.id, one.id, "lunch at one").await;
    let third = send(alice.id, two.id, "lunch in two").await;
    send(bob.id, private.id, "secret lunch").await;
    let edited = send(alice.id, two.id, "breakfast").await;
    let deleted = send(alice.id, one.id, "lunch, deleted").await;
    chat.delete_message(alice.id, one.id, deleted)
        .await
        .unwrap();
    chat.edit_message(alice.id, two.id, edited, "brunch")
        .await
        .unwrap();

    let search = |user, text: &'static str, room, before, limit| {
        let chat = chat.clone();
        async move {
            let page = chat.search(user, text, room, before, limit).await.unwrap();
            let ids: Vec<MessageId> = page.items.iter().map(|m| m.id).collect();
            (ids, page.next_cursor)
        }
    };
    // Newest first, only the searcher's rooms, never a tombstone.
    let (all, _) = search(alice.id, "lunch", None, None, None).await;
    assert_eq!(all, [third, second, first]);
    // Paged by the cursor.
    let (page, cursor) = search(alice.id, "lunch", None, None, Some(2)).await;
    assert_eq!((page, cursor), (vec![third, second], Some(second)));
    let (rest, cursor) = search(alice.id, "lunch", None, Some(second), Some(2)).await;
    assert_eq!((rest, cursor), (vec![first], None));
    // One room.
    let (in_two, _) = search(alice.id, "lunch", Some(two.id), None, None).await;
    assert_eq!(in_two, [third]);
    // An edit replaces what a message is found by.
    assert!(
        search(alice.id, "breakfast", None, None, None)
            .await
            .0
            .is_empty()
    );
    assert_eq!(
        search(alice.id, "brunch", None, None, None).await.0,
        [edited]
    );
    // Bob finds his rooms' messages, and no more once he leaves.
    let (bobs, _) = search(bob.id, "lunch", None, None, None).await;
    assert_eq!(bobs.len(), 3);
    chat.leave_room(bob.id, one.id).await.unwrap();
    let (bobs, _) = search(bob.id, "lunch", None, None, None).await;
    assert_eq!(bobs.len(), 1, "only his own room's");
    assert_err!(
        chat.search(bob.id, "lunch", Some(one.id), None, None).await,
        Error::Forbidden(Denied::NotMember)
    );
}

/// An index that keeps a room's messages together (in lists, pages, segments) must take out
/// exactly the message that changed, whichever its place.
pub async fn search_still_finds_the_neighbours_of_an_edited_or_deleted_message(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "tea room").await;
    let mut sent = Vec::new();
    for n in 1..=6 {
        let text = format!("tea number {n}");
        let message = chat.send(alice.id, room.id, NewMessage::text(text)).await;
        sent.push(message.unwrap().message.id);
    }
    for gone in [sent[0], sent[2], sent[5]] {
        chat.delete_message(alice.id, room.id, gone).await.unwrap();
    }
    chat.edit_message(alice.id, room.id, sent[3], "coffee number 4")
        .await
        .unwrap();
    let search = |text: &'static str| {
        let chat = chat.clone();
        async move {
            let page = chat.search(alice.id, text, None, None, None).await.unwrap();
            page.items.iter().map(|m| m.id).collect::<Vec<MessageId>>()
        }
    };
    assert_eq!(search("tea").await, [sent[4], sent[1]]);
    assert_eq!(search("number").await, [sent[4], sent[3], sent[1]]);
    assert_eq!(search("coffee").await, [sent[3]]);
}
