//! Wiring: bind the sockets, start the engine (inline or on its thread) and the SIP I/O loop,
//! stop on a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use mio::Waker;
use presenced_systems::{Engine, EngineConfig};
use tracing::{info, warn};

use crate::config::Config;
use crate::sip::durable_gate::Durable;
use crate::sip::engine_link::{Durability, EngineLink, EngineThread, InlineEngine, StoreFeed};
use crate::sip::sockets;
use crate::sip::transport::{SipTransport, TransportConfig};
use crate::store::journal::{Journal, JournalOptions, JournalWriter, WriterMode};
use crate::store::{DocumentChange, SqliteStore, Store};

/// Bind every listener named in the config. UDP and TCP of one address share its port, so
/// `--sip 127.0.0.1:0` gets one free port for both.
fn bind(
    config: &Config,
) -> anyhow_free::Result<(
    Vec<std::net::UdpSocket>,
    Vec<std::net::TcpListener>,
    Vec<String>,
)> {
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    let mut lines = Vec::new();
    for requested in &config.sip.listen {
        // Port 0: the UDP socket picks a free port and TCP takes the same one; another process
        // may hold that TCP port, so a few fresh picks are tried before giving up.
        let tries = if requested.port() == 0 && config.sip.udp && config.sip.tcp {
            16
        } else {
            1
        };
        let mut bound = None;
        for attempt in 1..=tries {
            match bind_pair(config, *requested) {
                Ok(pair) => {
                    bound = Some(pair);
                    break;
                }
                Err(e) if attempt == tries => return Err(e),
                Err(_) => {}
            }
        }
        let (u, t) = bound.expect("bound or returned");
        if let Some((s, rcv, snd)) = u {
            let addr = s.local_addr().map_err(|e| e.to_string())?;
            info!("sip udp {addr}: receive buffer {rcv} bytes, send buffer {snd} bytes");
            lines.push(format!("sip/udp {addr}"));
            udp.push(s);
        }
        if let Some(l) = t {
            lines.push(format!(
                "sip/tcp {}",
                l.local_addr().map_err(|e| e.to_string())?
            ));
            tcp.push(l);
        }
    }
    Ok((udp, tcp, lines))
}

/// A UDP socket and a TCP listener on one address (the port UDP got, when asked for 0).
#[allow(clippy::type_complexity)]
fn bind_pair(
    config: &Config,
    mut addr: SocketAddr,
) -> anyhow_free::Result<(
    Option<(std::net::UdpSocket, usize, usize)>,
    Option<std::net::TcpListener>,
)> {
    let mut udp = None;
    if config.sip.udp {
        let (s, rcv, snd) = sockets::udp(
            addr,
            config.sip.recv_buffer_bytes,
            config.sip.send_buffer_bytes,
        )
        .map_err(|e| format!("cannot bind SIP UDP {addr}: {e}"))?;
        addr = s.local_addr().map_err(|e| e.to_string())?;
        udp = Some((s, rcv, snd));
    }
    let tcp = if config.sip.tcp {
        Some(sockets::tcp_listener(addr).map_err(|e| format!("cannot bind SIP TCP {addr}: {e}"))?)
    } else {
        None
    };
    Ok((udp, tcp))
}

