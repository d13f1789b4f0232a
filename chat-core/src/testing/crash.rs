//! The crash test every durable store runs: a child process sends from several tasks and prints
//! each acknowledged message; the parent kills it with SIGKILL mid-stream, reopens the store,
//! and checks that every acknowledged message is there and that the room's sequence has no gap.
//!
//! A store crate calls [`main`] from a test binary without the libtest harness
//! (`harness = false`): the parent runs that same binary with `--child <dir>` as the child.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::store::{SeqRange, Store};
use crate::{Chat, MessageId, NewMessage, NewRoom, NewUser, RoomId};

const SENDERS: usize = 8;
/// Acknowledgements to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 400;
/// The child stops by itself after this many messages, whatever happens.
const MAX_PER_SENDER: usize = 20_000;

/// Runs the crash test on stores that `open` opens in a directory (the same directory before
/// and after the crash), and prints `crash: 1 passed, 0 failed`; panics on a lost message.
pub fn main<Open, Fut>(open: Open)
where
    Open: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir] = args.as_slice()
        && flag == "--child"
    {
        child(open(PathBuf::from(dir)));
        return;
    }
    let dir = std::env::temp_dir().join(format!("chat-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    parent(&dir, open);
    let _ = std::fs::remove_dir_all(&dir);
    println!("crash: 1 passed, 0 failed");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends as fast as it can and prints `ack <seq> <id>` for each acknowledged message.
fn child(store: impl Future<Output = Arc<dyn Store>>) {
    runtime().block_on(async {
        let chat = Arc::new(Chat::new(store.await));
        let owner = chat
            .create_user(NewUser::named("owner"))
            .await
            .expect("owner");
        let room = chat
            .create_room(owner.id, NewRoom::named("crash"))
            .await
            .expect("room");
        println!("room {}", room.id);
        let tasks: Vec<_> = (0..SENDERS)
            .map(|i| {
                let chat = Arc::clone(&chat);
                tokio::spawn(async move {
                    let user = chat
                        .create_user(NewUser::named(format!("sender{i}")))
                        .await
                        .expect("sender");
                    for j in 0..MAX_PER_SENDER {
                        let new = NewMessage::text(format!("{i}:{j}"));
                        let sent = chat.send(user.id, room.id, new).await.expect("send");
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {} {}", sent.message.seq, sent.message.id)
                            .and_then(|()| out.flush())
                            .expect("stdout");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("sender task");
        }
    });
}

fn parent<Open, Fut>(dir: &Path, open: Open)
where
    Open: Fn(PathBuf) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let mut child = Command::new(std::env::current_exe().expect("own executable"))
        .arg("--child")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    let mut room = None;
    let mut acked: HashMap<MessageId, u64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < ACKS_BEFORE_KILL {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the child acknowledges messages");
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["room", id] => room = Some(id.parse::<RoomId>().expect("room id")),
            ["ack", seq, id] => {
                acked.insert(id.parse().expect("id"), seq.parse().expect("seq"));
            }
            other => panic!("unexpected child output {other:?}"),
        }
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    // Acknowledgements printed before the kill but read after it count too.
    while let Ok(line) = received.recv_timeout(Duration::from_millis(200)) {
        if let ["ack", seq, id] = line.split_whitespace().collect::<Vec<_>>().as_slice() {
            acked.insert(id.parse().expect("id"), seq.parse().expect("seq"));
        }
    }
    let room = room.expect("the child announced its room");

    runtime().block_on(async {
        let store = open(dir.to_path_buf()).await;
        for (id, seq) in &acked {
            let message = store.message(*id).await.expect("read").unwrap_or_else(|| {
                panic!("acknowledged message {id} (seq {seq}) was lost in the crash")
            });
            assert_eq!(message.seq, *seq);
        }
        let last_seq = store
            .room(room)
            .await
            .expect("read")
            .expect("room")
            .last_seq;
        let mut expected = 1;
        loop {
            let range = SeqRange {
                before: None,
                after: Some(expected - 1),
                limit: 1000,
            };
            let page = store.messages(room, range).await.expect("history");
            if page.is_empty() {
                break;
            }
            for message in page {
                assert_eq!(message.seq, expected, "the sequence has a gap");
                expected += 1;
            }
        }
        assert_eq!(
            expected - 1,
            last_seq,
            "history ends at the room's last_seq"
        );
        assert!(last_seq >= acked.len() as u64);
        eprintln!(
            "crash: {} acknowledged before SIGKILL, {} stored, all acknowledged present",
            acked.len(),
            last_seq
        );
    });
}
