//! `chat-server`: the reference chat server on an embedded SQLite file (or sled, or memory), or
//! on PostgreSQL, where any number of them serve one chat.
//!
//! ```text
//! cargo run --release -p chat-http --bin chat-server                 # sqlite://chat.db, :8080
//! cargo run --release -p chat-http --bin chat-server -- --demo       # with sample users
//! cargo run --release -p chat-http --bin chat-server -- --database postgres://chat@db/chat
//! cargo run --release -p chat-http --bin chat-server -- create-admin --username root
//! ```
//!
//! Every flag also reads a `CHAT_*` environment variable (see `--help`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_core::events::EventBus;
use chat_core::store::{Location, MemoryStore, Store};
use chat_core::{
    Chat, ChatConfig, Conflict, Error, NewMessage, NewRoom, NewUser, Role, Visibility,
};
use chat_http::{ChatHttp, ConnectionLimits, Limits};
use chat_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "chat-server",
    version,
    about = "A chat server: REST, WebSocket, OpenAPI."
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Where data lives: `sqlite://FILE` (or a file path), `sled://DIR`, `memory`, or
    /// `postgres://USER@HOST:PORT/DB` (several servers may share one).
    #[arg(long, env = "CHAT_DATABASE", default_value = "sqlite://chat.db")]
    database: String,
    /// PostgreSQL: the most connections this server opens.
    #[arg(long, env = "CHAT_POOL_SIZE", default_value_t = 16)]
    pool_size: u32,
    /// PostgreSQL: a schema for the chat's tables (created when missing) instead of `public`.
    #[arg(long, env = "CHAT_POSTGRES_SCHEMA")]
    postgres_schema: Option<String>,
    /// How live events reach the other servers on the database: `store` follows the store
    /// (LISTEN/NOTIFY on PostgreSQL; within this process otherwise), `nats://HOST:PORT` goes
    /// through a NATS server, `local` keeps them in this process.
    #[arg(long, env = "CHAT_BUS", default_value = "store", value_parser = BusArg::parse)]
    bus: BusArg,
    /// SQLite durability: `full` (nothing acknowledged is ever lost) or `normal` (survives
    /// process crashes; a power loss may lose the last commits).
    #[arg(long, env = "CHAT_DURABILITY", value_enum, default_value = "full")]
    durability: DurabilityArg,
    /// Seed sample users and rooms and print their passwords.
    #[arg(long, env = "CHAT_DEMO")]
    demo: bool,
    /// Largest request body in bytes.
    #[arg(long, env = "CHAT_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Login and register attempts per IP per minute (0: no limit).
    #[arg(long, env = "CHAT_AUTH_PER_MINUTE", default_value_t = 20)]
    auth_per_minute: u32,
    /// Failed logins per account before it is locked for `--lockout-secs` (0: no limit).
    #[arg(long, env = "CHAT_FAILED_LOGINS", default_value_t = 5)]
    failed_logins: u32,
    /// How long an account stays locked after too many failed logins, in seconds.
    #[arg(long, env = "CHAT_LOCKOUT_SECS", default_value_t = 300)]
    lockout_secs: u64,
    /// Password hashes computed at once, each holding 19 MiB (default: the number of cores).
    #[arg(long, env = "CHAT_MAX_CONCURRENT_HASHES")]
    max_concurrent_hashes: Option<usize>,
    /// Requests that may wait for a hashing slot; beyond them, 429 at once.
    #[arg(long, env = "CHAT_MAX_QUEUED_HASHES", default_value_t = 32)]
    max_queued_hashes: usize,
    /// Other users one user may add to rooms per minute (0: no limit).
    #[arg(long, env = "CHAT_MEMBER_ADDS_PER_MINUTE", default_value_t = 60)]
    member_adds_per_minute: u32,
    /// Messages per second per user (0: no limit).
    #[arg(long, env = "CHAT_SENDS_PER_SECOND", default_value_t = 20)]
    sends_per_second: u32,
    /// Burst of messages per user above the steady rate.
    #[arg(long, env = "CHAT_SEND_BURST", default_value_t = 50)]
    send_burst: u32,
    /// Connections open at once; beyond it new ones are closed at once.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a request's headers may take to arrive, and a keep-alive connection may idle.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    header_timeout_secs: u64,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "CHAT_LOG", default_value = "info,tower_http=warn")]
    log: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BusArg {
    Store,
    Local,
    /// A NATS server's URL.
    Nats(String),
}

