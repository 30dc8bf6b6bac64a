//! Configuration: the TOML file (`config/presenced.toml`, also embedded as the defaults) and the
//! command-line overrides. Errors name the offending key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The defaults, exactly the shipped `config/presenced.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/presenced.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub storage: StorageConfig,
    pub engine: EngineSection,
    pub presence: PresenceSection,
    pub privacy: PrivacySection,
    pub rls: RlsSection,
    pub xcap: XcapSection,
    pub log: LogConfig,
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<SocketAddr>,
    pub udp: bool,
    pub tcp: bool,
    /// SIP over TLS listeners (with [`TlsConfig`]).
    pub tls_listen: Vec<SocketAddr>,
    pub recv_buffer_bytes: usize,
    pub send_buffer_bytes: usize,
    pub force_rport: bool,
    pub max_message_bytes: usize,
    pub max_tcp_connections: usize,
    pub udp_mtu: usize,
    pub tcp_connect_fallback_ms: u64,
    /// Peers whose `P-Asserted-Identity` names the requester (RFC 3325).
    pub trusted_peers: Vec<std::net::IpAddr>,
    /// `digest`, `asserted` or `either`.
    pub auth: String,
    /// Digest realm of challenges ("": the domain the request's From names).
    pub realm: String,
    pub digest_algorithms: Vec<String>,
    pub nonce_lifetime_secs: u64,
    pub auth_tries: u32,
    pub proxy_challenge: bool,
    /// Presentity URI -> the URIs that may publish for it besides itself.
    pub delegated_publishers: std::collections::BTreeMap<String, Vec<String>>,
    /// `[sip.listener."ADDR:PORT"]`: what one of `listen` or `tls_listen` accepts instead of
    /// `auth` and `proxy_challenge`.
    pub listener: std::collections::BTreeMap<SocketAddr, ListenerAuth>,
}

/// `[sip.listener."ADDR:PORT"]`: the authentication of one listener (UDP and TCP of a `listen`
/// address alike, or a `tls_listen` one); what is left out is the `[sip]` setting.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerAuth {
    pub auth: Option<String>,
    pub proxy_challenge: Option<bool>,
}

fn auth_mode(text: &str) -> presenced_systems::auth::Mode {
    use presenced_systems::auth::Mode;
    match text.to_ascii_lowercase().as_str() {
        "digest" => Mode::Digest,
        "asserted" => Mode::Asserted,
        _ => Mode::Either,
    }
}

impl SipConfig {
    /// The engine's authentication settings (call after [`Config::validate`]); `bound` maps
    /// each configured listen address to the one bound (another port when it named 0).
    pub fn auth_config(
        &self,
        bound: &[(SocketAddr, SocketAddr)],
    ) -> presenced_systems::auth::AuthConfig {
        use presenced_systems::auth::{Algorithm, AuthConfig, ListenerAuth};
        let listeners = self
            .listener
            .iter()
            .flat_map(|(configured, l)| {
                bound
                    .iter()
                    .filter(move |(c, _)| c == configured)
                    .map(move |&(_, local)| ListenerAuth {
                        local,
                        mode: auth_mode(l.auth.as_deref().unwrap_or(&self.auth)),
                        proxy_facing: l.proxy_challenge.unwrap_or(self.proxy_challenge),
                    })
            })
            .collect();
        AuthConfig {
            mode: auth_mode(&self.auth),
            listeners,
            realm: (!self.realm.is_empty()).then(|| self.realm.clone()),
            algorithms: self
                .digest_algorithms
                .iter()
                .filter_map(|a| Algorithm::parse(Some(a)))
                .collect(),
            nonce_lifetime_secs: self.nonce_lifetime_secs,
            tries: self.auth_tries,
            proxy_facing: self.proxy_challenge,
            delegates: self
                .delegated_publishers
                .iter()
                .map(|(p, ds)| (p.clone(), ds.clone()))
                .collect(),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// HTTPS on `listen` (with [`TlsConfig`]).
    pub tls: bool,
}

/// `[tls]`: the certificate of the TLS listeners, PEM file paths ("" for none).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub client_ca: PathBuf,
}

impl TlsConfig {
    /// True when a certificate is configured.
    pub fn configured(&self) -> bool {
        !self.certificate.as_os_str().is_empty()
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub async_window_ms: u64,
    pub sync_interval_us: u64,
}

/// `storage.durability`: when a change to live state (a publication) counts as kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Answered once the change is on disk (the tick's batch fsynced).
    Sync,
    /// Answered at once; written at once and fsynced every `async_window_ms`.
    Async,
    /// Not kept: a restart loses live state.
    Off,
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub inline: bool,
    pub inbox_capacity: usize,
    pub max_batch: usize,
    pub batch_window_us: u64,
    pub retry_after_secs: u32,
    pub t1_ms: u64,
    pub t2_ms: u64,
}

/// `[presence]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceSection {
    pub domains: Vec<String>,
    pub publish_min_expires: u32,
    pub publish_max_expires: u32,
    pub publish_default_expires: u32,
    pub subscribe_min_expires: u32,
    pub subscribe_max_expires: u32,
    pub subscribe_default_expires: u32,
    pub max_body_bytes: usize,
    pub publish_min_interval_ms: u64,
    /// `reject` or `merge`.
    pub publish_throttle: String,
    pub closed_when_unpublished: bool,
    pub max_subscriptions_per_presentity: usize,
    pub max_subscriptions_per_watcher: usize,
    pub expected_presentities: usize,
}

