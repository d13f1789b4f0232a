//! The storage conformance suite: the behaviour every store must have, specified once; and in
//! [`bus`], the same for event buses.
//!
//! Each case in [`cases`] is a public async function that gets a [`Harness`], opens fresh
//! stores through it and asserts on results and error variants. Most cases drive a [`Chat`]
//! over the store under test, so the domain rules are checked on every backend; the `store_*`
//! cases check the storage contract directly. [`model`] compares random operation sequences
//! against [`MemoryStore`].
//!
//! A store crate runs the whole suite, one named test per case, with
//! [`store_conformance_tests!`](crate::store_conformance_tests):
//!
//! ```text
//! // tests/conformance.rs of a store crate
//! chat_core::store_conformance_tests!(|| async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).await.unwrap();
//!     (std::sync::Arc::new(store) as _, Box::new(dir) as chat_core::testing::Guard)
//! });
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod bus;
pub mod cases;
pub mod crash;
pub mod fixture;
mod follower;
pub mod model;
pub mod slow_link;

use std::any::Any;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::clock::ManualClock;
use crate::config::{ChatConfig, HashCost};
use crate::events::{EventBus, InProcessBus};
use crate::ids::{IdSource, SequentialIds};
use crate::store::{MemoryStore, Store};
use crate::{Chat, ChatBuilder, NewRoom, NewUser, Room, User};

/// Whatever must live as long as a store (a temporary directory, a server handle…).
pub type Guard = Box<dyn Any + Send>;

/// Opens a fresh, empty store for each case.
#[async_trait]
pub trait StoreOpener: Send + Sync + 'static {
    /// A new empty store and the guard that keeps it alive.
    async fn open(&self) -> (Arc<dyn Store>, Guard);
}

#[async_trait]
impl<F, Fut> StoreOpener for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Arc<dyn Store>, Guard)> + Send,
{
    async fn open(&self) -> (Arc<dyn Store>, Guard) {
        self().await
    }
}

/// Opens a [`MemoryStore`]: the opener of `chat-core`'s own run of the suite.
pub async fn memory_store() -> (Arc<dyn Store>, Guard) {
    (Arc::new(MemoryStore::new()), Box::new(()))
}

/// What every case gets: a way to open fresh stores of the backend under test.
#[derive(Clone)]
pub struct Harness {
    opener: Arc<dyn StoreOpener>,
}

