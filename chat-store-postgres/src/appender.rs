//! Group commit for appends. An append holds its room's row lock until its transaction
//! commits, so appends to one room commit one at a time, each waiting for its own WAL flush.
//! Here appends queue per shard of rooms (a room always in the same shard, so its order
//! holds), and a shard's task writes what has queued in one transaction: many appends, one
//! flush. Shards run in parallel, so busy rooms in different shards do not wait for each other.

use std::hash::{Hash, Hasher};

use chat_core::store::NewStoredMessage;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::codec::{
    StoreResult, get, is_unavailable, map_err, metadata_json, uint, user_ids, violates,
};

/// One statement, one round trip: the room's row is updated first (its lock orders appends to
/// the room until commit) if the sender is a user and a member, the reply, if any, is a
/// message of the room, and the thread's root, if any, may start one; the message takes the
/// new sequence number and change cursor, keeps the mentioned users who are members, and the
/// sender's read marker moves past it. The `messages_appended_extras` trigger counts its
/// mentions and thread reply.
const APPEND: &str = "\
    WITH room AS ( \
        UPDATE rooms SET last_seq = last_seq + 1, last_change = last_change + 1 \
        WHERE id = $1 \
          AND EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $3) \
          AND EXISTS (SELECT 1 FROM users WHERE id = $3) \
          AND ($5::uuid IS NULL OR EXISTS (SELECT 1 FROM messages WHERE id = $5 AND room_id = $1)) \
          AND ($9::uuid IS NULL OR EXISTS (SELECT 1 FROM messages WHERE id = $9 AND room_id = $1 \
                                           AND thread_root IS NULL AND deleted_at IS NULL)) \
        RETURNING id, last_seq, last_change \
    ), inserted AS ( \
        INSERT INTO messages (room_id, seq, id, sender, body, reply_to, txn_id, metadata, \
                              created_at, change_id, thread_root, mentions, mentions_room, \
                              search_terms) \
        SELECT id, last_seq, $2, $3, $4, $5, $6, $7, $8, last_change, $9, \
               CASE WHEN $10::uuid[] IS NULL THEN NULL ELSE ARRAY( \
                   SELECT u FROM unnest($10::uuid[]) WITH ORDINALITY AS t (u, i) \
                   WHERE EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = u) \
                   ORDER BY i) END, \
               $11, array_to_tsvector($12::text[]) \
        FROM room \
        RETURNING seq, change_id, mentions \
    ), marked AS ( \
        UPDATE members SET last_read_seq = GREATEST(last_read_seq, inserted.seq) \
        FROM inserted WHERE room_id = $1 AND user_id = $3 \
    ) \
    SELECT seq, change_id, mentions FROM inserted";

/// The most appends one transaction takes.
const BATCH: usize = 256;

/// What became of one append.
#[derive(Debug)]
pub(crate) enum Appended {
    /// Stored under this sequence number and change cursor, mentioning these members.
    Stored {
        seq: u64,
        change_id: u64,
        mentions: Vec<chat_core::UserId>,
    },
    /// The sender had used the transaction id already: the original stands.
    TxnIdTaken,
    /// Refused by a check of the contract (no such room, not a member, a reply to a message of
    /// another room): which one is read afterwards.
    Refused,
}

struct Job {
    new: NewStoredMessage,
    done: oneshot::Sender<StoreResult<Appended>>,
}

/// The shards' queues and tasks; the tasks stop when this is dropped (a `JoinSet` aborts its
/// tasks then).
pub(crate) struct Appender {
    shards: Vec<mpsc::Sender<Job>>,
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Appender {
    /// `shards` tasks writing through `pool`.
    pub(crate) fn spawn(pool: &PgPool, shards: usize) -> Self {
        let (mut queues, mut tasks) = (Vec::new(), JoinSet::new());
        for _ in 0..shards.max(1) {
            let (queue, jobs) = mpsc::channel(BATCH * 4);
            queues.push(queue);
            tasks.spawn(run(pool.clone(), jobs));
        }
        Self {
            shards: queues,
            _tasks: tasks,
        }
    }

    /// Appends `new` with whatever else is queued for its shard; answers once committed.
    pub(crate) async fn append(&self, new: &NewStoredMessage) -> StoreResult<Appended> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        new.room_id.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() % self.shards.len() as u64) as usize];
        let (done, answer) = oneshot::channel();
        let job = Job {
            new: new.clone(),
            done,
        };
        let gone = || chat_core::StoreError::backend("the store is closing");
        shard.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A shard's task: takes what has queued, writes it, answers each append.
