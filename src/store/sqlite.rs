//! The embedded store: one SQLite file, `<data_dir>/presenced.sqlite`, in WAL mode.
//!
//! Concurrency: one connection behind a mutex. SQLite admits one writer at a time anyway, XCAP
//! traffic is light (people editing buddy lists), and a single connection makes the commit
//! order and the order of change events the same thing: an event is sent while the lock that
//! committed it is still held. Callers run these blocking methods off the async reactor
//! (`spawn_blocking`), so an fsync never stalls the HTTP connections. Other processes (the
//! `presenced user` command) open the same file; WAL lets them read while we write and the
//! busy timeout covers their short writes.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Committed, DocKey, DocMeta, DocumentChange, Store, StoreError, StoreRead, StoredDoc,
    UserRecord, WriteOp,
};
use presenced_systems::auth::UserLogin;

/// File name below the data directory.
pub const FILE_NAME: &str = "presenced.sqlite";

/// Plain SQL that PostgreSQL also accepts (BLOB becomes BYTEA there). The global tree is stored
/// with xui = '' so that the primary key has no NULL in it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    auid TEXT NOT NULL,
    xui TEXT NOT NULL,
    path TEXT NOT NULL,
    etag TEXT NOT NULL,
    content BLOB NOT NULL,
    modified BIGINT NOT NULL,
    PRIMARY KEY (auid, xui, path)
);
CREATE INDEX IF NOT EXISTS documents_by_xui ON documents (xui);
CREATE TABLE IF NOT EXISTS users (
    uri TEXT NOT NULL PRIMARY KEY,
    username TEXT NOT NULL,
    realm TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_by_name ON users (username, realm);
CREATE TABLE IF NOT EXISTS user_logins (
    username TEXT NOT NULL,
    realm TEXT NOT NULL,
    uri TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    PRIMARY KEY (username, realm)
);
CREATE INDEX IF NOT EXISTS user_logins_by_uri ON user_logins (uri);
CREATE TABLE IF NOT EXISTS users_version (v BIGINT NOT NULL);
INSERT INTO users_version (v) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM users_version);
CREATE TABLE IF NOT EXISTS service_uris (
    uri TEXT NOT NULL,
    xui TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (uri, xui, path)
);
CREATE INDEX IF NOT EXISTS service_uris_by_doc ON service_uris (xui, path);
";

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    changes: Option<Sender<DocumentChange>>,
    /// Called after each announced change (the inline engine's loop is woken this way).
    on_change: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fresh strong entity tag: 128 random bits, hex. Random tags are never reused, also across
/// restarts and after a document is deleted and created again (a counter would need care there).
pub fn new_etag() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("operating system random source");
    let mut s = String::with_capacity(32);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Count a change of the users (in the transaction that makes it): a running server reads
/// the count to learn of users added by `presenced user add` from another process.
fn bump_users_version(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute("UPDATE users_version SET v = v + 1", [])?;
    Ok(())
}

fn xui_col(key: &DocKey) -> &str {
    key.xui.as_deref().unwrap_or("")
}

