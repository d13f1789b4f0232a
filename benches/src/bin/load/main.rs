//! `load`: the figures a user picks a chat server by, measured against a real `chat-server`.
//!
//! ```text
//! cargo run --release -p benches --bin load                 # every scenario, SQLite and sled
//! cargo run --release -p benches --bin load -- --smoke      # seconds, small numbers (CI)
//! ```
//!
//! For each store it prepares a fresh database (users, rooms, seeded history), starts
//! `chat-server` on a loopback port, and runs the scenarios: `send`, `history`, `fanout`,
//! `connections`, `auth`. It prints a table and writes the same figures as JSON.

mod scenarios;
mod server;

use std::time::Duration;

use clap::Parser;
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(about = "Load scenarios against chat-server")]
struct Cli {
    /// Stores to run against: `sqlite`, `sled`, `postgres` (at `CHAT_TEST_POSTGRES_URL`, in a
    /// schema of the run's own), `postgres+nats` (the same, its servers' live events over the
    /// NATS at `CHAT_TEST_NATS_URL`).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,sled")]
    stores: Vec<String>,
    /// Small counts and short runs: a check that the tool works, not a measurement.
    #[arg(long)]
    smoke: bool,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/load-report.json")]
    out: String,
    /// The chat-server binary (default: next to this one, built if missing).
    #[arg(long)]
    server: Option<String>,
    /// Scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "send,ws-send,history,fanout,connections,auth,nodes"
    )]
    scenarios: Vec<String>,
}

/// The sizes of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    send_connections: Vec<usize>,
    send_duration: Duration,
    /// Sockets sending over the WebSocket, each to a room of its own, for `send_duration`.
    ws_send_connections: usize,
    history_rooms: Vec<u64>,
    history_duration: Duration,
    fanout_subscribers: Vec<usize>,
    fanout_rate: u32,
    fanout_duration: Duration,
    idle_sockets: usize,
    auth_duration: Duration,
    /// Clients logging in at once in the login burst…
    auth_clients: usize,
    /// …for this long, before the server's idle memory is read.
    login_burst: Duration,
    /// The `nodes` scenario (PostgreSQL): servers on one database, senders and subscribers
    /// spread over them.
    nodes: usize,
    nodes_send_connections: usize,
    nodes_subscribers: Vec<usize>,
}

impl Plan {
    fn full() -> Self {
        Self {
            send_connections: vec![1, 16, 64],
            send_duration: Duration::from_secs(5),
            ws_send_connections: 64,
            history_rooms: vec![10_000, 1_000_000],
            history_duration: Duration::from_secs(3),
            fanout_subscribers: vec![100, 1000],
            fanout_rate: 50,
            fanout_duration: Duration::from_secs(5),
            idle_sockets: 10_000,
            auth_duration: Duration::from_secs(3),
            auth_clients: 16,
            login_burst: Duration::from_secs(10),
            nodes: 3,
            nodes_send_connections: 64,
            nodes_subscribers: vec![1000, 10_000],
        }
    }

    fn smoke() -> Self {
        Self {
            send_connections: vec![1, 4],
            send_duration: Duration::from_millis(500),
            ws_send_connections: 4,
            history_rooms: vec![100, 1000],
            history_duration: Duration::from_millis(300),
            fanout_subscribers: vec![5],
            fanout_rate: 20,
            fanout_duration: Duration::from_millis(500),
            idle_sockets: 50,
            auth_duration: Duration::from_millis(500),
            auth_clients: 4,
            login_burst: Duration::from_millis(500),
            nodes: 3,
            nodes_send_connections: 4,
            nodes_subscribers: vec![5],
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    store: String,
    scenario: String,
    /// Operations per second (messages, requests, logins).
    per_second: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    /// Anything else the scenario checked or measured.
    note: String,
}

#[derive(Serialize)]
struct Report {
    machine_cores: usize,
    smoke: bool,
    plan: Plan,
    rows: Vec<Row>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let mut plan = if cli.smoke {
        Plan::smoke()
    } else {
        Plan::full()
    };
    let wanted = |name: &str| cli.scenarios.iter().any(|s| s == name);
    if !wanted("send") {
        plan.send_connections.clear();
    }
    if !wanted("ws-send") {
        plan.ws_send_connections = 0;
    }
    if !wanted("history") {
        plan.history_rooms.clear();
    }
    if !wanted("fanout") {
        plan.fanout_subscribers.clear();
    }
    if !wanted("nodes") {
        plan.nodes = 0;
        plan.nodes_subscribers.clear();
    }
    // Idle sockets need a file descriptor each, here and in the server (which inherits it).
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let server = server::binary(cli.server.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for store in &cli.stores {
        eprintln!("== {store} (file descriptors: {limit})");
        rows.extend(runtime.block_on(scenarios::run_all(&server, store, &plan, &cli.scenarios))?);
    }
    print_table(&rows);
    let report = Report {
        machine_cores: std::thread::available_parallelism().map_or(1, usize::from),
        smoke: cli.smoke,
        plan,
        rows,
    };
    if let Some(dir) = std::path::Path::new(&cli.out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&report)?)?;
    println!("\n{} cores; JSON report: {}", report.machine_cores, cli.out);
    Ok(())
}

fn print_table(rows: &[Row]) {
    let cell = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}"));
    println!("\n| store | scenario | per second | p50 ms | p99 ms | max ms | notes |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.store,
            row.scenario,
            cell(row.per_second),
            cell(row.p50_ms),
            cell(row.p99_ms),
            cell(row.max_ms),
            row.note
        );
    }
}
