//! SIGHUP: read the configuration again and apply what can change while serving (the log
//! filter, the SIP trusted peers), logging every key that changed and whether it took effect
//! or needs a restart. A configuration that does not load or validate changes nothing.

use std::collections::BTreeMap;

use tracing::{error, info, warn};

use crate::config::Config;

/// Keys applied without a restart.
const LIVE: [&str; 2] = ["log.level", "sip.trusted_peers"];

/// Loads the configuration as at start (file and command-line overrides), validated.
pub type LoadConfig = Box<dyn Fn() -> Result<Config, String> + Send>;
/// Applies a new log filter.
pub type SetLogFilter = Box<dyn Fn(&str) -> Result<(), String> + Send>;

/// What a reload hands to the running server.
pub struct Reloader {
    pub load: LoadConfig,
    pub set_log_filter: SetLogFilter,
}

/// Settings the engine takes while running.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub trusted_peers: Vec<std::net::IpAddr>,
}

/// Every leaf of `config` by its dotted key, as TOML text.
fn flatten(config: &Config) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    match toml::Value::try_from(config) {
        Ok(v) => walk("", &v, &mut out),
        Err(e) => warn!("reload: cannot compare configurations: {e}"),
    }
    out
}

/// The keys whose values differ between `old` and `new`, with both values.
pub fn changes(old: &Config, new: &Config) -> Vec<(String, String, String)> {
    let (a, b) = (flatten(old), flatten(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = String::from("(unset)");
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            (
                k.clone(),
                a.get(k).unwrap_or(&none).clone(),
                b.get(k).unwrap_or(&none).clone(),
            )
        })
        .collect()
}

/// Reload over `current`: on success, `current` becomes the new configuration for the keys
/// applied live (the others keep their running values, so that they are reported again
/// until a restart) and the engine's settings are returned when they changed.
pub fn reload(reloader: &Reloader, current: &mut Config) -> Option<LiveSettings> {
    let new = match (reloader.load)() {
        Ok(c) => c,
        Err(e) => {
            error!("reload: configuration not loaded, nothing changed: {e}");
            return None;
        }
    };
    let changed = changes(current, &new);
    if changed.is_empty() {
        info!("reload: no change");
        return None;
    }
    let mut live = None;
    let mut restart = Vec::new();
    for (key, old, now) in &changed {
        match key.as_str() {
            "log.level" => match (reloader.set_log_filter)(&new.log.level) {
                Ok(()) => {
                    info!("reload: log.level changed from {old} to {now}");
                    current.log.level = new.log.level.clone();
                }
                Err(e) => error!("reload: log.level {now} not applied: {e}"),
            },
            "sip.trusted_peers" => {
                info!("reload: sip.trusted_peers changed from {old} to {now}");
                current.sip.trusted_peers = new.sip.trusted_peers.clone();
                live = Some(LiveSettings {
                    trusted_peers: new.sip.trusted_peers.clone(),
                });
            }
            _ => restart.push(key.as_str()),
        }
    }
    if !restart.is_empty() {
        warn!(
            "reload: changed but applied only at the next restart: {} (live: {})",
            restart.join(", "),
            LIVE.join(", ")
        );
    }
    live
}
