//! Import: a chat written by [`export`](crate::export) into an empty [`Store`] of any kind,
//! every id, sequence number and marker kept.
//!
//! The file is read a line at a time and written in batches, so memory stays flat however
//! large the chat. A line that is not a record, a record out of its place (a message of
//! another room, a gap in a room's sequence) or a file that ends before its
//! [`Record::End`] stops the import with an error naming the line.
//!
//! An import marks the store as it starts and clears the mark when it ends: a store holding
//! the mark of the same file is one an interrupted import left, and importing the file again
//! finishes it (what is there already is skipped); any other store that is not empty is
//! refused.

use std::io::{BufRead, Read};

use crate::export::{FORMAT, Record, Totals, VERSION};
use crate::store::{Mention, Store, ThreadMarker, UserQuery};
use crate::validate;
use crate::{Member, Message, Room, RoomId, StoreError, User, UserId};

/// Records written to the store per call.
const BATCH: usize = 1000;

/// The longest line read: far beyond any record the engine writes (a message's body and
/// metadata at their limits, escaped), and a bound on what a file can make the reader hold.
const MAX_LINE: u64 = 16 << 20;

/// Why an import stopped. Those about the file name its line (counted from 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading the file failed.
    #[error("line {line}: reading the file: {source}")]
    Read {
        /// The line being read.
        line: u64,
        /// What failed.
        source: std::io::Error,
    },
    /// A line is not a record of the format.
    #[error("line {line}: not a record of a chat export: {source}")]
    Corrupt {
        /// The line.
        line: u64,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// A record is not where the format puts it, disagrees with those before it, or holds a
    /// value the engine never stores.
    #[error("line {line}: {problem}")]
    Invalid {
        /// The line.
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// The file ends before its last record.
    #[error("line {line}: the file ends before its end record: it is truncated")]
    Truncated {
        /// The last line read.
        line: u64,
    },
    /// The store holds data, and not from an unfinished import of this file.
    #[error("the store is not empty: import into a new database")]
    NotEmpty,
    /// The store holds an unfinished import of another file.
    #[error(
        "the store holds an unfinished import of another export ({0}): finish it with that \
         file, or import into a new database"
    )]
    OtherImport(String),
    /// The store refused a write, or failed.
    #[error("line {line}: writing to the store: {source}")]
    Store {
        /// The line whose record was being written.
        line: u64,
        /// What the store said.
        source: StoreError,
    },
}

/// Imports the export read from `input` into `store` (see the [module](self)); `progress` is
/// called with the totals so far after each batch of messages. Returns the totals read.
pub async fn import(
    store: &dyn Store,
    input: &mut dyn BufRead,
    mut progress: impl FnMut(&Totals),
) -> Result<Totals, ImportError> {
    let mut reader = Reader {
        input,
        line: 0,
        text: String::new(),
    };
    let header = reader.next()?.ok_or(ImportError::Truncated { line: 0 })?;
    let mark = header_mark(&header, reader.line)?;
    let resuming = begin(store, &mark, reader.line).await?;
    let mut import = Importer {
        store,
        resuming,
        line: reader.line,
        totals: Totals::default(),
        room: None,
        users: Vec::new(),
    };
    loop {
        let Some(record) = reader.next()? else {
            return Err(ImportError::Truncated { line: reader.line });
        };
        import.line = reader.line;
        if let Record::End { totals } = record {
            import.flush_users().await?;
            import.finish_room().await?;
            if totals != import.totals {
                return Err(import.invalid(format!(
                    "the end record counts {totals:?}, the file holds {:?}",
                    import.totals
                )));
            }
            if reader.next()?.is_some() {
                return Err(import.invalid("a record after the end record".into()));
            }
            store
                .set_import_mark(None)
                .await
                .map_err(|source| ImportError::Store {
                    line: import.line,
                    source,
                })?;
            return Ok(import.totals);
        }
        let messages = import.totals.messages;
        import.add(record).await?;
        if import.totals.messages / BATCH as u64 != messages / BATCH as u64 {
            progress(&import.totals);
        }
    }
}

/// The file, a line at a time.
struct Reader<'a> {
    input: &'a mut dyn BufRead,
    /// The number of the last line read.
    line: u64,
    text: String,
}

