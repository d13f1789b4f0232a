//! The one writer: every write runs on one connection, and writes that arrive while a
//! transaction is being written are committed together in the next one (group commit).
//!
//! A write that fails (a conflict, say) is undone alone while the others of its batch commit:
//! each write of several statements runs inside its own savepoint, and a write of one statement
//! is undone by SQLite itself. A write is acknowledged only once the transaction holding it has
//! committed.
//!
//! When sends bring the search index due, the indexer task reads and splits what the index
//! lacks on a read connection, while the writer goes on writing, and hands the writer only the
//! index's insert, a write like any other.

use std::future::Future;
use std::iter::Peekable;
use std::pin::Pin;
use std::sync::Arc;

use chat_core::{Sent, StoreError};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::codec::StoreResult;
use crate::messages::{Append, append_all};
use crate::search::{index_prepared, prepare};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tells a write's caller how its transaction ended.
type Acknowledge = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// Runs a write on the writer's connection, reports whether it succeeded, and returns how to
/// acknowledge it once the transaction's fate is known.
type Work =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Acknowledge)> + Send>;

/// A queued write.
enum Job {
    Work {
        /// The write changes the database in at most one statement, which SQLite undoes by
        /// itself when it fails: no savepoint needed.
        single_statement: bool,
        work: Work,
    },
    /// A message append: the appends queued next to each other are run as one statement.
    Append {
        append: Box<Append>,
        reply: oneshot::Sender<StoreResult<Sent>>,
    },
}

/// Most writes in one transaction: bounds the latency a batch adds to its first write.
const MAX_BATCH: usize = 512;

/// Hands writes to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

fn writer_gone() -> StoreError {
    StoreError::backend("the SQLite writer stopped (see the log for why)")
}

/// A commit error shared by every write of the failed transaction.
#[derive(Debug, Clone)]
struct TransactionFailed(Arc<sqlx::Error>);

impl std::fmt::Display for TransactionFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the transaction holding this write failed: {}", self.0)
    }
}

impl std::error::Error for TransactionFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl Writer {
    /// Starts the writer task on `connection`, and the indexer task, which reads on `readers`.
    pub(crate) fn spawn(connection: SqliteConnection, readers: SqlitePool) -> Self {
        let (jobs, receiver) = mpsc::channel(4 * MAX_BATCH);
        // One at most: a due catch-up takes every message the index lacks.
        let (due, index_due) = mpsc::channel(1);
        tokio::spawn(write_loop(connection, receiver, due));
        tokio::spawn(index_loop(readers, jobs.downgrade(), index_due));
        Self { jobs }
    }

    /// Runs `work` in the next transaction and returns its result once that has committed.
    /// If `work` fails, whatever it wrote is undone and the rest of the transaction stands.
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        self.submit(false, work).await
    }

    /// Like [`Writer::write`], for work whose changes are one statement (reads around it
    /// allowed): it skips the savepoint, which matters on the send path.
    pub(crate) async fn write_one_statement<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        self.submit(true, work).await
    }

    async fn submit<T, F>(&self, single_statement: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let (reply, replied) = oneshot::channel();
        let work: Work = Box::new(move |connection| {
            Box::pin(async move {
                let result = work(connection).await;
                let succeeded = result.is_ok();
                let acknowledge: Acknowledge = Box::new(move |committed: StoreResult<()>| {
                    // The caller may have gone away; its write stands or falls all the same.
                    let _ = reply.send(committed.and(result));
                });
                (succeeded, acknowledge)
            })
        });
        let job = Job::Work {
            single_statement,
            work,
        };
        self.jobs.send(job).await.map_err(|_| writer_gone())?;
        replied.await.map_err(|_| writer_gone())?
    }

    /// Appends a message in the next transaction, in one statement with the appends queued
    /// next to it, and returns once that has committed.
    pub(crate) async fn append(&self, append: Append) -> StoreResult<Sent> {
        let (reply, replied) = oneshot::channel();
        let job = Job::Append {
            append: Box::new(append),
            reply,
        };
        self.jobs.send(job).await.map_err(|_| writer_gone())?;
        replied.await.map_err(|_| writer_gone())?
    }
}

async fn execute(connection: &mut SqliteConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(connection).await.map(drop)
}

async fn write_loop(
    mut connection: SqliteConnection,
    mut jobs: mpsc::Receiver<Job>,
    due: mpsc::Sender<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut index_due = false;
        run_batch(&mut connection, &mut batch, &mut index_due).await;
        if index_due {
            // Full: a catch-up is due already, and will take these messages too.
            let _ = due.try_send(());
        }
    }
}

