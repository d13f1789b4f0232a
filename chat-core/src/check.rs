//! The counter check: recounts from history what a store keeps as counters, and reports every
//! difference.
//!
//! Works on any [`Store`] through its traits. Each room is read on its own, its members and
//! then its messages in pages, so memory holds one room's members, threads and unread
//! mentions at a time, never its history.
//!
//! What is compared, per room: `last_seq` with the newest message; sequence numbers with
//! 1, 2, 3… (no gap); `member_count` with the members; every change cursor with
//! `last_change`; every read marker with `last_seq`; every member's unread mention count with
//! the mentions after its marker; every thread summary (reply count, newest reply and when,
//! participants) with the one its replies make. (An unread count is `last_seq` minus the marker: nothing to drift, once both are
//! right.)
//!
//! [`repair`] also sets the room's counters to their recount and brings read markers back
//! within the history ([`RoomStore::repair_counters`](crate::store::RoomStore::repair_counters)),
//! and replaces the unread mentions of a room whose counts differ with the recount
//! ([`MessageStore::replace_unread_mentions`](crate::store::MessageStore::replace_unread_mentions)),
//! and sets each summary that differs to its recount
//! ([`ThreadStore::repair_thread`](crate::store::ThreadStore::repair_thread)), each only if the
//! room was not written meanwhile. Gaps are reported, not repaired: the history is missing.

use std::collections::HashMap;
use std::fmt;

use crate::store::{
    MemberQuery, Mention, RoomCounters, SeenCounters, SeqRange, Store, StoreResult,
};
use crate::{MemberCursor, Message, MessageId, Room, RoomId, ThreadSummary, UserId};

/// How many findings a report lists; the rest are only counted.
pub const MAX_FINDINGS: usize = 1000;

/// Rooms, members and messages read per store call.
const PAGE: u32 = 1000;

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Rooms checked.
    pub rooms: u64,
    /// Memberships checked.
    pub members: u64,
    /// Messages read, tombstones included.
    pub messages: u64,
    /// The first [`MAX_FINDINGS`] differences, room by room.
    pub findings: Vec<Finding>,
    /// Differences found beyond those listed.
    pub unlisted: u64,
    /// Rooms [`repair`] wrote to.
    pub repaired: u64,
}

impl Report {
    /// Whether every counter matched its recount.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Whether every difference found was repaired (those beyond the list count as left).
    pub fn is_repaired(&self) -> bool {
        self.unlisted == 0 && self.findings.iter().all(|finding| finding.repaired)
    }

    fn found(&mut self, room_id: RoomId, problem: Problem) {
        if self.findings.len() < MAX_FINDINGS {
            let repaired = false;
            self.findings.push(Finding {
                room_id,
                problem,
                repaired,
            });
        } else {
            self.unlisted += 1;
        }
    }
}

/// One counter that does not match its recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The room it is in.
    pub room_id: RoomId,
    /// What is wrong.
    pub problem: Problem,
    /// Whether [`repair`] fixed it.
    pub repaired: bool,
}

/// A difference between a counter as stored and as recounted from history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The room's `last_seq` is not its newest message's sequence number.
    LastSeq {
        /// As stored on the room.
        stored: u64,
        /// The newest message's.
        counted: u64,
    },
    /// Sequence numbers skip from `after` to `next`.
    Gap {
        /// The last number before the gap (0: the first message).
        after: u64,
        /// The number that came next.
        next: u64,
    },
    /// The room's `member_count` is not its number of members.
    MemberCount {
        /// As stored on the room.
        stored: u64,
        /// Members listed.
        counted: u64,
    },
    /// A message's change cursor is beyond the room's `last_change`: the next change would
    /// reuse it.
    ChangeCursor {
        /// The message.
        message: MessageId,
        /// Its change cursor.
        change_id: u64,
        /// The room's.
        last_change: u64,
    },
    /// A member's read marker is beyond the room's newest message.
    ReadMarker {
        /// The member.
        user: UserId,
        /// Its marker.
        marker: u64,
        /// The room's newest sequence number.
        last_seq: u64,
    },
    /// A member's unread mention count.
    Mentions {
        /// The member.
        user: UserId,
        /// As the store counts it.
        stored: u64,
        /// Mentions of the member after its read marker.
        counted: u64,
    },
    /// A thread's summary on its root.
    Thread {
        /// The root.
        root: MessageId,
        /// Reply count and newest reply's sequence number, as stored (0, 0 without summary).
        stored: (u64, u64),
        /// The same, recounted from the replies.
        counted: (u64, u64),
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fixed = if self.repaired { "repaired: " } else { "" };
        write!(f, "{fixed}room {}: ", self.room_id)?;
        match &self.problem {
            Problem::LastSeq { stored, counted } => {
                write!(f, "last_seq is {stored}, the newest message is {counted}")
            }
            Problem::Gap { after, next } => {
                write!(f, "sequence numbers skip from {after} to {next}")
            }
            Problem::MemberCount { stored, counted } => {
                write!(f, "member_count is {stored}, it has {counted} members")
            }
            Problem::ChangeCursor {
                message,
                change_id,
                last_change,
            } => write!(
                f,
                "message {message} has change cursor {change_id}, beyond last_change {last_change}"
            ),
            Problem::ReadMarker {
                user,
                marker,
                last_seq,
            } => write!(
                f,
                "user {user}'s read marker {marker} is beyond the newest message {last_seq}"
            ),
            Problem::Mentions {
                user,
                stored,
                counted,
            } => write!(
                f,
                "user {user} has {stored} unread mentions, history says {counted}"
            ),
            Problem::Thread {
                root,
                stored,
                counted,
            } => write!(
                f,
                "thread {root} says {} replies (newest {}), history says {} (newest {})",
                stored.0, stored.1, counted.0, counted.1
            ),
        }
    }
}

