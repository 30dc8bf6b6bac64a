//! loadgen: SIP presence load generator for capacity planning (built out in its own issue).
//!
//! This skeleton only parses its command line; the population model, open-loop scheduling,
//! hdrhistogram measurement and the `run`/`ramp`/`compare`/`responder` modes come with the
//! loadgen issue.

use clap::Parser;

/// SIP presence load generator (skeleton: no load is generated yet).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Target SIP address (loopback only).
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: std::net::SocketAddr,
}

fn main() {
    let cli = Cli::parse();
    if !cli.target.ip().is_loopback() {
        eprintln!("loadgen: only loopback targets are allowed");
        std::process::exit(2);
    }
    eprintln!(
        "loadgen: not implemented yet (see the loadgen issue); target would be {}",
        cli.target
    );
    std::process::exit(1);
}
