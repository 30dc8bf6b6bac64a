//! The `presenced` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use presenced::config::Config;
use presenced::store::{SqliteStore, Store};

#[global_allocator]
static GLOBAL: presenced::memory::Allocator = presenced::memory::Allocator;

/// presenced: an OMA Presence SIMPLE server (Presence Server, XDMS over XCAP).
///
/// With no options it runs on the built-in defaults (those of config/presenced.toml): SIP on
/// 127.0.0.1:5060 over UDP and TCP, HTTP on 127.0.0.1:8080, data in ./data.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML); keys it leaves out keep their defaults.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// SIP listen address (UDP and TCP on the same port); repeat for several. Replaces
    /// sip.listen. Port 0 picks a free port.
    #[arg(long = "sip", value_name = "ADDR:PORT")]
    sip: Vec<std::net::SocketAddr>,
    /// SIP over TLS listen address (repeatable). Replaces sip.tls_listen; needs [tls].
    #[arg(long = "sip-tls", value_name = "ADDR:PORT")]
    sip_tls: Vec<std::net::SocketAddr>,
    /// HTTP listen address (XCAP). Replaces http.listen.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<std::net::SocketAddr>,
    /// Data directory. Replaces storage.data_dir.
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// Log level or tracing filter (error, warn, info, debug, trace). Replaces log.level; the
    /// last one given wins.
    #[arg(long, value_name = "LEVEL", overrides_with = "log")]
    log: Option<String>,
    /// Log format: text or json. Replaces log.format.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// The sub-handling of watchers no pres-rule decides: confirm, allow, polite-block or
    /// block. Replaces privacy.default.
    #[arg(long, value_name = "HANDLING")]
    privacy_default: Option<String>,
    /// When a publication counts as kept: sync, async or off. Replaces storage.durability.
    #[arg(long, value_name = "MODE", value_enum)]
    durability: Option<presenced::config::Durability>,
    /// What to do; without one, run the server.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage the XCAP users (HTTP Digest credentials, realm xcap.realm) in the data directory.
    /// A running server sees the change at its next request.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user, or set a new password for an existing one. The digest username is the URI
    /// without its scheme (alice@example.com); only HA1 hashes (MD5, SHA-256) are stored.
    Add {
        /// The user's SIP URI, e.g. sip:alice@example.com.
        uri: String,
        /// The password.
        #[arg(long)]
        password: String,
    },
    /// Add or update many users at once from FILE ("-": standard input), one `sip:URI
    /// PASSWORD` per line (blank lines and lines starting with `#` skipped), all in one
    /// transaction: a running server reloads its users once. A bad line is an error naming its
    /// number, and nothing is stored. `loadgen users` writes such files for its populations.
    Import {
        /// The users file.
        file: PathBuf,
    },
    /// Remove a user (their documents stay).
    Del {
        /// The user's SIP URI.
        uri: String,
    },
    /// List the users: URI, digest username and realm, one per line.
    List,
}

