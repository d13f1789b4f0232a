//! The one writer: every write runs on one connection, and writes that arrive while a
//! transaction is being written are committed together in the next one (group commit).
//!
//! A write that fails (a conflict, say) is undone alone while the others of its batch commit:
//! each write of several statements runs inside its own savepoint, and a write of one statement
//! is undone by SQLite itself. A write is acknowledged only once the transaction holding it has
//! committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chat_core::StoreError;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::codec::StoreResult;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tells a write's caller how its transaction ended.
type Acknowledge = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// Runs a write on the writer's connection, reports whether it succeeded, and returns how to
/// acknowledge it once the transaction's fate is known.
type Work =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Acknowledge)> + Send>;

/// A queued write.
struct Job {
    /// The write changes the database in at most one statement, which SQLite undoes by itself
    /// when it fails: no savepoint needed.
    single_statement: bool,
    work: Work,
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
    /// Starts the writer task on `connection`.
    pub(crate) fn spawn(connection: SqliteConnection) -> Self {
        let (jobs, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_loop(connection, receiver));
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
        let job = Job {
            single_statement,
            work,
        };
        self.jobs.send(job).await.map_err(|_| writer_gone())?;
        replied.await.map_err(|_| writer_gone())?
    }
}

async fn execute(connection: &mut SqliteConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(connection).await.map(drop)
}

async fn write_loop(mut connection: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        run_batch(&mut connection, &mut batch).await;
    }
}

/// Runs one transaction. A job that is never run drops its reply channel, and its caller gets
/// an error: that happens only when the transaction itself cannot go on.
async fn run_batch(connection: &mut SqliteConnection, batch: &mut Vec<Job>) {
    if let [job] = batch.as_slice()
        && job.single_statement
    {
        // One statement alone is its own transaction in autocommit mode: committed (or, on
        // failure, undone) by SQLite before it returns. No BEGIN and COMMIT round trips.
        for job in batch.drain(..) {
            let (_, acknowledge) = (job.work)(connection).await;
            acknowledge(Ok(()));
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
    for job in batch.drain(..) {
        let savepoint = !alone && !job.single_statement;
        if savepoint && let Err(error) = execute(connection, "SAVEPOINT write").await {
            broken = Some(error);
            break;
        }
        let (succeeded, acknowledge) = (job.work)(connection).await;
        acknowledgements.push(acknowledge);
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