impl PresenceSection {
    /// The engine's view of these settings.
    pub fn engine_config(&self) -> presenced_systems::presence::PresenceConfig {
        presenced_systems::presence::PresenceConfig {
            publish_min_expires: self.publish_min_expires,
            publish_max_expires: self.publish_max_expires,
            publish_default_expires: self.publish_default_expires,
            subscribe_min_expires: self.subscribe_min_expires,
            subscribe_max_expires: self.subscribe_max_expires,
            subscribe_default_expires: self.subscribe_default_expires,
            max_body_bytes: self.max_body_bytes,
            publish_min_interval_ms: self.publish_min_interval_ms,
            publish_throttle_merge: self.publish_throttle.eq_ignore_ascii_case("merge"),
            domains: self.domains.clone(),
            closed_when_unpublished: self.closed_when_unpublished,
            max_subscriptions_per_presentity: self.max_subscriptions_per_presentity,
            max_subscriptions_per_watcher: self.max_subscriptions_per_watcher,
            expected_presentities: self.expected_presentities,
        }
    }
}

/// `[privacy]`: subscription authorization.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// `sub-handling` when no rule gives one: `confirm`, `allow`, `polite-block` or `block`.
    pub default: String,
}

impl PrivacySection {
    /// The engine's view of these settings (call after [`Config::validate`]).
    pub fn engine_config(&self) -> presenced_systems::privacy::PrivacyConfig {
        presenced_systems::privacy::PrivacyConfig {
            default_handling: presenced_systems::privacy::SubHandling::parse(&self.default)
                .unwrap_or(presenced_systems::privacy::SubHandling::Confirm),
        }
    }
}

/// `[rls]`: the Resource List Server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RlsSection {
    pub max_members: usize,
    pub min_notify_interval_ms: u64,
    pub max_depth: usize,
    pub linphone_compat: bool,
    /// `IP:port` back-end SUBSCRIBEs to other domains go to; empty: none.
    pub outbound_proxy: String,
    pub back_end_expires: u32,
}

impl RlsSection {
    /// The engine's view of these settings (call after [`Config::validate`]); `local` is our
    /// SIP address, which back-end SUBSCRIBEs are sent from.
    pub fn engine_config(&self, local: Option<SocketAddr>) -> presenced_systems::rls::RlsConfig {
        presenced_systems::rls::RlsConfig {
            max_members: self.max_members,
            min_notify_interval_ms: self.min_notify_interval_ms,
            max_depth: self.max_depth,
            outbound_proxy: self.outbound_proxy.parse().ok(),
            back_end_expires: self.back_end_expires,
            linphone_compat: self.linphone_compat,
            local,
        }
    }
}