impl BusArg {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "store" => Ok(Self::Store),
            "local" => Ok(Self::Local),
            url if url.starts_with("nats://") => Ok(Self::Nats(url.to_owned())),
            other => Err(format!("{other}: not `store`, `local` nor a nats:// URL")),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Full,
    Normal,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an admin user in the database, then exit.
    CreateAdmin {
        /// The admin's username.
        #[arg(long, env = "CHAT_ADMIN_USERNAME")]
        username: String,
        /// The admin's password.
        #[arg(long, env = "CHAT_ADMIN_PASSWORD")]
        password: String,
        /// The admin's email.
        #[arg(long, env = "CHAT_ADMIN_EMAIL")]
        email: Option<String>,
    },
    /// Write the whole chat as JSON Lines (users with password hashes, rooms, members,
    /// messages, reactions, thread markers; no logins), then exit. Progress goes to stderr.
    Export {
        /// The file to write (created, or replaced); standard output without it.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Read a chat written by `export` into this database, which must be empty, keeping every
    /// id, then exit. Progress goes to stderr. An import that stopped half-way is finished by
    /// running it again with the same file.
    Import {
        /// The export to read.
        file: std::path::PathBuf,
    },
    /// Recount every room's counters from its history and list what differs, then exit:
    /// non-zero when something differs (with `--repair`: when something is left unrepaired).
    /// Best run while no server writes to the database.
    Check {
        /// Set the room counters, unread mentions and thread summaries that differ to their
        /// recount (and read markers beyond the newest message back to it).
        #[arg(long)]
        repair: bool,
    },
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .init();
    if let Err(error) = run(cli).await {
        tracing::error!(
            error = &*error as &dyn std::error::Error,
            "chat-server failed"
        );
        eprintln!("chat-server: {error}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let (store, bus) = open_store(&cli).await?;
    match &cli.command {
        Some(Command::Check { repair }) => return check(&*store, *repair).await,
        Some(Command::Export { output }) => {
            return export(&*store, &cli.database, output.as_deref()).await;
        }
        Some(Command::Import { file }) => return import(&*store, file).await,
        _ => {}
    }
    if store.import_mark().await?.is_some() {
        return Err(
            "an import into this database has not finished: run `chat-server import` \
                    again with the same file"
                .into(),
        );
    }
    let defaults = ChatConfig::default();
    let config = ChatConfig::default()
        .with_failed_logins_allowed(cli.failed_logins)
        .with_failed_login_window(Duration::from_secs(cli.lockout_secs))
        .with_max_concurrent_hashes(
            cli.max_concurrent_hashes
                .unwrap_or(defaults.max_concurrent_hashes),
        )
        .with_max_queued_hashes(cli.max_queued_hashes)
        .with_member_adds_allowed(cli.member_adds_per_minute)
        .with_member_add_window(Duration::from_secs(60));
    let mut builder = Chat::builder(store).config(config);
    if let Some(bus) = bus {
        builder = builder.bus(bus);
    }
    let chat = Arc::new(builder.build()?);
    if let Some(Command::CreateAdmin {
        username,
        password,
        email,
    }) = &cli.command
    {
        let new = NewUser {
            email: email.clone(),
            ..NewUser::named(username)
        };
        let admin = chat.create_admin(new, Some(password)).await?;
        println!("created admin {} ({})", admin.username, admin.id);
        return Ok(());
    }
    if cli.demo {
        seed_demo(&chat).await?;
    }
    let mut limits = Limits::default();
    limits.max_body_bytes = cli.max_body_bytes;
    limits.auth_attempts_per_ip = cli.auth_per_minute;
    limits.sends_per_second_per_user = cli.sends_per_second;
    limits.send_burst = cli.send_burst;
    let purger = Arc::clone(&chat);
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(60 * 60));
        loop {
            hourly.tick().await;
            match purger.purge_expired().await {
                Ok(purged) => {
                    tracing::debug!(purged, "expired tokens, lockouts and connections deleted")
                }
                Err(error) => tracing::warn!(%error, "purging expired records failed"),
            }
        }
    });
    let app = ChatHttp::new(chat)
        .limits(limits)
        .router()
        .merge(chat_http::web_client());
    let listener = tokio::net::TcpListener::bind(cli.bind).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, database = %cli.database, "listening");
    println!(
        "chat-server listening on http://{address} (chat: http://{address}/, API docs: http://{address}/api/v1/docs)"
    );
    let connections = ConnectionLimits::default()
        .with_max_connections(connection_cap(cli.max_connections))
        .with_header_read_timeout(Duration::from_secs(cli.header_timeout_secs));
    chat_http::serve(listener, app, connections, shutdown()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The store, and the bus that follows it when events must leave this process.
/// `chat-server export`: the records to `output` (or stdout); on stderr a progress bar when
/// it is a terminal (a line per 100 000 messages otherwise), and the totals at the end.
async fn export(
    store: &dyn Store,
    database: &str,
    output: Option<&std::path::Path>,
) -> Result<(), Failure> {
    let mut out: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(&mut out);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Sequence numbers are gapless, so the rooms' last numbers add up to the messages.
    let mut expected = 0;
    let mut after = None;
    loop {
        let rooms = store.list_rooms(after, 1000).await?;
        let Some(last) = rooms.last() else { break };
        after = Some(last.id);
        expected += rooms.iter().map(|room| room.last_seq).sum::<u64>();
    }
    let mut reported = 0;
    let progress = |totals: &chat_core::export::Totals| {
        if terminal {
            eprint!("\r{}", progress_bar(totals.messages, expected, "messages"));
        } else if totals.messages >= reported + 100_000 {
            reported = totals.messages;
            eprintln!(
                "exported {} messages of {} rooms",
                totals.messages, totals.rooms
            );
        }
    };
    let source = without_credentials(database);
    let totals =
        chat_core::export::export(store, &source, chrono::Utc::now(), &mut out, progress).await?;
    if terminal {
        eprintln!();
    }
    eprintln!("exported {totals}");
    Ok(())
}

/// `chat-server import`: the file into the store; on stderr a progress bar over the file's
/// bytes when it is a terminal (a line per 100 000 messages otherwise), and the totals.
async fn import(store: &dyn Store, file: &std::path::Path) -> Result<(), Failure> {
    let opened = std::fs::File::open(file)
        .map_err(|error| format!("cannot open {}: {error}", file.display()))?;
    let size = opened.metadata()?.len();
    let read = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: opened,
        read: Arc::clone(&read),
    };
    let mut input = std::io::BufReader::with_capacity(1 << 20, counted);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut reported = 0;
    let progress = |totals: &chat_core::export::Totals| {
        if terminal {
            let mib = |bytes: u64| bytes >> 20;
            let bar = progress_bar(mib(read.load(Ordering::Relaxed)), mib(size), "MiB");
            eprint!("\r{bar}");
        } else if totals.messages >= reported + 100_000 {
            reported = totals.messages;
            eprintln!(
                "imported {} messages of {} rooms",
                totals.messages, totals.rooms
            );
        }
    };
    let totals = chat_core::import::import(store, &mut input, progress).await;
    if terminal {
        eprintln!();
    }
    let totals = totals?;
    eprintln!("imported {totals}");
    Ok(())
}