impl SqliteStore {
    /// Open (or create) `<data_dir>/presenced.sqlite`. `changes` receives every committed
    /// write; a closed channel (no engine attached) drops them.
    pub fn open(
        data_dir: &Path,
        changes: Option<Sender<DocumentChange>>,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Dir {
            path: data_dir.to_owned(),
            source,
        })?;
        let conn = Connection::open(data_dir.join(FILE_NAME))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // synchronous=FULL: every commit fsyncs the WAL before the client sees 200/201 and its
        // ETag. NORMAL would survive a process crash too, but a power loss could then roll
        // back writes we acknowledged (and ETags clients hold). XCAP writes are rare, so the
        // extra fsync per write is cheap insurance.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        index_services_once(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            changes,
            on_change: std::sync::OnceLock::new(),
        })
    }

    /// Call `f` after every announced change, once it is on the channel (set once, before the
    /// HTTP side starts): whoever reads the channel without blocking on it gets woken.
    pub fn on_change(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_change.set(Box::new(f));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back
        // on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn user_documents(
    conn: &Connection,
    auid: &str,
) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT xui, path, content FROM documents WHERE auid = ?1 AND xui <> '' ORDER BY xui, path",
    )?;
    let rows = st.query_map(params![auid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

struct TxRead<'a>(&'a Connection);

impl StoreRead for TxRead<'_> {
    fn user_documents(&self, auid: &str) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        user_documents(self.0, auid)
    }

    fn service_uri_holders(&self, uri: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .0
            .prepare_cached("SELECT xui, path FROM service_uris WHERE uri = ?1")?;
        let rows = st.query_map(params![uri], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Keep the service URI index of the rls-services document `xui`/`path` in step with its new
/// content (None: deleted), inside the write's transaction.
fn index_services(
    conn: &Connection,
    xui: &str,
    path: &str,
    content: Option<&[u8]>,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM service_uris WHERE xui = ?1 AND path = ?2",
        params![xui, path],
    )?;
    for uri in content.map(super::service_uris).unwrap_or_default() {
        conn.execute(
            "INSERT OR IGNORE INTO service_uris (uri, xui, path) VALUES (?1, ?2, ?3)",
            params![uri, xui, path],
        )?;
    }
    Ok(())
}

/// A store written before the index existed: index its rls-services documents once.
fn index_services_once(conn: &Connection) -> Result<(), StoreError> {
    let indexed: i64 = conn.query_row("SELECT COUNT(*) FROM service_uris", [], |r| r.get(0))?;
    if indexed > 0 {
        return Ok(());
    }
    for (xui, path, content) in user_documents(conn, super::RLS_AUID)? {
        index_services(conn, &xui, &path, Some(&content))?;
    }
    Ok(())
}

fn get_doc(conn: &Connection, key: &DocKey) -> Result<Option<StoredDoc>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT etag, content, modified FROM documents WHERE auid = ?1 AND xui = ?2 AND path = ?3",
    )?;
    Ok(st
        .query_row(params![key.auid, xui_col(key), key.path], |r| {
            Ok(StoredDoc {
                etag: r.get(0)?,
                content: r.get(1)?,
                modified: r.get(2)?,
            })
        })
        .optional()?)
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        uri: r.get(0)?,
        username: r.get(1)?,
        realm: r.get(2)?,
        ha1_md5: r.get(3)?,
        ha1_sha256: r.get(4)?,
        aliases: Vec::new(),
    })
}

impl Store for SqliteStore {
    fn get(&self, key: &DocKey) -> Result<Option<StoredDoc>, StoreError> {
        get_doc(&self.lock(), key)
    }

    fn modify(
        &self,
        key: &DocKey,
        decide: &mut dyn FnMut(Option<&StoredDoc>, &dyn StoreRead) -> WriteOp,
    ) -> Result<Option<Committed>, StoreError> {
        let mut conn = self.lock();
        // IMMEDIATE: take the write lock before reading, so that no other process can change
        // the document between our read and our write.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = get_doc(&tx, key)?;
        let op = decide(current.as_ref(), &TxRead(&tx));
        let previous_etag = current.map(|d| d.etag);
        let (new_etag, content) = match op {
            WriteOp::Keep => return Ok(None),
            WriteOp::Put(bytes) => {
                let etag = new_etag();
                tx.execute(
                    "INSERT INTO documents (auid, xui, path, etag, content, modified)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (auid, xui, path)
                     DO UPDATE SET etag = excluded.etag, content = excluded.content,
                                   modified = excluded.modified",
                    params![key.auid, xui_col(key), key.path, etag, bytes, now_secs()],
                )?;
                if key.auid == super::RLS_AUID && key.xui.is_some() {
                    index_services(&tx, xui_col(key), &key.path, Some(&bytes))?;
                }
                (Some(etag), Some(Bytes::from(bytes)))
            }
            WriteOp::Delete => {
                tx.execute(
                    "DELETE FROM documents WHERE auid = ?1 AND xui = ?2 AND path = ?3",
                    params![key.auid, xui_col(key), key.path],
                )?;
                if key.auid == super::RLS_AUID && key.xui.is_some() {
                    index_services(&tx, xui_col(key), &key.path, None)?;
                }
                (None, None)
            }
        };
        tx.commit()?;
        if let Some(tx) = &self.changes {
            // Still under the connection lock: events leave in commit order. A closed channel
            // means no engine is listening; the change is then simply not announced.
            let _ = tx.send(DocumentChange {
                auid: key.auid.clone(),
                xui: key.xui.clone(),
                doc_path: key.path.clone(),
                selector: key.selector.clone(),
                previous_etag: previous_etag.clone(),
                new_etag: new_etag.clone(),
                content,
            });
            if let Some(wake) = self.on_change.get() {
                wake();
            }
        }
        Ok(Some(Committed {
            previous_etag,
            new_etag,
        }))
    }