fn user_command(config: &Config, cmd: UserCommand) -> Result<(), String> {
    let store =
        SqliteStore::open(&config.storage.data_dir, None).map_err(|e| format!("storage: {e}"))?;
    match cmd {
        UserCommand::Add { uri, password } => {
            let rec = presenced::http::user_record(&uri, &config.xcap.realm, &password)?;
            let new = store.put_user(&rec).map_err(|e| e.to_string())?;
            println!(
                "{} {} (username {}, realm {})",
                if new { "added" } else { "updated" },
                rec.uri,
                rec.username,
                rec.realm
            );
        }
        UserCommand::Import { file } => {
            let started = std::time::Instant::now();
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
            } else {
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?
            };
            let records = users_file(&text, &config.xcap.realm)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let (added, updated) = store.put_users(&records).map_err(|e| e.to_string())?;
            println!(
                "imported {} users from {}: {added} added, {updated} updated ({:.2} s)",
                records.len(),
                file.display(),
                started.elapsed().as_secs_f64()
            );
        }
        UserCommand::Del { uri } => {
            if !store.delete_user(&uri).map_err(|e| e.to_string())? {
                return Err(format!("no such user: {uri}"));
            }
            println!("deleted {uri}");
        }
        UserCommand::List => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for u in store.users().map_err(|e| e.to_string())? {
                // a reader that stops early (`| head`) ends the listing, not with a panic
                if writeln!(out, "{} {} {}", u.uri, u.username, u.realm).is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The records of a users file: `sip:URI PASSWORD` per line (the password is the rest of the
/// line, trimmed), blank lines and `#` comments skipped; the first bad line is an error naming
/// its number.
fn users_file(text: &str, realm: &str) -> Result<Vec<presenced::store::UserRecord>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((uri, password)) = line.split_once(char::is_whitespace) else {
            return Err(format!(
                "line {}: want `sip:user@domain PASSWORD`, got no password",
                i + 1
            ));
        };
        let rec = presenced::http::user_record(uri, realm, password.trim())
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push(rec);
    }
    Ok(out)
}

/// The configuration: the file over the defaults, then the command line; validated.
fn configuration(cli: &Cli) -> Result<Config, String> {
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if !cli.sip.is_empty() {
        config.sip.listen = cli.sip.clone();
    }
    if !cli.sip_tls.is_empty() {
        config.sip.tls_listen = cli.sip_tls.clone();
    }
    if let Some(h) = cli.http {
        config.http.listen = h;
    }
    if let Some(d) = &cli.data {
        config.storage.data_dir = d.clone();
    }
    if let Some(l) = &cli.log {
        config.log.level = l.clone();
    }
    if let Some(f) = &cli.log_format {
        config.log.format = f.clone();
    }
    if let Some(p) = &cli.privacy_default {
        config.privacy.default = p.clone();
    }
    if let Some(d) = cli.durability {
        config.storage.durability = d;
    }
    config.validate("command line").map_err(|e| e.to_string())?;
    Ok(config)
}

fn main() -> ExitCode {
    presenced::memory::configure();
    let mut cli = Cli::parse();
    let config = match configuration(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("presenced: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.take();
    if let Some(Command::User(cmd)) = command {
        return match user_command(&config, cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("presenced: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log.level))
        .with_writer(std::io::stderr);
    // SIGHUP may set another filter
    let set_log_filter: presenced::reload::SetLogFilter = if config.log.format == "json" {
        let logs = logs.json().with_filter_reloading();
        let handle = logs.reload_handle();
        logs.init();
        Box::new(move |f| {
            handle
                .reload(tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())
        })
    } else {
        // colours only on a terminal: log files and journald get plain text
        let logs = logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter_reloading();
        let handle = logs.reload_handle();
        logs.init();
        Box::new(move |f| {
            handle
                .reload(tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())
        })
    };
    let reloader = presenced::reload::Reloader {
        load: Box::new(move || configuration(&cli)),
        set_log_filter,
    };
    presenced::memory::spawn_collector();
    match presenced::server::run(config, reloader) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("presenced: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::users_file;

    #[test]
    fn users_files_skip_comments_and_name_bad_lines() {
        let recs = users_file(
            "# loadgen users\n\nsip:p1@example.com pw one\n  sip:w1@Example.com\tpw2  \n",
            "presenced",
        )
        .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].uri, "sip:p1@example.com");
        // the password is the rest of the line: spaces inside it are kept
        let want = presenced::http::user_record("sip:p1@example.com", "presenced", "pw one");
        assert_eq!(Ok(recs[0].clone()), want);
        assert_eq!(recs[1].uri, "sip:w1@Example.com");
        let e = users_file("sip:a@x pw\n# c\nsip:b@x\n", "presenced").unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = users_file("sip:a@x pw\nalice pw\n", "presenced").unwrap_err();
        assert!(
            e.starts_with("line 2:") && e.contains("not a SIP URI"),
            "{e}"
        );
    }
}
