//! `chat-server export` and `import`: a chat moved memory → SQLite → sled → PostgreSQL →
//! memory, every user seeing the same thing at each step; and the files and stores an import
//! refuses. PostgreSQL as in `nodes.rs`: skipped loudly where it is missing, required in CI.
#![cfg(all(feature = "sled", feature = "postgres"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chat_core::store::{MemoryStore, Store};
use chat_core::testing::fixture::{View, every_kind_of_data, view};
use chat_core::testing::{epoch, test_config};
use chat_core::{Chat, User};
use chat_store_postgres::testing::{TestSchema, postgres_missing};
use chat_store_postgres::{PostgresOptions, PostgresStore};
use chat_store_sled::SledStore;
use chat_store_sqlite::SqliteStore;

/// `chat-server --database URL ARGS…`.
fn chat_server(database: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--database", database])
        .args(args)
        .output()
        .unwrap()
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// Imports `from` into the database, then exports it to `to`.
fn import_and_export(database: &[&str], from: &Path, to: &Path) {
    let (url, more) = database.split_first().unwrap();
    let import = [more, &["import", from.to_str().unwrap()]].concat();
    let stderr = succeeded(&chat_server(url, &import));
    assert!(
        stderr.contains("imported 4 users, 4 rooms, 10 members, 13 messages"),
        "{stderr}"
    );
    let export = [more, &["export", "--output", to.to_str().unwrap()]].concat();
    succeeded(&chat_server(url, &export));
}

/// The records of an export but its header (which names the store and the time).
fn records(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines().skip(1).map(str::to_owned).collect()
}

/// What each user sees of the chat in `store`.
async fn views(store: Arc<dyn Store>, users: &[User]) -> Vec<View> {
    let chat = Chat::builder(store).config(test_config()).build().unwrap();
    let mut views = Vec::new();
    for user in users {
        views.push(view(&chat, user.id).await);
    }
    views
}

fn assert_same(step: &str, seen: &[View], expected: &[View], users: &[User]) {
    for ((seen, expected), user) in seen.iter().zip(expected).zip(users) {
        if let Some((field, differs)) = seen.differences(expected).pop() {
            panic!("{step}: {}'s {field} differ: {differs}", user.username);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_moves_through_every_store_and_looks_the_same() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("moves_through_every_store", &why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |n: u32| -> PathBuf { dir.path().join(format!("chat-{n}.jsonl")) };
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let source = Chat::builder(memory.clone()).config(test_config()).build();
    let users = every_kind_of_data(&source.unwrap()).await;
    let expected = views(memory.clone(), &users).await;
    let mut out = std::fs::File::create(file(0)).unwrap();
    chat_core::export::export(&*memory, "memory", epoch(), &mut out, |_| {})
        .await
        .unwrap();

    let sqlite = format!("sqlite://{}", dir.path().join("chat.db").display());
    import_and_export(&[&sqlite], &file(0), &file(1));
    let store = Arc::new(SqliteStore::open(&sqlite).await.unwrap());
    assert_same(
        "SQLite",
        &views(store.clone(), &users).await,
        &expected,
        &users,
    );
    Arc::into_inner(store).unwrap().close().await;

    let sled = format!("sled://{}", dir.path().join("sled").display());
    import_and_export(&[&sled], &file(1), &file(2));
    let store = Arc::new(SledStore::open(&sled).await.unwrap());
    assert_same(
        "sled",
        &views(store.clone(), &users).await,
        &expected,
        &users,
    );
    drop(store);

    let schema = TestSchema::new();
    let on_schema = [schema.url.as_str(), "--postgres-schema", &schema.name];
    import_and_export(&on_schema, &file(2), &file(3));
    let mut options = PostgresOptions::new(&schema.url).unwrap();
    options.schema = Some(schema.name.clone());
    let store = Arc::new(PostgresStore::open_with(options).await.unwrap());
    assert_same("PostgreSQL", &views(store, &users).await, &expected, &users);

    let back: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let text = std::fs::read(file(3)).unwrap();
    chat_core::import::import(&*back, &mut text.as_slice(), |_| {})
        .await
        .unwrap();
    assert_same(
        "memory again",
        &views(back, &users).await,
        &expected,
        &users,
    );
    for n in 1..=3 {
        assert_eq!(
            records(&file(n)),
            records(&file(0)),
            "export {n}, record by record"
        );
    }
}

#[tokio::test]
async fn import_refuses_a_database_in_use_and_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let source = Chat::builder(memory.clone()).config(test_config()).build();
    every_kind_of_data(&source.unwrap()).await;
    let mut text = Vec::new();
    chat_core::export::export(&*memory, "memory", epoch(), &mut text, |_| {})
        .await
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    let whole = dir.path().join("whole.jsonl");
    std::fs::write(&whole, &text).unwrap();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let line = text[..text.len() / 2].lines().count();
    let sqlite = format!("sqlite://{}", dir.path().join("chat.db").display());

    let output = chat_server(&sqlite, &["import", cut.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("line {line}: the file ends before its end record")),
        "{stderr}"
    );
    let serve = chat_server(
        &sqlite,
        &["create-admin", "--username", "root", "--password", "x"],
    );
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        !serve.status.success(),
        "a half-imported database is not served"
    );
    assert!(
        stderr.contains("import into this database has not finished"),
        "{stderr}"
    );

    succeeded(&chat_server(&sqlite, &["import", whole.to_str().unwrap()]));
    let again = chat_server(&sqlite, &["import", whole.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(stderr.contains("the store is not empty"), "{stderr}");
}