/// Recounts every room's counters from its history and compares. Reads only; a store being
/// written meanwhile may show differences that are only the writes in between.
pub async fn check(store: &dyn Store) -> StoreResult<Report> {
    run(store, false).await
}

/// [`check`], then sets each room's counters that differ to their recount, brings read
/// markers beyond the newest message back to it, and replaces the unread mentions of a room
/// whose mention counts differ with the recount.
pub async fn repair(store: &dyn Store) -> StoreResult<Report> {
    run(store, true).await
}

async fn run(store: &dyn Store, repair: bool) -> StoreResult<Report> {
    let mut report = Report::default();
    let mut after = None;
    loop {
        let rooms = store.list_rooms(after, PAGE).await?;
        let Some(last) = rooms.last() else {
            return Ok(report);
        };
        after = Some(last.id);
        for room in &rooms {
            let listed = report.findings.len();
            let repairs = check_room(store, room, &mut report).await?;
            if repair && repairs.any() {
                let done = repair_room(store, room, repairs).await?;
                report.repaired += u64::from(done.counters || done.mentions || done.threads);
                for finding in &mut report.findings[listed..] {
                    finding.repaired = match finding.problem {
                        Problem::Mentions { .. } => done.mentions,
                        Problem::Thread { .. } => done.threads,
                        ref problem => problem.is_counter() && done.counters,
                    };
                }
            }
        }
    }
}

/// What a room needs written: its counters as recounted, its unread mentions as recounted,
/// the thread summaries that differ from their recount.
struct Repairs {
    counters: Option<RoomCounters>,
    mentions: Option<Vec<Mention>>,
    threads: Vec<(MessageId, Option<ThreadSummary>)>,
}

impl Repairs {
    fn any(&self) -> bool {
        self.counters.is_some() || self.mentions.is_some() || !self.threads.is_empty()
    }
}

/// Which of a room's [`Repairs`] were written.
struct Done {
    counters: bool,
    mentions: bool,
    threads: bool,
}

/// Writes `repairs`: the counters first, then the mentions, then the thread summaries, each
/// only if the room was not written since it was counted.
async fn repair_room(store: &dyn Store, room: &Room, repairs: Repairs) -> StoreResult<Done> {
    let mut seen = SeenCounters::of(room);
    let mut done = Done {
        counters: false,
        mentions: false,
        threads: false,
    };
    if let Some(fixed) = repairs.counters {
        done.counters = store.repair_counters(seen, fixed).await?;
        if !done.counters {
            return Ok(done);
        }
        seen.counters = fixed;
    }
    if let Some(unread) = &repairs.mentions {
        done.mentions = store.replace_unread_mentions(seen, unread).await?;
    }
    done.threads = true;
    for (root, summary) in &repairs.threads {
        let written = store.repair_thread(seen, *root, summary.as_ref());
        if !written.await? {
            done.threads = false;
            break;
        }
    }
    Ok(done)
}

/// What one room's history says, counted as its messages go by.
#[derive(Default)]
struct Recount {
    last_seq: u64,
    /// Mentions after their member's read marker (`markers` holds the members).
    unread_mentions: Vec<Mention>,
    /// Per thread root, the summary its replies make.
    threads: HashMap<MessageId, ThreadSummary>,
    /// The summaries the roots carry.
    summaries: HashMap<MessageId, ThreadSummary>,
}

impl Recount {
    fn message(&mut self, message: &Message, markers: &HashMap<UserId, u64>) {
        self.last_seq = message.seq;
        if let Some(summary) = &message.thread {
            self.summaries.insert(message.id, summary.clone());
        }
        if let Some(root) = message.thread_root {
            let summary = ThreadSummary::counting(self.threads.remove(&root), message);
            self.threads.insert(root, summary);
        }
        if message.is_deleted() {
            return;
        }
        let mut mention = |user: UserId| {
            let unread = markers
                .get(&user)
                .is_some_and(|marker| message.seq > *marker);
            if unread && user != message.sender {
                let (seq, message) = (message.seq, message.id);
                self.unread_mentions.push(Mention { user, seq, message });
            }
        };
        if message.mentions_room {
            markers.keys().copied().for_each(&mut mention);
        } else {
            message.mentions.iter().copied().for_each(mention);
        }
    }
}