    fn snapshot(&self) -> Result<Vec<DocumentChange>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT auid, xui, path, etag, content FROM documents ORDER BY auid, xui, path",
        )?;
        let rows = st.query_map([], |r| {
            let (auid, xui, path): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let (etag, content): (String, Vec<u8>) = (r.get(3)?, r.get(4)?);
            Ok((auid, xui, path, etag, content))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (auid, xui, path, etag, content) = row?;
            let xui = (!xui.is_empty()).then_some(xui);
            let uri = presenced_systems::xcap::XcapUri {
                auid: auid.clone(),
                scope: match &xui {
                    Some(x) => presenced_systems::xcap::Scope::User(x.clone()),
                    None => presenced_systems::xcap::Scope::Global,
                },
                doc_path: path.clone(),
                node: None,
                ns_bindings: Vec::new(),
            };
            out.push(DocumentChange {
                auid,
                xui,
                doc_path: path,
                selector: uri.document_selector(),
                previous_etag: None,
                new_etag: Some(etag),
                content: Some(Bytes::from(content)),
            });
        }
        Ok(out)
    }

    fn user_documents(&self, auid: &str) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        user_documents(&self.lock(), auid)
    }

    fn list_user(&self, xui: &str) -> Result<Vec<DocMeta>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT auid, path, etag, modified, length(content) FROM documents
             WHERE xui = ?1 ORDER BY auid, path",
        )?;
        let rows = st.query_map(params![xui], |r| {
            Ok(DocMeta {
                auid: r.get(0)?,
                path: r.get(1)?,
                etag: r.get(2)?,
                modified: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let (added, _) = self.put_users(std::slice::from_ref(user))?;
        Ok(added == 1)
    }

    fn put_users(&self, users: &[UserRecord]) -> Result<(usize, usize), StoreError> {
        if users.is_empty() {
            return Ok((0, 0));
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            // prepared once for the whole batch: a bulk import is one statement run per row
            let mut exists = tx.prepare_cached("SELECT 1 FROM users WHERE uri = ?1")?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO users (uri, username, realm, ha1_md5, ha1_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (uri) DO UPDATE SET username = excluded.username,
                     realm = excluded.realm, ha1_md5 = excluded.ha1_md5,
                     ha1_sha256 = excluded.ha1_sha256",
            )?;
            let mut drop_aliases = tx.prepare_cached("DELETE FROM user_logins WHERE uri = ?1")?;
            let mut alias = tx.prepare_cached(
                "INSERT INTO user_logins (username, realm, uri, ha1_md5, ha1_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (username, realm) DO UPDATE SET uri = excluded.uri,
                     ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256",
            )?;
            for user in users {
                if !exists.exists(params![user.uri])? {
                    added += 1;
                }
                upsert.execute(params![
                    user.uri,
                    user.username,
                    user.realm,
                    user.ha1_md5,
                    user.ha1_sha256
                ])?;
                drop_aliases.execute(params![user.uri])?;
                for a in &user.aliases {
                    alias.execute(params![
                        a.username,
                        a.realm,
                        user.uri,
                        a.ha1_md5,
                        a.ha1_sha256
                    ])?;
                }
            }
        }
        // once for the whole batch: a running server reloads its users once
        bump_users_version(&tx)?;
        tx.commit()?;
        Ok((added, users.len() - added))
    }

    fn delete_user(&self, uri: &str) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM user_logins WHERE uri = ?1", params![uri])?;
        let gone = tx.execute("DELETE FROM users WHERE uri = ?1", params![uri])? > 0;
        bump_users_version(&tx)?;
        tx.commit()?;
        Ok(gone)
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT uri, username, realm, ha1_md5, ha1_sha256 FROM users ORDER BY uri",
        )?;
        let rows = st.query_map([], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn user_by_username(
        &self,
        username: &str,
        realm: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT uri, username, realm, ha1_md5, ha1_sha256 FROM users
             WHERE username = ?1 AND realm = ?2
             UNION ALL
             SELECT uri, username, realm, ha1_md5, ha1_sha256 FROM user_logins
             WHERE username = ?1 AND realm = ?2
             LIMIT 1",
        )?;
        Ok(st
            .query_row(params![username, realm], user_row)
            .optional()?)
    }

    fn logins(&self) -> Result<Vec<UserLogin>, StoreError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT uri, username, realm, ha1_md5, ha1_sha256 FROM users
             UNION ALL
             SELECT uri, username, realm, ha1_md5, ha1_sha256 FROM user_logins",
        )?;
        let rows = st.query_map([], |r| {
            Ok(UserLogin {
                identity: r.get(0)?,
                username: r.get(1)?,
                realm: r.get(2)?,
                ha1_md5: r.get(3)?,
                ha1_sha256: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn users_version(&self) -> Result<u64, StoreError> {
        let v: i64 = self
            .lock()
            .query_row("SELECT v FROM users_version", [], |r| r.get(0))?;
        Ok(v as u64)
    }

    fn has_users(&self) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT 1 FROM users LIMIT 1", [], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("presenced-store-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn key(xui: Option<&str>, path: &str) -> DocKey {
        DocKey {
            auid: "resource-lists".into(),
            xui: xui.map(Into::into),
            path: path.into(),
            selector: format!("resource-lists/users/{}/{path}", xui.unwrap_or("-")),
        }
    }

    #[test]
    fn the_service_uri_index_follows_writes_and_is_built_for_an_older_store() {
        let d = dir("svc");
        let s = SqliteStore::open(&d, None).unwrap();
        let k = DocKey {
            auid: "rls-services".into(),
            ..key(Some("sip:a@x"), "index")
        };
        let doc = |uris: &[&str]| {
            let services: String = uris
                .iter()
                .map(|u| format!("<service uri=\"{u}\"><list/></service>"))
                .collect();
            format!("<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\">{services}</rls-services>")
                .into_bytes()
        };
        let holders =
            |s: &SqliteStore, uri: &str| TxRead(&s.lock()).service_uri_holders(uri).unwrap();
        let put = |s: &SqliteStore, body: Vec<u8>| {
            s.modify(&k, &mut |_, _| WriteOp::Put(body.clone()))
                .unwrap();
        };
        put(&s, doc(&["sip:l1@x", "sip:l2@x"]));
        let a = vec![("sip:a@x".to_owned(), "index".to_owned())];
        assert_eq!(holders(&s, "sip:l1@x"), a);
        put(&s, doc(&["sip:l2@x"]));
        assert!(
            holders(&s, "sip:l1@x").is_empty(),
            "a replaced document drops its old URIs"
        );
        assert_eq!(holders(&s, "sip:l2@x"), a);
        // a store from before the index: it is built at open
        s.lock().execute("DELETE FROM service_uris", []).unwrap();
        drop(s);
        let s = SqliteStore::open(&d, None).unwrap();
        assert_eq!(holders(&s, "sip:l2@x"), a);
        s.modify(&k, &mut |_, _| WriteOp::Delete).unwrap();
        assert!(holders(&s, "sip:l2@x").is_empty());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn write_read_delete_with_events_in_order() {
        let d = dir("rw");
        let (tx, rx) = crossbeam_channel::unbounded();
        let s = SqliteStore::open(&d, Some(tx)).unwrap();
        let k = key(Some("sip:a@x"), "index");
        assert_eq!(s.get(&k).unwrap(), None);
        let c1 = s
            .modify(&k, &mut |cur, _| {
                assert!(cur.is_none());
                WriteOp::Put(b"<a/>".to_vec())
            })
            .unwrap()
            .unwrap();
        assert_eq!(c1.previous_etag, None);
        let doc = s.get(&k).unwrap().unwrap();
        assert_eq!(doc.content, b"<a/>");
        assert_eq!(Some(&doc.etag), c1.new_etag.as_ref());
        let c2 = s
            .modify(&k, &mut |_, _| WriteOp::Put(b"<b/>".to_vec()))
            .unwrap()
            .unwrap();
        assert_ne!(c2.new_etag, c1.new_etag, "a new ETag per write");
        assert_eq!(
            s.modify(&k, &mut |_, _| WriteOp::Keep).unwrap(),
            None,
            "Keep writes nothing"
        );
        let c3 = s.modify(&k, &mut |_, _| WriteOp::Delete).unwrap().unwrap();
        assert_eq!(c3.new_etag, None);
        let ev: Vec<DocumentChange> = rx.try_iter().collect();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].new_etag, c1.new_etag);
        assert_eq!(ev[1].previous_etag, c1.new_etag);
        assert_eq!(ev[1].content.as_deref(), Some(&b"<b/>"[..]));
        assert_eq!(ev[2].previous_etag, c2.new_etag);
        assert_eq!(ev[2].content, None);
        assert_eq!(ev[0].xui.as_deref(), Some("sip:a@x"));
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn global_and_user_trees_are_apart_and_reopen_keeps_everything() {
        let d = dir("reopen");
        let etag;
        {
            let s = SqliteStore::open(&d, None).unwrap();
            s.modify(&key(None, "index"), &mut |_, _| WriteOp::Put(b"g".to_vec()))
                .unwrap();
            etag = s
                .modify(&key(Some("sip:a@x"), "index"), &mut |_, _| {
                    WriteOp::Put(b"u".to_vec())
                })
                .unwrap()
                .unwrap()
                .new_etag
                .unwrap();
            let all = s.user_documents("resource-lists").unwrap();
            assert_eq!(all.len(), 1, "global documents are not users' documents");
        }
        let s = SqliteStore::open(&d, None).unwrap();
        let doc = s.get(&key(Some("sip:a@x"), "index")).unwrap().unwrap();
        assert_eq!(
            (doc.etag.as_str(), &doc.content[..]),
            (etag.as_str(), &b"u"[..])
        );
        assert_eq!(s.get(&key(None, "index")).unwrap().unwrap().content, b"g");
        let l = s.list_user("sip:a@x").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].size, 1);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn bulk_users_in_one_transaction_and_one_version() {
        use crate::store::Login;
        let d = dir("bulk");
        let s = SqliteStore::open(&d, None).unwrap();
        let v0 = s.users_version().unwrap();
        let user = |i: u32, ha1: &str| UserRecord {
            uri: format!("sip:u{i}@example.com"),
            username: format!("u{i}@example.com"),
            realm: "presenced".into(),
            ha1_md5: ha1.into(),
            ha1_sha256: ha1.into(),
            aliases: vec![Login {
                username: format!("u{i}"),
                realm: "example.com".into(),
                ha1_md5: format!("{ha1}-alias"),
                ha1_sha256: format!("{ha1}-alias"),
            }],
        };
        let batch: Vec<UserRecord> = (0..20_000).map(|i| user(i, "aa")).collect();
        let t = std::time::Instant::now();
        assert_eq!(s.put_users(&batch).unwrap(), (20_000, 0));
        // a bulk import is one transaction: thousands per second, not one fsync per user
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        assert_eq!(
            s.users_version().unwrap(),
            v0 + 1,
            "one change for the batch"
        );
        assert_eq!(s.users().unwrap().len(), 20_000);
        assert_eq!(s.logins().unwrap().len(), 40_000);
        let alias = s.user_by_username("u7", "example.com").unwrap().unwrap();
        assert_eq!(
            (alias.uri.as_str(), alias.ha1_md5.as_str()),
            ("sip:u7@example.com", "aa-alias")
        );
        // again with new credentials for some and a new user: replaced, not duplicated
        let again = vec![user(7, "bb"), user(20_000, "cc")];
        assert_eq!(s.put_users(&again).unwrap(), (1, 1));
        assert_eq!(s.users_version().unwrap(), v0 + 2);
        assert_eq!(s.users().unwrap().len(), 20_001);
        assert_eq!(s.logins().unwrap().len(), 40_002);
        let u7 = s.user_by_username("u7", "example.com").unwrap().unwrap();
        assert_eq!(u7.ha1_md5, "bb-alias");
        // an empty batch changes nothing
        assert_eq!(s.put_users(&[]).unwrap(), (0, 0));
        assert_eq!(s.users_version().unwrap(), v0 + 2);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn users_round_trip() {
        use crate::store::Login;
        let d = dir("users");
        let s = SqliteStore::open(&d, None).unwrap();
        assert!(!s.has_users().unwrap());
        let mut u = UserRecord {
            uri: "sip:alice@example.com".into(),
            username: "alice@example.com".into(),
            realm: "presenced".into(),
            ha1_md5: "00".into(),
            ha1_sha256: "11".into(),
            aliases: vec![Login {
                username: "alice".into(),
                realm: "example.com".into(),
                ha1_md5: "33".into(),
                ha1_sha256: "44".into(),
            }],
        };
        assert!(s.put_user(&u).unwrap());
        u.ha1_md5 = "22".into();
        assert!(!s.put_user(&u).unwrap(), "second add replaces");
        assert!(s.has_users().unwrap());
        let main = UserRecord {
            aliases: Vec::new(),
            ..u.clone()
        };
        assert_eq!(
            s.user_by_username("alice@example.com", "presenced")
                .unwrap(),
            Some(main.clone())
        );
        // the alias finds the same user with the alias's own HA1 values
        let alias = s.user_by_username("alice", "example.com").unwrap().unwrap();
        assert_eq!(
            (
                alias.uri.as_str(),
                alias.ha1_md5.as_str(),
                alias.ha1_sha256.as_str()
            ),
            ("sip:alice@example.com", "33", "44")
        );
        assert_eq!(
            s.user_by_username("alice@example.com", "other").unwrap(),
            None
        );
        assert_eq!(s.users().unwrap(), vec![main]);
        assert!(s.delete_user("sip:alice@example.com").unwrap());
        assert!(!s.delete_user("sip:alice@example.com").unwrap());
        assert!(!s.has_users().unwrap());
        assert_eq!(s.user_by_username("alice", "example.com").unwrap(), None);
        std::fs::remove_dir_all(&d).ok();
    }
}