impl Reader<'_> {
    /// The next record, or `None` at the end of the file.
    fn next(&mut self) -> Result<Option<Record>, ImportError> {
        self.text.clear();
        let read = (&mut self.input).take(MAX_LINE).read_line(&mut self.text);
        let line = self.line + 1;
        match read {
            Err(source) => Err(ImportError::Read { line, source }),
            Ok(0) => Ok(None),
            Ok(_) => {
                self.line = line;
                if self.text.len() as u64 == MAX_LINE && !self.text.ends_with('\n') {
                    let problem = format!("longer than {} MiB", MAX_LINE >> 20);
                    return Err(ImportError::Invalid { line, problem });
                }
                // The exporter ends every line: one without its end was cut short.
                if !self.text.ends_with('\n') {
                    return Err(ImportError::Truncated { line });
                }
                serde_json::from_str(&self.text)
                    .map(Some)
                    .map_err(|source| ImportError::Corrupt { line, source })
            }
        }
    }
}

/// The header, checked, as the mark an import leaves on the store.
fn header_mark(header: &Record, line: u64) -> Result<String, ImportError> {
    let invalid = |problem: String| ImportError::Invalid { line, problem };
    let Record::Header {
        format, version, ..
    } = header
    else {
        return Err(invalid("the first line is not the export's header".into()));
    };
    if format != FORMAT {
        return Err(invalid(format!("the format is {format:?}, not {FORMAT:?}")));
    }
    if *version > VERSION {
        return Err(invalid(format!(
            "the export is of version {version}; this build reads up to version {VERSION}"
        )));
    }
    serde_json::to_string(header).map_err(|source| ImportError::Corrupt { line, source })
}

/// Marks the store as being imported into; returns whether it is a resumed import.
async fn begin(store: &dyn Store, mark: &str, line: u64) -> Result<bool, ImportError> {
    let failed = |source| ImportError::Store { line, source };
    match store.import_mark().await.map_err(failed)? {
        Some(left) if left == mark => return Ok(true),
        Some(other) => return Err(ImportError::OtherImport(describe(&other))),
        None => {}
    }
    let anyone = UserQuery {
        search: None,
        after_username: None,
        limit: 1,
    };
    let users = store.list_users(&anyone).await.map_err(failed)?;
    let rooms = store.list_rooms(None, 1).await.map_err(failed)?;
    if !users.is_empty() || !rooms.is_empty() {
        return Err(ImportError::NotEmpty);
    }
    store.set_import_mark(Some(mark)).await.map_err(failed)?;
    Ok(false)
}

/// Whether `value` is as the engine stores it: valid, and already in the form `validate`
/// gives it (lowercase, trimmed), which is what stores compare and look up.
fn stored_as(value: &str, validate: impl Fn(&str) -> crate::Result<String>) -> bool {
    validate(value).is_ok_and(|stored| stored == value)
}

/// A mark as a person reads it: where the export came from and when.
fn describe(mark: &str) -> String {
    match serde_json::from_str(mark) {
        Ok(Record::Header {
            source,
            exported_at,
            ..
        }) => format!("of {source}, exported at {exported_at}"),
        _ => mark.to_owned(),
    }
}

/// Where an import is.
struct Importer<'a> {
    store: &'a dyn Store,
    /// Whether the store holds part of this import already (skip what is there).
    resuming: bool,
    /// The line of the record at hand.
    line: u64,
    totals: Totals,
    /// The room whose records are being read.
    room: Option<RoomImport>,
    /// Users read and not yet written, with their lines.
    users: Vec<(u64, User, Option<String>)>,
}

/// A room being imported: the room as exported, and the records not yet written.
struct RoomImport {
    room: Room,
    /// The sequence number of the last message read.
    seq: u64,
    /// Messages up to this one are in the store (a resumed import).
    stored_seq: u64,
    pending: Pending,
}

/// Records of one kind waiting to be written together.
enum Pending {
    None,
    Members(Vec<Member>),
    /// Messages, and the mentions counted for them.
    Messages(Vec<Message>, Vec<Mention>),
    Reactions(Vec<(u64, String, UserId)>),
    Markers(Vec<ThreadMarker>),
}

impl Pending {
    fn len(&self) -> usize {
        match self {
            Pending::None => 0,
            Pending::Members(v) => v.len(),
            Pending::Messages(v, _) => v.len(),
            Pending::Reactions(v) => v.len(),
            Pending::Markers(v) => v.len(),
        }
    }
}

