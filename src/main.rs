//! The `gatehouse` command: serve (`standalone`) or check (`validate`)
//! Gateway API configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use gatehouse::index::Index;
use gatehouse::provider::Event;
use gatehouse::provider::file::{MetadataStamper, load_path};
use gatehouse::proxy::ProxyConfig;
use gatehouse::routing::describe::describe;
use gatehouse::runtime::{StandaloneOptions, start_standalone};
use gatehouse::translate::{DEFAULT_CONTROLLER_NAME, TranslateConfig, translate};

/// A Kubernetes Gateway API gateway in one binary.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    /// Log filter, e.g. `info` or `gatehouse=debug,info`.
    #[arg(long, global = true, default_value = "info", env = "GATEHOUSE_LOG")]
    log_level: String,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve traffic from Gateway API YAML in a file or directory, reloading it on change.
    Standalone(StandaloneArgs),
    /// Check Gateway API YAML offline: print each object's status and the route
    /// table; exit 1 when any object would be rejected or has a problem.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// A YAML file, or a directory searched for *.yaml, *.yml and *.json.
    path: PathBuf,
    /// GatewayClasses with this controllerName are served.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    controller_name: String,
    /// The address listeners bind when a Gateway names no addresses.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
}

#[derive(Debug, Args)]
struct StandaloneArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the admin endpoint (/healthz, /readyz, /metrics, /config, /status) listens.
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin_addr: SocketAddr,
    /// Seconds in-flight requests get to finish on shutdown or listener removal.
    #[arg(long, default_value_t = 30)]
    drain_timeout_secs: u64,
    /// Seconds a client may take to send request headers.
    #[arg(long, default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// The largest request head in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_header_bytes: usize,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Print the status as JSON instead of YAML.
    #[arg(long)]
    json: bool,
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_json);
    let result = match cli.command {
        Command::Standalone(args) => run_standalone(args),
        Command::Validate(args) => validate(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_standalone(args: StandaloneArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let options = StandaloneOptions {
            path: args.common.path,
            translate: TranslateConfig {
                controller_name: args.common.controller_name,
                default_bind: args.common.bind_address,
            },
            proxy: ProxyConfig {
                header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
                max_header_bytes: args.max_header_bytes,
                drain_timeout: Duration::from_secs(args.drain_timeout_secs),
                ..ProxyConfig::default()
            },
            admin_addr: args.admin_addr,
        };
        let gatehouse = start_standalone(options).await?;
        tracing::info!(admin = %gatehouse.admin_addr, "gatehouse is serving");
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        gatehouse.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let loaded = match load_path(&args.common.path) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for skipped in &loaded.skipped {
        eprintln!(
            "warning: {}:{}: skipped: {}",
            skipped.file.display(),
            skipped.line,
            skipped.reason
        );
    }
    let mut objects = loaded.objects;
    let now = k8s_openapi::jiff::Timestamp::now();
    MetadataStamper::default().stamp(&mut objects, now);
    let mut index = Index::default();
    index.handle(Event::Reset(objects));
    let config = TranslateConfig {
        controller_name: args.common.controller_name,
        default_bind: args.common.bind_address,
    };
    let translation = translate(&index, &config, now);
    let list = translation.status.kubernetes_list();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", serde_yaml_ng::to_string(&list)?);
    }
    println!("---");
    println!("# route table");
    for line in describe(&translation.table).lines() {
        println!("# {line}");
    }
    let problems = translation.status.problems();
    if problems.is_empty() {
        eprintln!("ok: no object is rejected");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("problem: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
