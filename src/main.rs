//! The `presenced` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use presenced::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// presenced: an OMA Presence SIMPLE server (Presence Server, RLS, XDMS, Content Server).
///
/// With no options it runs on the built-in defaults (those of config/presenced.toml): SIP on
/// 127.0.0.1:5060 over UDP and TCP, HTTP on 127.0.0.1:8080, data in ./data.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML); keys it leaves out keep their defaults.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// SIP listen address (UDP and TCP on the same port); repeat for several. Replaces
    /// sip.listen. Port 0 picks a free port.
    #[arg(long = "sip", value_name = "ADDR:PORT")]
    sip: Vec<std::net::SocketAddr>,
    /// HTTP listen address (XCAP, Content Server). Replaces http.listen.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<std::net::SocketAddr>,
    /// Data directory. Replaces storage.data_dir.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Log level or tracing filter (error, warn, info, debug, trace). Replaces log.level.
    #[arg(long, value_name = "LEVEL")]
    log: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("presenced: {e}");
            return ExitCode::from(2);
        }
    };
    if !cli.sip.is_empty() {
        config.sip.listen = cli.sip;
    }
    if let Some(h) = cli.http {
        config.http.listen = h;
    }
    if let Some(d) = cli.data {
        config.storage.data_dir = d;
    }
    if let Some(l) = cli.log {
        config.log.level = l;
    }
    if let Err(e) = config.validate("command line") {
        eprintln!("presenced: {e}");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log.level))
        .with_writer(std::io::stderr)
        .init();
    match presenced::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("presenced: {e}");
            ExitCode::FAILURE
        }
    }
}
