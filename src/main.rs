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
    /// Run as a Kubernetes controller: watch the cluster, serve its Gateways,
    /// write status (leader only) and manage one Service per Gateway.
    Controller(ControllerArgs),
    /// Print Gatehouse's CustomResourceDefinitions (gatehouse.dev) as YAML.
    Crds,
}

#[derive(Debug, Args)]
struct ControllerArgs {
    /// A kubeconfig file; without it, in-cluster config or the default kubeconfig.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// GatewayClasses with this controllerName are served.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    controller_name: String,
    /// The address listeners bind.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Where the admin endpoint (/healthz, /readyz, /metrics, /config, /status) listens.
    #[arg(long, default_value = "0.0.0.0:9901")]
    admin_addr: SocketAddr,
    /// Gatehouse's own namespace: the Lease and the Gateway Services live here.
    #[arg(long, env = "POD_NAMESPACE", default_value = "gatehouse-system")]
    namespace: String,
    /// This replica's identity in leader election.
    #[arg(long, env = "POD_NAME")]
    pod_name: String,
    /// The Lease used for leader election.
    #[arg(long, default_value = "gatehouse-leader")]
    lease_name: String,
    /// Labels selecting the Gatehouse pods, for Gateway Services (`k=v,k=v`).
    #[arg(long, default_value = "app.kubernetes.io/name=gatehouse")]
    pod_selector: String,
    /// Container ports handed out to Gateway listeners, as `FIRST-LAST`.
    #[arg(long, default_value = "10000-10999")]
    port_range: String,
    /// The type of the Service created for each Gateway.
    #[arg(long, default_value = "LoadBalancer")]
    service_type: String,
    /// Seconds in-flight requests get to finish on shutdown or listener removal.
    #[arg(long, default_value_t = 30)]
    drain_timeout_secs: u64,
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
        Command::Controller(args) => run_controller(args),
        Command::Crds => match gatehouse::policy::crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Err(error.into()),
        },
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
    let runtime = build_runtime()?;
    runtime.block_on(async move {
        let options = StandaloneOptions {
            path: args.common.path,
            translate: TranslateConfig {
                controller_name: args.common.controller_name,
                default_bind: args.common.bind_address,
                ..TranslateConfig::default()
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

fn parse_selector(text: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("{pair:?} is not key=value"))
        })
        .collect()
}

fn parse_range(text: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (first, last) = text
        .split_once('-')
        .with_context(|| format!("{text:?} is not FIRST-LAST"))?;
    let (first, last): (u16, u16) = (first.trim().parse()?, last.trim().parse()?);
    anyhow::ensure!(
        first > 0 && first <= last,
        "{text:?} is an empty port range"
    );
    Ok(first..=last)
}

fn run_controller(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    use gatehouse::provider::kubernetes::gateway_service::ServiceConfig;
    use gatehouse::provider::kubernetes::lease::LeaseConfig;
    use gatehouse::runtime::controller::{ControllerOptions, start_controller};
    let options = ControllerOptions {
        kubeconfig: args.kubeconfig,
        translate: TranslateConfig {
            controller_name: args.controller_name,
            default_bind: args.bind_address,
            ..TranslateConfig::default()
        },
        proxy: ProxyConfig {
            drain_timeout: Duration::from_secs(args.drain_timeout_secs),
            ..ProxyConfig::default()
        },
        admin_addr: args.admin_addr,
        lease: LeaseConfig {
            namespace: args.namespace.clone(),
            name: args.lease_name,
            identity: args.pod_name,
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
        },
        services: ServiceConfig {
            namespace: args.namespace,
            selector: parse_selector(&args.pod_selector)?,
            port_range: parse_range(&args.port_range)?,
            service_type: args.service_type,
        },
    };
    let runtime = build_runtime()?;
    runtime.block_on(async move {
        let gatehouse = start_controller(options).await?;
        tracing::info!(admin = %gatehouse.admin_addr, "gatehouse controller is running");
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        gatehouse.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The async runtime, sized to the cores this process may run on. Given one
/// core (a CPU limit of 1, or `taskset`), the current-thread scheduler serves
/// everything on the main thread: no work-stealing queues to synchronise and
/// no wake-ups handed between threads. Blocking work (translation) still
/// runs on the blocking pool either way.
fn build_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
        ..TranslateConfig::default()
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