/// A reader that counts the bytes read through it (how far into the file an import is).
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `[#####     ]  50 % (500 of 1000 messages)`: how far an export or import is. More than
/// expected (messages written meanwhile) shows full, never beyond.
fn progress_bar(done: u64, expected: u64, unit: &str) -> String {
    const WIDTH: u64 = 30;
    let total = expected.max(done);
    let share = |of: u64| {
        done.checked_mul(of)
            .and_then(|n| n.checked_div(total))
            .unwrap_or(of)
    };
    let filled = usize::try_from(share(WIDTH)).unwrap_or(0);
    let empty = 30 - filled.min(30);
    format!(
        "[{}{}] {:3} % ({done} of {total} {unit})",
        "#".repeat(filled),
        " ".repeat(empty),
        share(100)
    )
}

/// A database URL without its user and password (in the authority, before the path), to name
/// it in an export.
fn without_credentials(database: &str) -> String {
    let Some((scheme, rest)) = database.split_once("://") else {
        return database.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => database.to_owned(),
    }
}

/// `chat-server check`: every finding on a line of its own, then the totals.
async fn check(store: &dyn Store, repair: bool) -> Result<(), Failure> {
    let report = if repair {
        chat_core::check::repair(store).await?
    } else {
        chat_core::check::check(store).await?
    };
    for finding in &report.findings {
        println!("{finding}");
    }
    if report.unlisted > 0 {
        println!("… and {} more differences", report.unlisted);
    }
    println!(
        "checked {} rooms, {} members, {} messages: {} differences, {} rooms repaired",
        report.rooms,
        report.members,
        report.messages,
        report.findings.len() as u64 + report.unlisted,
        report.repaired
    );
    let settled = if repair {
        report.is_repaired()
    } else {
        report.is_clean()
    };
    if settled {
        Ok(())
    } else if repair {
        Err("differences are left that --repair does not fix".into())
    } else {
        Err("counters differ from the history (`check --repair` sets room counters right)".into())
    }
}

