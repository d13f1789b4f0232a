//! The trees, and the writer thread that applies writes in batches: one sled transaction and
//! one flush for every write waiting at that moment (group commit).

use std::cell::RefCell;
use std::sync::Mutex;

use chat_core::StoreError;
use sled::IVec;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use tokio::sync::{mpsc, oneshot};

use crate::Durability;
use crate::codec::{StoreResult, backend, settled};
use crate::search::{Postings, tx_write_postings};

/// The kinds of record, one tree each (see the crate docs for keys and values).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Users,
    Usernames,
    Emails,
    Passwords,
    Tokens,
    TokensBySession,
    TokensByUser,
    Rooms,
    Aliases,
    DirectPairs,
    Members,
    MembersByUser,
    Messages,
    MessageIds,
    TxnIds,
    Changes,
    Reactions,
    ReactionCounts,
    Mentions,
    MentionsById,
    MentionsByMessage,
    ThreadReplies,
    ThreadActivity,
    ThreadMarkers,
    ThreadMarkersByUser,
    Postings,
    Attempts,
    Connections,
    ConnectionsByUser,
    ConnectionsByNode,
    Meta,
}

const KINDS: [(Kind, &str); 31] = [
    (Kind::Users, "users"),
    (Kind::Usernames, "usernames"),
    (Kind::Emails, "emails"),
    (Kind::Passwords, "passwords"),
    (Kind::Tokens, "tokens"),
    (Kind::TokensBySession, "tokens_by_session"),
    (Kind::TokensByUser, "tokens_by_user"),
    (Kind::Rooms, "rooms"),
    (Kind::Aliases, "aliases"),
    (Kind::DirectPairs, "direct_pairs"),
    (Kind::Members, "members"),
    (Kind::MembersByUser, "members_by_user"),
    (Kind::Messages, "messages"),
    (Kind::MessageIds, "message_ids"),
    (Kind::TxnIds, "txn_ids"),
    (Kind::Changes, "changes"),
    (Kind::Reactions, "reactions"),
    (Kind::ReactionCounts, "reaction_counts"),
    (Kind::Mentions, "mentions"),
    (Kind::MentionsById, "mentions_by_id"),
    (Kind::MentionsByMessage, "mentions_by_message"),
    (Kind::ThreadReplies, "thread_replies"),
    (Kind::ThreadActivity, "thread_activity"),
    (Kind::ThreadMarkers, "thread_markers"),
    (Kind::ThreadMarkersByUser, "thread_markers_by_user"),
    (Kind::Postings, "postings"),
    (Kind::Attempts, "attempts"),
    (Kind::Connections, "connections"),
    (Kind::ConnectionsByUser, "connections_by_user"),
    (Kind::ConnectionsByNode, "connections_by_node"),
    (Kind::Meta, "meta"),
];

/// Every tree, for reads of committed data.
#[derive(Debug, Clone)]
pub(crate) struct Trees(Vec<sled::Tree>);

impl Trees {
    pub(crate) fn open(db: &sled::Db) -> StoreResult<Self> {
        KINDS
            .iter()
            .map(|(_, name)| db.open_tree(name).map_err(backend))
            .collect::<StoreResult<Vec<_>>>()
            .map(Self)
    }

    pub(crate) fn tree(&self, kind: Kind) -> &sled::Tree {
        &self.0[kind as usize]
    }

    pub(crate) fn get(&self, kind: Kind, key: impl AsRef<[u8]>) -> StoreResult<Option<IVec>> {
        self.tree(kind).get(key).map_err(backend)
    }
}

/// The trees inside a write: reads see the batch's earlier writes.
pub(crate) struct Tx<'a> {
    trees: &'a [TransactionalTree],
    /// The search lists the batch changed, written at its end.
    pub(crate) postings: &'a Postings,
}

fn unabortable(error: sled::transaction::UnabortableTransactionError) -> StoreError {
    backend(format!("sled transaction: {error:?}"))
}

impl Tx<'_> {
    pub(crate) fn get(&self, kind: Kind, key: impl AsRef<[u8]>) -> StoreResult<Option<IVec>> {
        self.trees[kind as usize].get(key).map_err(unabortable)
    }

    pub(crate) fn insert(
        &self,
        kind: Kind,
        key: impl AsRef<[u8]>,
        value: impl Into<IVec>,
    ) -> StoreResult<()> {
        let key: IVec = key.as_ref().into();
        self.trees[kind as usize]
            .insert(key, value)
            .map(drop)
            .map_err(unabortable)
    }

    pub(crate) fn remove(&self, kind: Kind, key: impl AsRef<[u8]>) -> StoreResult<Option<IVec>> {
        let key: IVec = key.as_ref().into();
        self.trees[kind as usize].remove(key).map_err(unabortable)
    }
}