/// Each configured SIP listen address with the address it was bound to.
/// The engine with every feature of the server, set from `config`: `seeds` (engine, hash),
/// the XCAP root of xcap-diff, the local address of back-end SUBSCRIBEs and the bound SIP
/// listeners (their per-listener authentication). Durability is added once the journal is
/// open.
pub fn build_engine(
    config: &Config,
    (seed, hash_seed): (u64, u128),
    xcap_root: String,
    rls_local: Option<SocketAddr>,
    bound: &[(SocketAddr, SocketAddr)],
) -> Engine {
    let engine_config = EngineConfig {
        t1_ms: config.engine.t1_ms,
        t2_ms: config.engine.t2_ms,
        seed,
        hash_seed,
        retry_after_secs: config.engine.retry_after_secs,
        force_rport: config.sip.force_rport,
        trusted_peers: config.sip.trusted_peers.clone(),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(engine_config);
    engine.add_feature(presenced_systems::presence::feature(
        config.presence.engine_config(),
    ));
    engine.add_feature(presenced_systems::xdm::feature(
        presenced_systems::xdm::XdmConfig {
            xcap_root,
            ..Default::default()
        },
    ));
    engine.add_feature(presenced_systems::privacy::feature(
        config.privacy.engine_config(),
    ));
    engine.add_feature(presenced_systems::rls::feature(
        config.rls.engine_config(rls_local),
    ));
    let p = &config.presence;
    engine.add_feature(presenced_systems::winfo::feature(
        presenced_systems::winfo::WinfoConfig {
            min_expires: p.subscribe_min_expires,
            max_expires: p.subscribe_max_expires,
            default_expires: p.subscribe_default_expires,
            max_per_watcher: p.max_subscriptions_per_watcher,
        },
    ));
    // last: it screens the PUBLISH and SUBSCRIBE requests of the features above
    engine.add_feature(presenced_systems::auth::feature(
        config.sip.auth_config(bound),
    ));
    engine
}

fn bound_addresses(
    config: &Config,
    udp: &[std::net::UdpSocket],
    tcp: &[std::net::TcpListener],
    tls: &[std::net::TcpListener],
) -> Vec<(SocketAddr, SocketAddr)> {
    // one socket per configured address, in order (UDP where on, else TCP)
    let plain: Vec<SocketAddr> = if config.sip.udp {
        udp.iter().filter_map(|s| s.local_addr().ok()).collect()
    } else {
        tcp.iter().filter_map(|l| l.local_addr().ok()).collect()
    };
    let tls = tls.iter().filter_map(|l| l.local_addr().ok());
    config
        .sip
        .listen
        .iter()
        .copied()
        .zip(plain)
        .chain(config.sip.tls_listen.iter().copied().zip(tls))
        .collect()
}

/// Errors as text: the binary prints them and exits non-zero.
pub mod anyhow_free {
    /// A result whose error is a message for the operator.
    pub type Result<T> = std::result::Result<T, String>;
}

/// The engine's secrets, from the operating system's random source: the seed for tags,
/// branches and entity tags (RFC 3261 §19.3: tags must be unique and unguessable), and the one
/// its hash tables' keys are derived from (hash flooding).
fn seeds() -> (u64, u128) {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("operating system random source");
    let (seed, hash_seed) = b.split_at(8);
    (
        u64::from_le_bytes(seed.try_into().unwrap_or_default()),
        u128::from_le_bytes(hash_seed.try_into().unwrap_or_default()),
    )
}

/// Run the server until SIGINT or SIGTERM.
pub fn run(config: Config, reloader: crate::reload::Reloader) -> anyhow_free::Result<()> {
    std::fs::create_dir_all(&config.storage.data_dir).map_err(|e| {
        format!(
            "cannot create storage.data_dir {}: {e}",
            config.storage.data_dir.display()
        )
    })?;
    let (udp, tcp, mut lines) = bind(&config)?;
    // TLS material first: a bad file stops the start with its name and key
    let tls = if config.tls.configured() {
        Some(crate::tls::server_config(&config.tls)?)
    } else {
        None
    };
    let mut tls_listeners = Vec::new();
    for addr in &config.sip.tls_listen {
        let l =
            sockets::tcp_listener(*addr).map_err(|e| format!("cannot bind SIP TLS {addr}: {e}"))?;
        lines.push(format!(
            "sip/tls {}",
            l.local_addr().map_err(|e| e.to_string())?
        ));
        tls_listeners.push(l);
    }

    // HTTP (XCAP behind the Aggregation Proxy): bound here so its address is known and
    // printed with the SIP ones before `presenced ready`.
    let http_listener = std::net::TcpListener::bind(config.http.listen)
        .map_err(|e| format!("cannot bind HTTP {}: {e}", config.http.listen))?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    lines.push(if config.http.tls {
        format!("https {http_addr}")
    } else {
        format!("http {http_addr}")
    });
    // Document changes for the engine (xcap-diff, pres-rules, RLS lists), in commit order. The
    // channel is bounded: a burst of XCAP writes waits for the engine rather than growing memory.
    let (changes_tx, changes_rx) =
        crossbeam_channel::bounded::<DocumentChange>(config.engine.inbox_capacity);
    let store = SqliteStore::open(&config.storage.data_dir, Some(changes_tx))
        .map_err(|e| format!("storage: {e}"))?;
    // What is stored now, before the HTTP side can write: later writes arrive on the channel.
    let documents = store.snapshot().map_err(|e| format!("storage: {e}"))?;

    let (seed, hash_seed) = seeds();
    // back-end SUBSCRIBEs to other domains go from our first UDP listener
    let local = udp.first().and_then(|s| s.local_addr().ok());
    let bound = bound_addresses(&config, &udp, &tcp, &tls_listeners);
    // the bound address (http.listen may say port 0)
    let xcap_root = format!("http://{http_addr}{}", crate::http::XCAP_ROOT);
    let mut engine = build_engine(&config, (seed, hash_seed), xcap_root, local, &bound);
    let users_version = store.users_version().map_err(|e| format!("storage: {e}"))?;
    let logins = store.logins().map_err(|e| format!("storage: {e}"))?;
    if logins.is_empty() {
        warn!("sip: no users are defined: PUBLISH and SUBSCRIBE are taken as their From says");
    } else {
        info!(
            "sip: digest authentication required ({} logins)",
            logins.len()
        );
    }
    engine.set_users(logins);
    // a presentity and its publication are two entities
    engine.reserve_entities(
        u32::try_from(config.presence.expected_presentities.saturating_mul(2)).unwrap_or(u32::MAX),
    );
    engine.submit_documents(documents);
    // engine time starts at about now (each engine link counts from its own start)
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    engine.set_wall_clock(presenced_systems::Time(0), unix_ms);
    let journal = open_journal(&config.storage, &mut engine)?;

    let tconfig = TransportConfig {
        max_message_bytes: config.sip.max_message_bytes,
        max_tcp_connections: config.sip.max_tcp_connections,
        retry_after_secs: config.engine.retry_after_secs,
        force_rport: config.sip.force_rport,
        batch_window: std::time::Duration::from_micros(config.engine.batch_window_us),
        udp_mtu: config.sip.udp_mtu,
        tcp_connect_fallback: std::time::Duration::from_millis(config.sip.tcp_connect_fallback_ms),
    };
    let (transport, waker) = SipTransport::new(udp, tcp, tls_listeners, tls.clone(), tconfig)
        .map_err(|e| format!("sip transport: {e}"))?;
    let durability = Durability {
        journal: match journal {
            Some(j) => Some(start_journal(j, &config.storage, waker.clone())?),
            None => None,
        },
        high_water: config.engine.inbox_capacity,
    };
    let store = Arc::new(store);
    let users_rx = watch_users(store.clone(), users_version, waker.clone())?;
    let (settings_tx, settings_rx) = crossbeam_channel::unbounded();
    let feed = StoreFeed {
        documents: changes_rx,
        users: users_rx,
        settings: settings_rx,
    };
    let reload = Reload {
        reloader,
        current: config.clone(),
        to_engine: settings_tx,
    };
    let max_batch = config.engine.max_batch;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let started = Started {
        reload,
        metrics: metrics.clone(),
        transport,
        waker: waker.clone(),
        http_listener,
        http_settings: config.xcap.http_settings(),
        http_tls: tls.clone().filter(|_| config.http.tls),
        lines,
    };
    if config.engine.inline {
        // The engine on the I/O thread: it reads committed document changes itself, and the
        // store wakes the loop after each one.
        store.on_change(move || {
            let _ = waker.wake();
        });
        serve(
            started,
            InlineEngine::new(engine, max_batch, feed, metrics, durability),
            store,
        )
    } else {
        let link = EngineThread::spawn(
            engine,
            feed,
            max_batch,
            config.engine.inbox_capacity,
            waker,
            metrics,
            durability,
        )
        .map_err(|e| e.to_string())?;
        serve(started, link, store)
    }
}

/// What start-up has made before the engine link is chosen.
struct Started {
    reload: Reload,
    transport: SipTransport,
    waker: Arc<Waker>,
    http_listener: std::net::TcpListener,
    http_settings: crate::http::HttpSettings,
    http_tls: Option<Arc<rustls::ServerConfig>>,
    lines: Vec<String>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Start XCAP, say ready, and run the I/O loop with `engine` until a signal; the same for
/// either engine link.
fn serve<E: EngineLink>(
    started: Started,
    mut engine: E,
    store: Arc<SqliteStore>,
) -> anyhow_free::Result<()> {
    let Started {
        reload,
        mut transport,
        waker,
        http_listener,
        http_settings,
        http_tls,
        lines,
        metrics,
    } = started;
    let shutdown = Arc::new(AtomicBool::new(false));
    // XCAP starts once the engine can follow its writes.
    // the listeners are bound: readiness now waits for the engine's first snapshot
    metrics.set_transport(transport.stats.clone());
    let http = crate::http::start(http_listener, http_settings, store, metrics, http_tls)
        .map_err(|e| format!("http: {e}"))?;
    install_signals(shutdown.clone(), waker, reload)?;

    // Machine-readable readiness lines (tests and scripts wait for them).
    let mut out = std::io::stdout().lock();
    for l in &lines {
        let _ = writeln!(out, "presenced listening {l}");
    }
    let _ = writeln!(out, "presenced ready");
    let _ = out.flush();
    drop(out);
    info!("presenced ready");

    let result = transport.run(&mut engine, &shutdown);
    info!("shutting down");
    if let Err(e) = http.stop() {
        warn!("{e}");
    }
    let stats = engine.finish()?;
    info!(
        "engine: {} ticks, {} messages in ({} requests, {} responses, {} rejected, {} dropped), {} out",
        stats.ticks,
        stats.messages_in,
        stats.requests,
        stats.responses,
        stats.rejected,
        stats.dropped,
        stats.messages_out
    );
    result.map_err(|e| format!("sip transport: {e}"))
}

/// The state journal under the data directory (`storage.durability` not `off`), replayed into
/// `engine`, whose features must all be in place and whose wall clock must be set.
fn open_journal(
    storage: &crate::config::StorageConfig,
    engine: &mut Engine,
) -> anyhow_free::Result<Option<Journal>> {
    if storage.durability == crate::config::Durability::Off {
        return Ok(None);
    }
    let dir = storage.data_dir.join("state");
    let started = std::time::Instant::now();
    let (journal, records) = Journal::open(&dir, JournalOptions::default())
        .map_err(|e| format!("state journal {}: {e}", dir.display()))?;
    engine.add_feature(presenced_systems::durable::feature());
    let done = engine.restore(presenced_systems::Time(0), &records);
    info!(
        "state: {} publications and {} subscriptions restored ({} and {} expired meanwhile, {} unreadable) from {} records in {:.0?}",
        done.publications,
        done.subscriptions,
        done.expired,
        done.subscriptions_expired,
        done.unreadable,
        records.len(),
        started.elapsed()
    );
    Ok(Some(journal))
}

/// The journal's writer thread, waking the I/O loop after each fsync.
fn start_journal(
    journal: Journal,
    storage: &crate::config::StorageConfig,
    waker: Arc<Waker>,
) -> anyhow_free::Result<Durable> {
    let sync = storage.durability == crate::config::Durability::Sync;
    let mode = if sync {
        WriterMode::Sync {
            interval_us: storage.sync_interval_us,
        }
    } else {
        WriterMode::Async {
            window_ms: storage.async_window_ms,
        }
    };
    let wake = Box::new(move || {
        let _ = waker.wake();
    });
    let writer =
        JournalWriter::spawn(journal, mode, wake).map_err(|e| format!("state journal: {e}"))?;
    Ok(Durable {
        writer: Arc::new(writer),
        hold: sync,
    })
}

/// How often the store is asked whether its users changed (`presenced user add` writes from
/// another process).
const USERS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Follow the store's users: every login again after each change, for the engine (the loop
/// is woken to hand them in).
fn watch_users(
    store: Arc<SqliteStore>,
    mut version: u64,
    waker: Arc<Waker>,
) -> anyhow_free::Result<crossbeam_channel::Receiver<Vec<presenced_systems::auth::UserLogin>>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::Builder::new()
        .name("users".into())
        .spawn(move || {
            loop {
                thread::sleep(USERS_POLL);
                let now = match store.users_version() {
                    Ok(v) => v,
                    Err(e) => {
                        warn!("storage: users: {e}");
                        continue;
                    }
                };
                if now == version {
                    continue;
                }
                match store.logins() {
                    Ok(logins) => {
                        info!("sip: users changed: {} logins", logins.len());
                        if tx.send(logins).is_err() {
                            return;
                        }
                        version = now;
                        let _ = waker.wake();
                    }
                    Err(e) => warn!("storage: users: {e}"),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(rx)
}

/// What SIGHUP needs: how to load the configuration again, the one running, and the engine's
/// channel for the settings it takes live.
struct Reload {
    reloader: crate::reload::Reloader,
    current: Config,
    to_engine: crossbeam_channel::Sender<crate::reload::LiveSettings>,
}

fn install_signals(
    shutdown: Arc<AtomicBool>,
    waker: Arc<Waker>,
    mut reload: Reload,
) -> anyhow_free::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| e.to_string())?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    info!("signal {sig}: reloading the configuration");
                    if let Some(live) = crate::reload::reload(&reload.reloader, &mut reload.current)
                        && reload.to_engine.send(live).is_ok()
                    {
                        let _ = waker.wake();
                    }
                    continue;
                }
                info!("signal {sig}: stopping");
                shutdown.store(true, Ordering::SeqCst);
                if let Err(e) = waker.wake() {
                    warn!("wake: {e}");
                }
                return;
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