async fn open_store(cli: &Cli) -> Result<(Arc<dyn Store>, Option<Arc<dyn EventBus>>), Failure> {
    let database = cli.database.as_str();
    let store: Arc<dyn Store> = match database.parse::<Location>()? {
        Location::Memory => Arc::new(MemoryStore::new()),
        Location::Sqlite(path) => {
            let options = SqliteOptions::at(path).durability(match cli.durability {
                DurabilityArg::Full => Durability::Full,
                DurabilityArg::Normal => Durability::Normal,
            });
            Arc::new(SqliteStore::open_with(options).await?)
        }
        Location::Sled(_) => open_sled(database).await?,
        Location::Postgres(_) => return open_postgres(cli).await,
        _ => return Err(format!("{database}: this chat-server has no store for it").into()),
    };
    match &cli.bus {
        BusArg::Nats(url) => Ok((store, Some(open_nats(cli, url).await?))),
        BusArg::Store | BusArg::Local => Ok((store, None)),
    }
}

/// The NATS bus; a PostgreSQL schema of its own is a chat of its own, on a subject of its own.
#[cfg(feature = "nats")]
async fn open_nats(cli: &Cli, url: &str) -> Result<Arc<dyn EventBus>, Failure> {
    use chat_bus_nats::{DEFAULT_SUBJECT, NatsBus};
    let subject = match &cli.postgres_schema {
        Some(schema) => format!("{DEFAULT_SUBJECT}.{schema}"),
        None => DEFAULT_SUBJECT.to_owned(),
    };
    let bus = NatsBus::connect(url, &subject)
        .await
        .map_err(|error| format!("cannot reach the NATS server at {url}: {error}"))?;
    Ok(Arc::new(bus))
}

#[cfg(not(feature = "nats"))]
async fn open_nats(_: &Cli, _: &str) -> Result<Arc<dyn EventBus>, Failure> {
    Err("this chat-server was built without the `nats` feature".into())
}

#[cfg(feature = "sled")]
async fn open_sled(database: &str) -> Result<Arc<dyn Store>, Failure> {
    Ok(Arc::new(chat_store_sled::SledStore::open(database).await?))
}

#[cfg(not(feature = "sled"))]
async fn open_sled(_: &str) -> Result<Arc<dyn Store>, Failure> {
    Err("this chat-server was built without the `sled` feature".into())
}

#[cfg(feature = "postgres")]
async fn open_postgres(cli: &Cli) -> Result<(Arc<dyn Store>, Option<Arc<dyn EventBus>>), Failure> {
    use chat_store_postgres::{DEFAULT_CHANNEL, PostgresBus, PostgresOptions, PostgresStore};
    let mut options = PostgresOptions::new(&cli.database)?.pool_size(cli.pool_size);
    if let Some(schema) = &cli.postgres_schema {
        options = options.schema(schema);
    }
    let store = PostgresStore::open_with(options).await?;
    let bus: Option<Arc<dyn EventBus>> = match &cli.bus {
        BusArg::Nats(url) => Some(open_nats(cli, url).await?),
        BusArg::Store => {
            // A schema of its own is a chat of its own: its events keep to its channel.
            let channel = match &cli.postgres_schema {
                Some(schema) => format!("{DEFAULT_CHANNEL}_{schema}"),
                None => DEFAULT_CHANNEL.to_owned(),
            };
            Some(Arc::new(
                PostgresBus::connect(store.pool(), &channel).await?,
            ))
        }
        BusArg::Local => None,
    };
    Ok((Arc::new(store), bus))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &Cli) -> Result<(Arc<dyn Store>, Option<Arc<dyn EventBus>>), Failure> {
    Err("this chat-server was built without the `postgres` feature".into())
}