/// The time every test clock starts at.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// A user record with a new id, as a store test writes it directly.
pub fn sample_user(name: &str) -> User {
    User {
        id: crate::UserId(uuid::Uuid::now_v7()),
        username: name.into(),
        email: None,
        display_name: name.into(),
        profile: Default::default(),
        status: Default::default(),
        status_message: None,
        is_admin: false,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

/// Asserts that opening a store was refused as [`OpenError::Incompatible`](crate::OpenError),
/// with a reason that mentions `why`: what every store's own tests check of a file or database
/// that is not its own.
pub fn assert_incompatible<S>(opened: Result<S, crate::OpenError>, why: &str) {
    match opened {
        Err(crate::OpenError::Incompatible(message)) => {
            assert!(message.contains(why), "{message}")
        }
        Err(other) => panic!("expected Incompatible({why}), got {other:?}"),
        Ok(_) => panic!("expected Incompatible({why}), the store opened"),
    }
}

/// The configuration of test engines: defaults but for a cheap password hash.
pub fn test_config() -> ChatConfig {
    ChatConfig::default().with_password_hashing(HashCost::insecure_fast())
}

impl Harness {
    /// A harness over a store opener.
    pub fn new(opener: impl StoreOpener) -> Self {
        Self {
            opener: Arc::new(opener),
        }
    }

    /// A fresh store of the backend under test.
    pub async fn store(&self) -> (Arc<dyn Store>, Guard) {
        self.opener.open().await
    }

    /// A [`Chat`] over a fresh store, with a manual clock, sequential ids and cheap hashing.
    pub async fn chat(&self) -> TestChat {
        self.chat_with(|builder| builder).await
    }

    /// Like [`Harness::chat`], with more settings applied to the builder.
    ///
    /// `configure` also applies to the engine's [peers](TestChat::peer).
    pub async fn chat_with(
        &self,
        configure: impl Fn(ChatBuilder) -> ChatBuilder + Send + Sync + 'static,
    ) -> TestChat {
        let (store, guard) = self.store().await;
        let clock = Arc::new(ManualClock::new(epoch()));
        let ids = Arc::new(SequentialIds::new());
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
        let configure: Configure = Arc::new(configure);
        let chat = build(&store, &clock, &ids, &bus, &configure);
        TestChat {
            chat: Arc::new(chat),
            clock,
            store,
            ids,
            bus,
            configure,
            _guard: guard,
        }
    }
}

type Configure = Arc<dyn Fn(ChatBuilder) -> ChatBuilder + Send + Sync>;

/// A test engine with its clock and store; derefs to [`Chat`].
pub struct TestChat {
    /// The engine, shareable with spawned tasks.
    pub chat: Arc<Chat>,
    /// Its clock, to move time.
    pub clock: Arc<ManualClock>,
    /// The store under test.
    pub store: Arc<dyn Store>,
    ids: Arc<SequentialIds>,
    bus: Arc<dyn EventBus>,
    configure: Configure,
    _guard: Guard,
}

impl Deref for TestChat {
    type Target = Chat;
    fn deref(&self) -> &Chat {
        &self.chat
    }
}

/// A test engine: the test configuration, then `configure` (which may replace the bus).
fn build(
    store: &Arc<dyn Store>,
    clock: &Arc<ManualClock>,
    ids: &Arc<SequentialIds>,
    bus: &Arc<dyn EventBus>,
    configure: &Configure,
) -> Chat {
    let builder = Chat::builder(Arc::clone(store))
        .config(test_config())
        .clock(clock.clone())
        .ids(ids.clone() as Arc<dyn IdSource>)
        .bus(Arc::clone(bus));
    configure(builder).build().expect("test engine builds")
}

impl TestChat {
    /// Another engine on the same store, bus, clock and ids, as a second process would be: what
    /// one engine does, the other must see exactly as if it had done it.
    pub fn peer(&self) -> Arc<Chat> {
        Arc::new(build(
            &self.store,
            &self.clock,
            &self.ids,
            &self.bus,
            &self.configure,
        ))
    }

    /// A new user without password.
    pub async fn new_user(&self, name: &str) -> User {
        self.chat
            .create_user(NewUser::named(name))
            .await
            .expect("create user")
    }

    /// A new public room owned by `owner`.
    pub async fn new_room(&self, owner: &User, name: &str) -> Room {
        self.chat
            .create_room(owner.id, NewRoom::named(name))
            .await
            .expect("create room")
    }
}

/// Runs one async case (of either suite) on a two-thread runtime, so that race cases really
/// race.
pub fn run<H, Fut>(harness: H, case: fn(H) -> Fut)
where
    Fut: Future<Output = ()>,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(case(harness));
}

/// Says on stderr that a test did not run and why. Written to the stream itself rather than
/// with `eprintln!`, which the test harness captures and hides for a test that passes.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Expands to one `#[test]` per conformance case (and the model test), each on stores from the
/// given opener: an expression implementing [`StoreOpener`], typically
/// `|| async { (Arc::new(store) as Arc<dyn Store>, Box::new(guard) as Guard) }`.
///
/// A store that needs a service names, after `skip_when =`, a `fn() -> Option<String>` that
/// says why the service cannot be used here; each case then prints `SKIPPED <case>: <why>` and
/// passes. Make it fail instead where the service must be there (in CI).
#[macro_export]
macro_rules! store_conformance_tests {
    ($opener:expr) => {
        $crate::store_conformance_tests!($opener, skip_when = || None::<String>);
    };
    ($opener:expr, skip_when = $skip:expr) => {
        $crate::__conformance_cases!($opener; $skip;
            // users
            users_are_created_and_found_by_name_and_email,
            usernames_are_unique_case_insensitively,
            emails_are_unique,
            email_changes_are_limited_like_logins,
            invalid_user_input_is_rejected,
            directory_lists_public_entries_with_search_and_cursor,
            only_admins_list_and_manage_users,
            users_update_profile_and_status,
            deleting_a_user_hands_on_rooms_and_ends_logins,
            deleted_users_can_do_nothing,
            unknown_actor_is_unauthenticated,
            // auth
            register_and_login_by_username_or_email,
            login_does_not_reveal_unknown_users,
            weak_passwords_are_rejected,
            access_tokens_expire,
            logout_revokes_at_once,
            refresh_rotates_and_reuse_revokes_the_login,
            password_change_ends_every_login,
            passwordless_users_cannot_log_in,
            refresh_tokens_do_not_authenticate,
            // rooms
            rooms_are_created_with_owner_membership,
            room_input_is_validated,
            room_aliases_are_unique_and_join_links_work,
            public_rooms_are_listed_private_are_not,
            searches_fold_case_beyond_ascii,
            private_rooms_are_joined_only_by_being_added,
            room_password_is_checked,
            capacity_is_enforced,
            only_managers_edit_and_only_the_owner_deletes,
            managers_add_and_remove_members,
            members_are_paged_in_joining_order,
            adding_others_to_rooms_is_limited_per_user,
            admins_cannot_remove_the_owner_or_other_admins,
            owner_leaving_hands_on_ownership,
            last_member_leaving_deletes_the_room,
            rooms_of_user_lists_memberships,
            owner_changes_roles_and_transfers_ownership,
            handles_act_as_their_user,
            // direct conversations
            direct_conversation_is_created_once_per_pair,
            direct_conversations_cannot_be_joined_left_or_managed,
            direct_conversations_list_other_user_last_message_and_unread,
            messages_to_me_lists_direct_messages_from_others,
            direct_message_to_self_or_unknown_user_is_rejected,
            a_direct_conversation_deleted_in_the_store_starts_afresh,
            // messages
            messages_get_gapless_sequence_numbers,
            reactions_are_members_own_and_on_every_message_returned,
            threads_and_mentions_through_the_engine,
            // search
            search_matches_words_across_case_accents_and_scripts,
            search_finds_current_text_in_current_rooms_newest_first,
            search_still_finds_the_neighbours_of_an_edited_or_deleted_message,
            message_input_is_validated,
            invisible_text_is_refused,
            non_members_cannot_read_or_post,
            posting_to_an_open_room_joins_implicitly,
            txn_id_makes_send_idempotent,
            txn_id_reused_with_other_content_conflicts,
            transaction_ids_are_the_senders_alone,
            replies_must_be_in_the_same_room,
            only_the_sender_edits,
            sender_or_managers_delete_leaving_a_tombstone,
            history_pages_before_and_after,
            history_limit_is_validated,
            changes_include_edits_and_deletes_in_order,
            metadata_round_trips,
            // read state
            unread_counts_messages_from_others_after_the_marker,
            read_marker_only_moves_forward,
            mark_read_beyond_the_newest_message_is_invalid,
            unread_summary_spans_all_rooms,
            unread_messages_span_all_rooms,
            // events
            subscribers_get_only_their_rooms_events,
            joining_and_leaving_update_the_feed,
            state_changes_publish_events,
            presence_is_announced_in_small_rooms,
            lagging_subscriber_gets_resync,
            // races
            concurrent_sends_are_gapless_and_ordered,
            two_joins_for_the_last_seat,
            concurrent_first_direct_messages_share_one_conversation,
            concurrent_sends_with_one_txn_id_store_one_message,
            concurrent_refreshes_rotate_once,
            concurrent_sends_are_published_in_sequence_order,
            members_leaving_at_once_keep_the_room_whole,
            // several engines on one store, as several processes
            engines_deliver_every_message_once_in_order,
            an_append_through_the_store_does_not_stall_the_room,
            one_missing_message_behind_many_held_is_read_not_skipped,
            removal_during_a_lag_silences_the_room,
            joining_during_a_lag_delivers_the_room,
            ending_a_login_ends_its_feeds_on_every_engine,
            a_cached_token_ends_with_its_login_on_every_engine,
            tickets_work_once_on_any_engine_and_die_with_their_login,
            failed_logins_share_one_budget_on_every_engine,
            concurrent_wrong_passwords_cannot_exceed_the_budget,
            online_is_seen_from_every_engine_and_expires,
            room_password_guesses_are_limited_on_every_engine,
            // the storage contract itself
            store_append_assigns_sequence_and_change_cursors,
            store_append_admits_only_members_and_replies_within_the_room,
            store_appends_arriving_together_are_each_judged_alone,
            store_reactions_are_one_per_member_key_and_message,
            store_concurrent_reactions_count_exactly,
            store_thread_replies_are_counted_on_their_root,
            store_threads_are_listed_by_activity_with_followers_unread,
            store_concurrent_replies_keep_the_thread_count_exact,
            store_mentions_count_for_members_until_read,
            store_add_member_checks_capacity_and_duplicates,
            store_read_marker_is_monotonic,
            store_unique_keys_map_to_conflicts,
            store_missing_records_map_to_not_found,
            store_delete_room_removes_members_and_messages,
            store_remove_member_hands_on_ownership_and_deletes_the_empty_room,
            store_values_round_trip_exactly,
            store_tombstones_are_neither_edited_nor_deleted_again,
            store_room_counters_are_the_stores_own,
            store_reads_of_unknown_rooms_are_empty,
            store_rotation_detects_reuse,
            store_room_with_member_reads_both_at_once,
            store_tickets_are_taken_once_and_die_with_their_login,
            store_concurrent_ticket_takes_succeed_once,
            store_attempts_are_counted_in_windows,
            store_concurrent_attempts_cannot_exceed_the_budget,
            store_connections_count_until_they_expire,
            // the counter check
            store_lists_every_room_by_id,
            a_chat_with_every_kind_of_data_checks_clean,
            store_repair_counters_sets_them_only_if_unchanged,
            store_replace_unread_mentions_keeps_those_read,
            store_repair_thread_sets_a_summary_only_if_unchanged,
            // export and import
            export_writes_every_record_in_order,
            import_reads_back_what_was_exported,
            import_names_the_bad_line_and_finishes_what_was_cut_short,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($opener:expr; $skip:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(why) = ($skip)() {
                    $crate::testing::skipped(stringify!($case), &why);
                    return;
                }
                $crate::testing::run(
                    $crate::testing::Harness::new($opener),
                    $crate::testing::cases::$case,
                );
            }
        )*

        #[test]
        fn model_matches_memory_store() {
            if let Some(why) = ($skip)() {
                $crate::testing::skipped("model_matches_memory_store", &why);
                return;
            }
            $crate::testing::model::check($crate::testing::Harness::new($opener));
        }
    };
}