impl Importer<'_> {
    fn invalid(&self, problem: String) -> ImportError {
        ImportError::Invalid {
            line: self.line,
            problem,
        }
    }

    /// The store's error, at the line of the record at hand.
    fn failed(&self) -> impl FnOnce(StoreError) -> ImportError + use<> {
        let line = self.line;
        move |source| ImportError::Store { line, source }
    }

    /// Takes one record (neither header nor end).
    async fn add(&mut self, record: Record) -> Result<(), ImportError> {
        self.totals.count(&record);
        match record {
            Record::Header { .. } | Record::End { .. } => {
                Err(self.invalid("a header or end record within the file".into()))
            }
            Record::User {
                user,
                password_hash,
            } => {
                if self.totals.rooms > 0 {
                    return Err(self.invalid("a user after the first room".into()));
                }
                let email = user.email.as_deref();
                if !stored_as(&user.username, validate::username)
                    || !email.is_none_or(|email| stored_as(email, validate::email))
                {
                    let name = &user.username;
                    return Err(self.invalid(format!(
                        "user {name:?}: a username or email the engine does not store"
                    )));
                }
                self.users.push((self.line, user, password_hash));
                if self.users.len() >= BATCH {
                    self.flush_users().await?;
                }
                Ok(())
            }
            Record::Room {
                mut room,
                password_hash,
            } => {
                self.flush_users().await?;
                self.finish_room().await?;
                if !room
                    .alias
                    .as_deref()
                    .is_none_or(|a| stored_as(a, validate::alias))
                {
                    let alias = room.alias.unwrap_or_default();
                    return Err(
                        self.invalid(format!("an alias the engine does not store: {alias:?}"))
                    );
                }
                room.password_hash = password_hash;
                self.start_room(room).await
            }
            Record::Member { member } => {
                self.in_room(member.room_id, "member")?;
                self.push(Pending::Members(vec![member])).await
            }
            Record::Message { message, mentioned } => {
                let room = self.in_room(message.room_id, "message")?;
                if message.seq != room.seq + 1 || message.seq > room.room.last_seq {
                    let (seq, last) = (message.seq, room.room.last_seq);
                    let expected = room.seq + 1;
                    return Err(self.invalid(format!(
                        "message numbered {seq} where {expected} comes next (of {last})"
                    )));
                }
                room.seq = message.seq;
                if message.seq <= room.stored_seq {
                    return Ok(());
                }
                let mentions = (mentioned.into_iter())
                    .map(|user| Mention {
                        user,
                        seq: message.seq,
                        message: message.id,
                    })
                    .collect();
                self.push(Pending::Messages(vec![message], mentions)).await
            }
            Record::Reaction {
                room_id,
                seq,
                key,
                user_id,
            } => {
                let room = self.in_room(room_id, "reaction")?;
                if seq == 0 || seq > room.seq {
                    return Err(self.invalid(format!(
                        "a reaction to message {seq}, which is not before it"
                    )));
                }
                self.push(Pending::Reactions(vec![(seq, key, user_id)]))
                    .await
            }
            Record::ThreadMarker { room_id, marker } => {
                self.in_room(room_id, "thread marker")?;
                self.push(Pending::Markers(vec![marker])).await
            }
        }
    }

    /// The room being read, if `room` is it.
    fn in_room(&mut self, room: RoomId, what: &str) -> Result<&mut RoomImport, ImportError> {
        let line = self.line;
        match &mut self.room {
            Some(current) if current.room.id == room => Ok(current),
            _ => Err(ImportError::Invalid {
                line,
                problem: format!("a {what} of room {room}, which is not the room before it"),
            }),
        }
    }

    /// Writes the users waiting (those there already skipped when resuming), all at once: a
    /// store that commits concurrent writes together (SQLite, sled) then writes a batch in a
    /// few commits rather than one per user.
    async fn flush_users(&mut self) -> Result<(), ImportError> {
        let users = std::mem::take(&mut self.users);
        let (store, resuming) = (self.store, self.resuming);
        let written = users.iter().map(|(_, user, hash)| async move {
            if !resuming || store.user(user.id).await?.is_none() {
                store.insert_user(user, hash.as_deref()).await?;
            }
            Ok(())
        });
        let written = futures_util::future::join_all(written).await;
        for ((line, _, _), result) in users.iter().zip(written) {
            result.map_err(|source| ImportError::Store {
                line: *line,
                source,
            })?;
        }
        Ok(())
    }

    async fn start_room(&mut self, room: Room) -> Result<(), ImportError> {
        let stored = match self.resuming {
            true => self.store.room(room.id).await.map_err(self.failed())?,
            false => None,
        };
        let stored_seq = match stored {
            Some(stored) => stored.last_seq,
            None => {
                let imported = self.store.import_room(&room).await;
                imported.map_err(self.failed())?;
                0
            }
        };
        self.room = Some(RoomImport {
            room,
            seq: 0,
            stored_seq,
            pending: Pending::None,
        });
        Ok(())
    }

    /// Adds one record to those waiting, writing those first when they are of another kind,
    /// and all of them when the batch is full.
    async fn push(&mut self, one: Pending) -> Result<(), ImportError> {
        let Some(room) = &mut self.room else {
            return Ok(());
        };
        match (&mut room.pending, one) {
            (Pending::Members(all), Pending::Members(one)) => all.extend(one),
            (Pending::Messages(all, mentions), Pending::Messages(one, more)) => {
                all.extend(one);
                mentions.extend(more);
            }
            (Pending::Reactions(all), Pending::Reactions(one)) => all.extend(one),
            (Pending::Markers(all), Pending::Markers(one)) => all.extend(one),
            (_, one) => {
                self.flush().await?;
                if let Some(room) = &mut self.room {
                    room.pending = one;
                }
            }
        }
        if self.room.as_ref().is_some_and(|r| r.pending.len() >= BATCH) {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the records waiting.
    async fn flush(&mut self) -> Result<(), ImportError> {
        let Some(room) = &mut self.room else {
            return Ok(());
        };
        let (store, id) = (self.store, room.room.id);
        let pending = std::mem::replace(&mut room.pending, Pending::None);
        let written = match &pending {
            Pending::None => Ok(()),
            Pending::Members(members) => store.import_members(id, members).await,
            Pending::Messages(messages, mentions) => {
                store.import_messages(id, messages, mentions).await
            }
            Pending::Reactions(reactions) => store.import_reactions(id, reactions).await,
            Pending::Markers(markers) => store.import_thread_markers(id, markers).await,
        };
        written.map_err(self.failed())
    }

    /// Writes what is left of the room being read and gives it its counters.
    async fn finish_room(&mut self) -> Result<(), ImportError> {
        self.flush().await?;
        let Some(room) = self.room.take() else {
            return Ok(());
        };
        if room.seq != room.room.last_seq {
            let (id, last, seq) = (room.room.id, room.room.last_seq, room.seq);
            return Err(self.invalid(format!(
                "room {id} ends at message {seq}, but its last is numbered {last}"
            )));
        }
        let finished = self.store.finish_room_import(&room.room).await;
        finished.map_err(self.failed())
    }
}

#[cfg(test)]
mod tests {
    use super::{ImportError, MAX_LINE, Reader};

    fn first_error(text: &[u8]) -> Option<ImportError> {
        let mut input = text;
        let mut reader = Reader {
            input: &mut input,
            line: 0,
            text: String::new(),
        };
        loop {
            match reader.next() {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(error) => return Some(error),
            }
        }
    }

    #[test]
    fn a_line_beyond_the_bound_is_refused_without_being_held() {
        let long = format!("{}\n", "x".repeat(MAX_LINE as usize + 10));
        let error = first_error(long.as_bytes());
        assert!(
            matches!(&error, Some(ImportError::Invalid { line: 1, problem }) if problem.contains("MiB")),
            "{error:?}"
        );
    }

    #[test]
    fn a_line_without_its_end_is_truncated_and_garbage_is_corrupt() {
        let header = r#"{"type":"end","totals":{"users":0,"rooms":0,"members":0,"messages":0,"reactions":0,"thread_markers":0}}"#;
        let cut = format!("{header}\n{}", &header[..20]);
        assert!(matches!(
            first_error(cut.as_bytes()),
            Some(ImportError::Truncated { line: 2 })
        ));
        let garbage = format!("{header}\n\u{0}\u{ff}not json\n");
        assert!(matches!(
            first_error(garbage.as_bytes()),
            Some(ImportError::Corrupt { line: 2, .. })
        ));
        assert!(first_error(format!("{header}\n").as_bytes()).is_none());
    }
}