/// `[xcap]`: the Aggregation Proxy and the XDM servers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct XcapSection {
    pub realm: String,
    /// Challenge with the user's SIP domain as the realm for a user's tree.
    pub domain_realm: bool,
    pub trusted_peers: Vec<std::net::IpAddr>,
    /// Digest algorithm names (`MD5`, `SHA-256`) in the order of the challenges.
    pub digest_algorithms: Vec<String>,
    pub nonce_lifetime_secs: u64,
    pub max_document_bytes: usize,
    pub forward_timeout_secs: u64,
    /// AUID -> `http://host:port` of the XDMS that serves it.
    pub forward: std::collections::BTreeMap<String, String>,
}

impl XcapSection {
    /// The HTTP side's view of these settings (call after [`Config::validate`]).
    pub fn http_settings(&self) -> crate::http::HttpSettings {
        crate::http::HttpSettings {
            realm: self.realm.clone(),
            domain_realm: self.domain_realm,
            trusted_peers: self.trusted_peers.clone(),
            forward: self
                .forward
                .iter()
                .filter_map(|(a, u)| Some((a.clone(), u.parse().ok()?)))
                .collect(),
            digest_algorithms: self
                .digest_algorithms
                .iter()
                .filter_map(|a| crate::http::digest::Algorithm::parse(Some(a)))
                .collect(),
            nonce_lifetime: std::time::Duration::from_secs(self.nonce_lifetime_secs),
            max_body_bytes: self.max_document_bytes,
            forward_timeout: std::time::Duration::from_secs(self.forward_timeout_secs),
        }
    }
}