/// Descriptors kept for the store, logs and the listener, beyond the connections.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the open-file limit as far as the system allows and keeps the connection cap below
/// it, so that connections can never take the descriptors the store needs.
fn connection_cap(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let room = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX);
    if wanted > room {
        tracing::warn!(
            wanted,
            limit,
            cap = room,
            "open-file limit too low: fewer connections"
        );
    }
    wanted.min(room).max(1)
}

/// Waits for Ctrl-C or SIGTERM; requests in flight finish, then the server stops.
async fn shutdown() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
    // Give open WebSockets a moment; they close with the process.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Sample users, rooms and messages; skipped when they exist already.
async fn seed_demo(chat: &Chat) -> Result<(), Failure> {
    let people = [
        ("alice", "Alice Liddell", "alice-wonderland"),
        ("bob", "Bob Builder", "bob-can-fix-it"),
        ("carol", "Carol Danvers", "carol-marvel-1"),
    ];
    let mut users = Vec::new();
    for (username, display_name, password) in people {
        let new = NewUser {
            display_name: Some(display_name.into()),
            ..NewUser::named(username)
        };
        match chat.register(new, password).await {
            Ok(user) => users.push(user),
            Err(Error::Conflict(Conflict::UsernameTaken)) => {
                println!("demo data already present (log in as alice / alice-wonderland)");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
    }
    let [alice, bob, carol] = [&users[0], &users[1], &users[2]];
    let general = NewRoom {
        topic: Some("Anything goes".into()),
        alias: Some("general".into()),
        ..NewRoom::named("General")
    };
    let general = chat.create_room(alice.id, general).await?;
    chat.join_room(bob.id, general.id, None).await?;
    chat.join_room(carol.id, general.id, None).await?;
    let staff = NewRoom {
        visibility: Visibility::Private,
        members: vec![bob.id],
        ..NewRoom::named("Staff")
    };
    let staff = chat.create_room(alice.id, staff).await?;
    chat.set_role(alice.id, staff.id, bob.id, Role::Admin)
        .await?;
    let lounge = NewRoom {
        capacity: Some(10),
        password: Some("lounge-pass".into()),
        ..NewRoom::named("Lounge")
    };
    chat.create_room(carol.id, lounge).await?;
    chat.send(
        alice.id,
        general.id,
        NewMessage::text("Welcome to the demo!"),
    )
    .await?;
    chat.send(bob.id, general.id, NewMessage::text("Hi all 👋"))
        .await?;
    chat.send(bob.id, staff.id, NewMessage::text("Staff meeting at 10."))
        .await?;
    chat.send_direct(
        carol.id,
        alice.id,
        NewMessage::text("Hey Alice, got a minute?"),
    )
    .await?;
    println!("demo users (username / password):");
    for (username, _, password) in people {
        println!("  {username} / {password}");
    }
    println!(
        "rooms: General (public, alias 'general'), Staff (private), Lounge (password 'lounge-pass')"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{progress_bar, without_credentials};

    #[test]
    fn the_progress_bar_fills_with_the_messages_exported() {
        assert_eq!(
            progress_bar(0, 1000, "messages"),
            format!("[{}]   0 % (0 of 1000 messages)", " ".repeat(30))
        );
        assert_eq!(
            progress_bar(500, 1000, "messages"),
            format!(
                "[{}{}]  50 % (500 of 1000 messages)",
                "#".repeat(15),
                " ".repeat(15)
            )
        );
        assert_eq!(
            progress_bar(1200, 1000, "messages"),
            format!("[{}] 100 % (1200 of 1200 messages)", "#".repeat(30)),
            "more than expected (written meanwhile): full, never beyond"
        );
        assert_eq!(
            progress_bar(0, 0, "messages"),
            format!("[{}] 100 % (0 of 0 messages)", "#".repeat(30)),
            "an empty chat is all done"
        );
    }

    #[test]
    fn exports_name_their_database_without_credentials() {
        let named = without_credentials("postgres://chat:secret@db.example:5432/chat");
        assert_eq!(named, "postgres://db.example:5432/chat");
        assert_eq!(without_credentials("sqlite://chat.db"), "sqlite://chat.db");
        assert_eq!(without_credentials("memory"), "memory");
        let path = "sqlite:///home/a@b/chat.db";
        assert_eq!(without_credentials(path), path, "an @ in a path stays");
    }
}