async fn run(pool: PgPool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() == 1 {
            for job in batch {
                let result = alone(&pool, &job.new).await;
                let _ = job.done.send(result);
            }
            continue;
        }
        match together(&pool, &batch).await {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.done.send(Ok(result));
                }
            }
            // Whether the commit itself went through is unknown: say so to each, and a
            // client that retries with its transaction id gets its message once.
            Err(Failed::Commit(error)) => {
                for job in batch {
                    let _ = job.done.send(Err(commit_failed(&error)));
                }
            }
            // Nothing was written: each append on its own, as if it had come alone.
            Err(Failed::Before) => {
                for job in batch {
                    let result = alone(&pool, &job.new).await;
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

/// A failed commit, told to every append of the batch.
fn commit_failed(error: &sqlx::Error) -> chat_core::StoreError {
    let cause = format!("commit failed: {error}");
    if is_unavailable(error) {
        chat_core::StoreError::Unavailable(cause.into())
    } else {
        chat_core::StoreError::backend(cause)
    }
}

enum Failed {
    /// A statement failed; the transaction was rolled back.
    Before,
    /// The commit failed: it may or may not have been applied.
    Commit(sqlx::Error),
}

/// One append in a transaction of its own (the statement's).
async fn alone(pool: &PgPool, new: &NewStoredMessage) -> StoreResult<Appended> {
    let mut c = pool.acquire().await.map_err(map_err)?;
    match insert(&mut c, new).await {
        Err(error) if violates(&error, "messages_by_txn") => Ok(Appended::TxnIdTaken),
        other => other.map_err(map_err)?,
    }
}

/// Every append of the batch in one transaction. Transaction ids used before, or twice in
/// the batch, are found first, so that no insert fails and takes the others down with it.
async fn together(pool: &PgPool, batch: &[Job]) -> Result<Vec<Appended>, Failed> {
    let mut tx = pool.begin().await.map_err(|_| Failed::Before)?;
    let taken = taken_txn_ids(&mut tx, batch)
        .await
        .map_err(|_| Failed::Before)?;
    let mut seen = std::collections::HashSet::new();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let new = &job.new;
        let key = new.txn_id.as_ref().map(|txn| (new.sender, txn.clone()));
        let repeated = key
            .as_ref()
            .is_some_and(|key| taken.contains(key) || !seen.insert(key.clone()));
        if repeated {
            results.push(Appended::TxnIdTaken);
            continue;
        }
        match insert(&mut tx, new).await {
            Ok(Ok(appended)) => results.push(appended),
            _ => return Err(Failed::Before), // dropped: rolled back
        }
    }
    tx.commit().await.map_err(Failed::Commit)?;
    Ok(results)
}

/// The (sender, transaction id) pairs of the batch that are stored already.
async fn taken_txn_ids(
    c: &mut PgConnection,
    batch: &[Job],
) -> Result<std::collections::HashSet<(chat_core::UserId, String)>, sqlx::Error> {
    let (senders, txn_ids): (Vec<uuid::Uuid>, Vec<String>) = batch
        .iter()
        .filter_map(|job| Some((job.new.sender.0, job.new.txn_id.clone()?)))
        .unzip();
    if senders.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT m.sender, m.txn_id FROM messages m \
         JOIN unnest($1::uuid[], $2::text[]) AS k(sender, txn_id) \
           ON m.sender = k.sender AND m.txn_id = k.txn_id",
    )
    .bind(senders)
    .bind(txn_ids)
    .fetch_all(c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sender, txn)| (chat_core::UserId(sender), txn))
        .collect())
}

/// The append statement; the outer error is the database's, the inner one decoding's.
async fn insert(
    c: &mut PgConnection,
    new: &NewStoredMessage,
) -> Result<StoreResult<Appended>, sqlx::Error> {
    let metadata = match metadata_json(&new.metadata) {
        Ok(metadata) => metadata,
        Err(error) => return Ok(Err(error)),
    };
    let row = sqlx::query(APPEND)
        .bind(new.room_id.0)
        .bind(new.id.0)
        .bind(new.sender.0)
        .bind(&new.body)
        .bind(new.reply_to.map(|id| id.0))
        .bind(&new.txn_id)
        .bind(metadata)
        .bind(new.created_at)
        .bind(new.thread_root.map(|id| id.0))
        .bind(
            (!new.mentions.is_empty())
                .then(|| new.mentions.iter().map(|u| u.0).collect::<Vec<_>>()),
        )
        .bind(new.mentions_room)
        .bind(chat_core::search::terms(&new.body))
        .fetch_optional(c)
        .await?;
    Ok(match row {
        None => Ok(Appended::Refused),
        Some(row) => (|| {
            Ok(Appended::Stored {
                seq: uint(get(&row, "seq")?)?,
                change_id: uint(get(&row, "change_id")?)?,
                mentions: user_ids(get(&row, "mentions")?),
            })
        })(),
    })
}