/// What is wrong with a list of digest algorithm names, if anything.
fn algorithms_problem(names: &[String]) -> Option<&'static str> {
    let algs: Vec<_> = names
        .iter()
        .map(|a| crate::http::digest::Algorithm::parse(Some(a)))
        .collect();
    if algs.is_empty() || algs.iter().any(Option::is_none) {
        return Some("must list one or both of \"MD5\" and \"SHA-256\"");
    }
    (1..algs.len())
        .any(|i| algs[..i].contains(&algs[i]))
        .then_some("names an algorithm twice")
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    /// `text` (human-readable lines) or `json` (one object per line, for log collectors).
    pub format: String,
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: `{key}` {problem}")]
    Invalid {
        path: String,
        key: &'static str,
        problem: String,
    },
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Config {
    /// Load `path` over the embedded defaults (None: the defaults alone).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(DEFAULT_TOML).expect("embedded defaults parse");
        let label = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.into(),
                    source,
                })?;
                let over: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                merge(&mut table, over);
                p.display().to_string()
            }
            None => "built-in defaults".to_owned(),
        };
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: label.clone(),
                    message: e.to_string(),
                })?;
        config.validate_values(&label)?;
        Ok(config)
    }

    /// Checks serde cannot express, of the configuration as it will run (after the command
    /// line's addresses replaced the file's).
    pub fn validate(&self, label: &str) -> Result<(), ConfigError> {
        self.validate_values(label)?;
        let sip = &self.sip;
        if let Some(addr) = sip
            .listener
            .keys()
            .find(|a| !sip.listen.contains(a) && !sip.tls_listen.contains(a))
        {
            return Err(ConfigError::Invalid {
                path: label.to_owned(),
                key: "sip.listener",
                problem: format!("{addr} is not an address of sip.listen or sip.tls_listen"),
            });
        }
        Ok(())
    }

    /// [`Config::validate`] but for how addresses relate (the command line may change them).
    fn validate_values(&self, label: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: &str| {
            Err(ConfigError::Invalid {
                path: label.to_owned(),
                key,
                problem: problem.to_owned(),
            })
        };
        if self.sip.listen.is_empty() {
            return bad("sip.listen", "must name at least one address");
        }
        if self.storage.sync_interval_us > 100_000 {
            return bad("storage.sync_interval_us", "must be at most 100000");
        }
        if self.storage.async_window_ms == 0 || self.storage.async_window_ms > 60_000 {
            return bad("storage.async_window_ms", "must be between 1 and 60000");
        }
        if !self.sip.udp && !self.sip.tcp {
            return bad(
                "sip.udp",
                "and sip.tcp are both false: enable at least one transport",
            );
        }
        if self.sip.max_message_bytes < 1024 || self.sip.max_message_bytes > 16 << 20 {
            return bad("sip.max_message_bytes", "must be between 1024 and 16777216");
        }
        if presenced_systems::privacy::SubHandling::parse(&self.privacy.default).is_none() {
            return bad(
                "privacy.default",
                "must be one of confirm, allow, polite-block, block",
            );
        }
        if !self.rls.outbound_proxy.is_empty()
            && self.rls.outbound_proxy.parse::<SocketAddr>().is_err()
        {
            return bad("rls.outbound_proxy", "must be IP:port (or empty)");
        }
        if self.rls.back_end_expires < 60 {
            return bad("rls.back_end_expires", "must be at least 60");
        }
        if self.engine.inbox_capacity == 0 {
            return bad("engine.inbox_capacity", "must be at least 1");
        }
        if self.engine.max_batch == 0 {
            return bad("engine.max_batch", "must be at least 1");
        }
        if self.engine.batch_window_us > 100_000 {
            return bad(
                "engine.batch_window_us",
                "must be at most 100000 (it is added to every request's latency under load)",
            );
        }
        if self.engine.t1_ms == 0 || self.engine.t2_ms < self.engine.t1_ms {
            return bad(
                "engine.t1_ms",
                "must be positive and not above engine.t2_ms",
            );
        }
        if self.presence.expected_presentities > 100_000_000 {
            return bad(
                "presence.expected_presentities",
                "must be at most 100000000",
            );
        }
        let p = &self.presence;
        if p.publish_min_expires > p.publish_max_expires
            || !(p.publish_min_expires..=p.publish_max_expires).contains(&p.publish_default_expires)
        {
            return bad(
                "presence.publish_default_expires",
                "must lie within publish_min_expires..=publish_max_expires",
            );
        }
        if p.subscribe_min_expires > p.subscribe_max_expires
            || !(p.subscribe_min_expires..=p.subscribe_max_expires)
                .contains(&p.subscribe_default_expires)
        {
            return bad(
                "presence.subscribe_default_expires",
                "must lie within subscribe_min_expires..=subscribe_max_expires",
            );
        }
        if !["reject", "merge"]
            .contains(&self.presence.publish_throttle.to_ascii_lowercase().as_str())
        {
            return bad("presence.publish_throttle", "must be reject or merge");
        }
        let sip = &self.sip;
        if (!sip.tls_listen.is_empty() || self.http.tls)
            && (!self.tls.configured() || self.tls.private_key.as_os_str().is_empty())
        {
            return bad(
                "tls.certificate",
                "sip.tls_listen and http.tls need tls.certificate and tls.private_key",
            );
        }
        let mode_ok =
            |m: &str| ["digest", "asserted", "either"].contains(&m.to_ascii_lowercase().as_str());
        if !mode_ok(&sip.auth) {
            return bad("sip.auth", "must be one of digest, asserted, either");
        }
        for (addr, l) in &sip.listener {
            if l.auth.as_deref().is_some_and(|m| !mode_ok(m)) {
                return bad(
                    "sip.listener",
                    &format!("auth of {addr} must be one of digest, asserted, either"),
                );
            }
        }
        if sip.realm.contains(['"', '\\']) {
            return bad("sip.realm", "must be without quotes or backslashes");
        }
        if let Some(p) = algorithms_problem(&sip.digest_algorithms) {
            return bad("sip.digest_algorithms", p);
        }
        if sip.nonce_lifetime_secs == 0 {
            return bad("sip.nonce_lifetime_secs", "must be at least 1");
        }
        let not_uri = |u: &String| presenced_systems::sip::identity::identity_key(u).is_none();
        if sip
            .delegated_publishers
            .iter()
            .any(|(p, ds)| not_uri(p) || ds.iter().any(not_uri))
        {
            return bad(
                "sip.delegated_publishers",
                "must map SIP URIs to lists of SIP URIs",
            );
        }
        if sip.auth_tries == 0 {
            return bad("sip.auth_tries", "must be at least 1");
        }
        let x = &self.xcap;
        if x.realm.is_empty() || x.realm.contains(['"', '\\']) {
            return bad(
                "xcap.realm",
                "must be non-empty, without quotes or backslashes",
            );
        }
        if let Some(p) = algorithms_problem(&x.digest_algorithms) {
            return bad("xcap.digest_algorithms", p);
        }
        if x.nonce_lifetime_secs == 0 {
            return bad("xcap.nonce_lifetime_secs", "must be at least 1");
        }
        if x.max_document_bytes == 0 {
            return bad("xcap.max_document_bytes", "must be at least 1");
        }
        if x.forward_timeout_secs == 0 {
            return bad("xcap.forward_timeout_secs", "must be at least 1");
        }
        for (auid, url) in &x.forward {
            let ok = url
                .parse::<hyper::Uri>()
                .is_ok_and(|u| u.scheme_str() == Some("http") && u.authority().is_some());
            if !ok || auid.is_empty() || auid.contains('/') {
                return Err(ConfigError::Invalid {
                    path: label.to_owned(),
                    key: "xcap.forward",
                    problem: format!("entry {auid} = {url:?}: want AUID = \"http://host:port\""),
                });
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", "is not a level or tracing filter");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad("log.format", "must be \"text\" or \"json\"");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::digest::Algorithm;

    fn load_str(text: &str) -> Result<Config, ConfigError> {
        // A file per call: tests run in parallel, and texts of one length used to share one.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("presenced-cfg-{}-{n}", std::process::id()));
        std::fs::write(&dir, text).unwrap();
        let r = Config::load(Some(&dir));
        std::fs::remove_file(&dir).ok();
        r
    }

    #[test]
    fn defaults_load() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.sip.listen, vec!["127.0.0.1:5060".parse().unwrap()]);
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.xcap.realm, "presenced");
        assert!(c.xcap.trusted_peers.is_empty());
        assert!(c.xcap.forward.is_empty());
        assert_eq!(
            c.xcap.http_settings().digest_algorithms,
            [Algorithm::Md5, Algorithm::Sha256],
            "MD5 first, for clients that read only the first challenge"
        );
    }

    #[test]
    fn log_format_is_text_or_json() {
        assert_eq!(load_str("").unwrap().log.format, "text");
        assert_eq!(
            load_str("[log]\nformat = \"json\"\n").unwrap().log.format,
            "json"
        );
        let e = load_str("[log]\nformat = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.format"), "{e}");
    }

    #[test]
    fn digest_algorithms_in_the_order_given() {
        let c = load_str("[xcap]\ndigest_algorithms = [\"sha-256\"]\n").unwrap();
        assert_eq!(
            c.xcap.http_settings().digest_algorithms,
            [Algorithm::Sha256]
        );
        for bad in ["[]", "[\"SHA-1\"]", "[\"MD5\", \"md5\"]", "[\"MD5-sess\"]"] {
            let e = load_str(&format!("[xcap]\ndigest_algorithms = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("xcap.digest_algorithms"), "{bad}: {e}");
        }
    }

    #[test]
    fn xcap_forward_and_trusted_peers() {
        let c = load_str(
            "[xcap]\ntrusted_peers = [\"127.0.0.1\", \"::1\"]\n[xcap.forward]\nrls-services = \"http://127.0.0.1:8081\"\n",
        )
        .unwrap();
        assert_eq!(c.xcap.trusted_peers.len(), 2);
        let h = c.xcap.http_settings();
        assert_eq!(h.forward["rls-services"].port_u16(), Some(8081));
        assert_eq!(c.xcap.realm, "presenced", "other keys keep their defaults");
    }

    #[test]
    fn partial_file_overrides_defaults() {
        let c = load_str("[engine]\nt1_ms = 250\n").unwrap();
        assert_eq!(c.engine.t1_ms, 250);
        assert_eq!(c.engine.t2_ms, 4000);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load_str("[sip]\nlisten = [\"nonsense\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = load_str("[engine]\nbogus = 1\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = load_str("[xcap.forward]\nresource-lists = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xcap.forward"), "{e}");
        let e = load_str("[xcap]\ntrusted_peers = [\"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trusted_peers"), "{e}");
        let e = load_str("[engine]\ninbox_capacity = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("engine.inbox_capacity"), "{e}");
    }
}