/// Catches the search index up each time sends bring it due, until the writer stops: reads
/// and splits a page of what it lacks on a read connection, and has the writer write it.
async fn index_loop(readers: SqlitePool, jobs: mpsc::WeakSender<Job>, mut due: mpsc::Receiver<()>) {
    while due.recv().await.is_some() {
        loop {
            let page = match prepare(&readers).await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(_) if readers.is_closed() => return,
                Err(error) => {
                    tracing::error!(%error, "cannot read new messages for the search index");
                    break;
                }
            };
            let more = page.more;
            let Some(jobs) = jobs.upgrade() else { return };
            let written = Writer { jobs }
                .write(move |c| Box::pin(index_prepared(c, page)))
                .await;
            if let Err(error) = written {
                // The messages stay found (search reads what the index lacks), and the next
                // catch-up takes them.
                tracing::error!(%error, "cannot index new messages for search");
                break;
            }
            if !more {
                break;
            }
        }
    }
}

/// Runs one transaction, and sets `index_due` if its sends bring the search index due. A job
/// that is never run drops its reply channel, and its caller gets an error: that happens only
/// when the transaction itself cannot go on.
async fn run_batch(connection: &mut SqliteConnection, batch: &mut Vec<Job>, index_due: &mut bool) {
    let autocommit = match batch.as_slice() {
        [
            Job::Work {
                single_statement, ..
            },
        ] => *single_statement,
        jobs => jobs.iter().all(Job::is_append),
    };
    if autocommit {
        // One statement alone is its own transaction in autocommit mode: committed (or, on
        // failure, undone) by SQLite before it returns. No BEGIN and COMMIT round trips. So is
        // a batch of appends, run as one statement (or, when that fails, as one each).
        let mut jobs = batch.drain(..).peekable();
        while let Some(job) = jobs.next() {
            for (_, acknowledge) in run(connection, job, &mut jobs, index_due).await {
                acknowledge(Ok(()));
            }
        }
        return;
    }
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE").await {
        tracing::error!(%error, "cannot begin a write transaction");
        batch.clear();
        return;
    }
    // A lone write that fails is undone by rolling the whole transaction back.
    let alone = batch.len() == 1;
    let mut undo_all = false;
    let mut acknowledgements = Vec::with_capacity(batch.len());
    let mut broken = None;
    let mut jobs = batch.drain(..).peekable();
    while let Some(job) = jobs.next() {
        let savepoint = !alone && job.needs_savepoint();
        if savepoint && let Err(error) = execute(connection, "SAVEPOINT write").await {
            broken = Some(error);
            break;
        }
        let ran = run(connection, job, &mut jobs, index_due).await;
        let succeeded = ran.iter().all(|(succeeded, _)| *succeeded);
        acknowledgements.extend(ran.into_iter().map(|(_, acknowledge)| acknowledge));
        let closed = match (savepoint, succeeded) {
            (true, true) => execute(connection, "RELEASE write").await,
            (true, false) => match execute(connection, "ROLLBACK TO write").await {
                Ok(()) => execute(connection, "RELEASE write").await,
                Err(error) => Err(error),
            },
            (false, succeeded) => {
                undo_all = alone && !succeeded;
                Ok(())
            }
        };
        if let Err(error) = closed {
            broken = Some(error);
            break;
        }
    }
    let failure = match broken {
        Some(error) => Some(error),
        None => {
            let end = if undo_all { "ROLLBACK" } else { "COMMIT" };
            execute(connection, end).await.err()
        }
    };
    let outcome = match failure {
        None => Ok(()),
        Some(error) => {
            tracing::error!(%error, "write transaction failed; rolling back");
            if let Err(error) = execute(connection, "ROLLBACK").await {
                tracing::error!(%error, "rollback failed");
            }
            Err(TransactionFailed(Arc::new(error)))
        }
    };
    for acknowledge in acknowledgements {
        acknowledge(outcome.clone().map_err(StoreError::backend));
    }
}

impl Job {
    fn is_append(&self) -> bool {
        matches!(self, Job::Append { .. })
    }

    /// Whether a failure of this job could leave part of it written: an append is one
    /// statement, which SQLite undoes by itself.
    fn needs_savepoint(&self) -> bool {
        matches!(
            self,
            Job::Work {
                single_statement: false,
                ..
            }
        )
    }
}

/// Runs `job`, and with an append the appends that follow it in `rest`, and says for each
/// write whether it succeeded and how to acknowledge it (and, in `index_due`, whether appends
/// brought the search index due).
async fn run(
    connection: &mut SqliteConnection,
    job: Job,
    rest: &mut Peekable<impl Iterator<Item = Job>>,
    index_due: &mut bool,
) -> Vec<(bool, Acknowledge)> {
    let (append, reply) = match job {
        Job::Work { work, .. } => return vec![work(connection).await],
        Job::Append { append, reply } => (*append, reply),
    };
    let mut appends = vec![append];
    let mut replies = vec![reply];
    while let Some(Job::Append { append, reply }) = rest.next_if(Job::is_append) {
        appends.push(*append);
        replies.push(reply);
    }
    let results = append_all(connection, &appends, index_due).await;
    replies
        .into_iter()
        .zip(results)
        .map(|(reply, result)| {
            let succeeded = result.is_ok();
            let acknowledge: Acknowledge = Box::new(move |committed: StoreResult<()>| {
                let _ = reply.send(committed.and(result));
            });
            (succeeded, acknowledge)
        })
        .collect()
}