/// Tells a write's caller how its batch ended.
type Ack = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// A write. Its checks all come before its first change, so a write that fails with a domain
/// error (`NotFound`, `Conflict`) has changed nothing, and the rest of its batch commits.
/// A backend error fails the whole batch.
type Work = Box<dyn Fn(&Tx<'_>) -> (Option<StoreError>, Ack) + Send>;

/// A write that first scans committed data. Plain trees cannot be read inside a sled
/// transaction (they wait for it to end), so the scan runs before, with nothing else in the
/// batch: it sees every earlier write, and nothing can come between it and its changes.
type Scan = Box<dyn FnOnce(&Trees) -> Work + Send>;

enum Job {
    Plain(Work),
    Scanning(Scan),
}

/// Most writes in one batch.
const MAX_BATCH: usize = 1024;

/// Hands writes to the writer thread; dropping it waits for the thread to finish, so the
/// database is closed (and can be reopened) once the store is gone.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn writer_gone() -> StoreError {
    backend("the sled writer stopped")
}

impl Writer {
    pub(crate) fn spawn(db: sled::Db, trees: Trees, durability: Durability) -> StoreResult<Self> {
        let (jobs, receiver) = mpsc::channel(4 * MAX_BATCH);
        let thread = std::thread::Builder::new()
            .name("chat-sled-writer".into())
            .spawn(move || write_loop(&db, &trees, durability, receiver))
            .map_err(backend)?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` in the next batch; its result once the batch is committed (and flushed,
    /// with [`Durability::Flushed`]).
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, replied) = oneshot::channel();
        self.submit(Job::Plain(answering(reply, work)), replied)
            .await
    }

    /// Runs `scan` over committed data, then `apply` with what it found, in a batch of its own.
    pub(crate) async fn write_scanning<P, T, S, A>(&self, scan: S, apply: A) -> StoreResult<T>
    where
        P: Send + 'static,
        T: Send + 'static,
        S: FnOnce(&Trees) -> StoreResult<P> + Send + 'static,
        A: Fn(&Tx<'_>, &P) -> StoreResult<T> + Send + 'static,
    {
        let (reply, replied) = oneshot::channel();
        let job = Job::Scanning(Box::new(move |trees| {
            let scanned = scan(trees).map_err(|error| error.to_string());
            answering(reply, move |tx| match &scanned {
                Ok(found) => apply(tx, found),
                Err(error) => Err(backend(error.clone())),
            })
        }));
        self.submit(job, replied).await
    }

    async fn submit<T>(
        &self,
        job: Job,
        replied: oneshot::Receiver<StoreResult<T>>,
    ) -> StoreResult<T> {
        let jobs = self.jobs.as_ref().ok_or_else(writer_gone)?;
        jobs.send(job).await.map_err(|_| writer_gone())?;
        replied.await.map_err(|_| writer_gone())?
    }
}

/// Wraps `work` so that its result reaches `reply` once its batch's fate is known.
fn answering<T, F>(reply: oneshot::Sender<StoreResult<T>>, work: F) -> Work
where
    T: Send + 'static,
    F: Fn(&Tx<'_>) -> StoreResult<T> + Send + 'static,
{
    // Taken by the first run; sled re-runs a transaction only on a conflict, and with one
    // writer there are none.
    let reply = Mutex::new(Some(reply));
    Box::new(move |tx| {
        let result = work(tx);
        let fatal = match &result {
            Err(StoreError::Backend(error)) => Some(backend(error.to_string())),
            _ => None,
        };
        let reply = reply.lock().ok().and_then(|mut reply| reply.take());
        let ack: Ack = Box::new(move |committed| {
            if let Some(reply) = reply {
                let _ = reply.send(committed.and(result));
            }
        });
        (fatal, ack)
    })
}

fn write_loop(db: &sled::Db, trees: &Trees, durability: Durability, mut jobs: mpsc::Receiver<Job>) {
    let mut queue = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        queue.push(first);
        while queue.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => queue.push(job),
                Err(_) => break,
            }
        }
        // Consecutive plain writes share a batch; a scanning write gets one of its own.
        let mut batch = Vec::new();
        for job in queue.drain(..) {
            match job {
                Job::Plain(work) => batch.push(work),
                Job::Scanning(scan) => {
                    run_batch(db, trees, durability, &batch);
                    batch.clear();
                    let work = scan(trees);
                    run_batch(db, trees, durability, &[work]);
                }
            }
        }
        run_batch(db, trees, durability, &batch);
    }
}

/// One transaction over every tree for the whole batch, then one flush, then the acks.
fn run_batch(db: &sled::Db, trees: &Trees, durability: Durability, batch: &[Work]) {
    if batch.is_empty() {
        return;
    }
    let acks = RefCell::new(Vec::with_capacity(batch.len()));
    let postings = Postings::default();
    let outcome = settled(trees.0.as_slice().transaction(|views| {
        let tx = Tx {
            trees: views.as_slice(),
            postings: &postings,
        };
        let mut acks = acks.borrow_mut();
        acks.clear();
        postings.borrow_mut().clear();
        for work in batch {
            let (fatal, ack) = work(&tx);
            acks.push(ack);
            if let Some(error) = fatal {
                return Err(ConflictableTransactionError::Abort(error));
            }
        }
        tx_write_postings(&tx).map_err(ConflictableTransactionError::Abort)
    }));
    let committed = outcome.and_then(|()| match durability {
        Durability::Flushed => db.flush().map(drop).map_err(backend),
        Durability::Background => Ok(()),
    });
    let committed = committed.map_err(|error| error.to_string());
    for ack in acks.into_inner() {
        ack(committed.clone().map_err(backend));
    }
}