/// Checks one room; returns what a repair would write: its counters as recounted when they,
/// or read markers, differ, and its unread mentions when a count differs.
async fn check_room(store: &dyn Store, room: &Room, report: &mut Report) -> StoreResult<Repairs> {
    report.rooms += 1;
    let found = |report: &mut Report, problem| report.found(room.id, problem);
    // Members first: the mention recount needs every marker.
    let mut markers = HashMap::new();
    let mut query = MemberQuery {
        after: None,
        limit: PAGE,
    };
    loop {
        let page = store.members(room.id, &query).await?;
        let Some(last) = page.last() else { break };
        query.after = Some(MemberCursor::of(last));
        for member in &page {
            markers.insert(member.user_id, member.last_read_seq);
        }
    }
    report.members += markers.len() as u64;
    let member_count = u32::try_from(markers.len()).unwrap_or(u32::MAX);
    if room.member_count != member_count {
        let (stored, counted) = (room.member_count.into(), member_count.into());
        found(report, Problem::MemberCount { stored, counted });
    }

    let mut recount = Recount::default();
    let mut last_change = room.last_change;
    loop {
        let range = SeqRange {
            before: None,
            after: Some(recount.last_seq),
            limit: PAGE,
        };
        let page = store.messages(room.id, range).await?;
        if page.is_empty() {
            break;
        }
        for message in &page {
            report.messages += 1;
            if message.seq != recount.last_seq + 1 {
                let (after, next) = (recount.last_seq, message.seq);
                found(report, Problem::Gap { after, next });
            }
            if message.change_id > room.last_change {
                let problem = Problem::ChangeCursor {
                    message: message.id,
                    change_id: message.change_id,
                    last_change: room.last_change,
                };
                found(report, problem);
            }
            last_change = last_change.max(message.change_id);
            recount.message(message, &markers);
        }
    }
    if room.last_seq != recount.last_seq {
        let (stored, counted) = (room.last_seq, recount.last_seq);
        found(report, Problem::LastSeq { stored, counted });
    }

    let mut markers_beyond = 0;
    let mut mentions_differ = false;
    let mut unread_mentions: HashMap<UserId, u64> = HashMap::new();
    for mention in &recount.unread_mentions {
        *unread_mentions.entry(mention.user).or_default() += 1;
    }
    let mut members: Vec<(UserId, u64)> = markers.into_iter().collect();
    members.sort();
    for (user, marker) in members {
        if marker > recount.last_seq {
            markers_beyond += 1;
            let last_seq = recount.last_seq;
            found(
                report,
                Problem::ReadMarker {
                    user,
                    marker,
                    last_seq,
                },
            );
        }
        let counts = store.unread_counts(user, Some(room.id)).await?;
        let stored = counts.iter().map(|c| c.mentions).sum::<u64>();
        let counted = unread_mentions.get(&user).copied().unwrap_or(0);
        if stored != counted {
            mentions_differ = true;
            found(
                report,
                Problem::Mentions {
                    user,
                    stored,
                    counted,
                },
            );
        }
    }

    let mut roots: Vec<MessageId> = recount.threads.keys().copied().collect();
    roots.extend(recount.summaries.keys().copied());
    roots.sort();
    roots.dedup();
    let mut threads = Vec::new();
    for root in roots {
        let (stored, counted) = (recount.summaries.get(&root), recount.threads.remove(&root));
        if stored != counted.as_ref() {
            let numbers =
                |s: Option<&ThreadSummary>| s.map_or((0, 0), |s| (s.reply_count, s.last_reply_seq));
            let (stored, numbers_counted) = (numbers(stored), numbers(counted.as_ref()));
            found(
                report,
                Problem::Thread {
                    root,
                    stored,
                    counted: numbers_counted,
                },
            );
            threads.push((root, counted));
        }
    }
    let fixed = RoomCounters {
        last_seq: recount.last_seq,
        last_change,
        member_count,
    };
    let counters_differ = fixed != RoomCounters::of(room) || markers_beyond > 0;
    Ok(Repairs {
        counters: counters_differ.then_some(fixed),
        mentions: mentions_differ.then_some(recount.unread_mentions),
        threads,
    })
}

impl Problem {
    /// Whether [`RoomStore::repair_counters`](crate::store::RoomStore::repair_counters) fixes it.
    fn is_counter(&self) -> bool {
        matches!(
            self,
            Self::LastSeq { .. }
                | Self::MemberCount { .. }
                | Self::ChangeCursor { .. }
                | Self::ReadMarker { .. }
        )
    }
}
