//! Storage of XDM documents and XCAP users behind the [`Store`] trait, with an embedded SQLite
//! implementation ([`SqliteStore`]) as the default; a PostgreSQL one can sit behind the same
//! trait for several nodes. The store knows nothing about XML or XCAP semantics: it keeps bytes
//! under a key, hands out strong ETags, and runs a caller's read-check-write closure inside one
//! transaction. Every committed write is announced as a [`DocumentChange`], in commit order.

pub mod journal;
pub mod sqlite;

pub use sqlite::SqliteStore;

/// The key of one stored document: application usage, owner (None: the `global` tree) and the
/// document path below the scope. `selector` is the document selector the XCAP core derived
/// from the same request (carried into change events, not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocKey {
    pub auid: String,
    pub xui: Option<String>,
    pub path: String,
    pub selector: String,
}

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// Strong entity tag, unquoted (the HTTP layer quotes it).
    pub etag: String,
    pub content: Vec<u8>,
    /// Time of the last write, Unix seconds.
    pub modified: i64,
}

/// What the directory listing of one user needs about each of their documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocMeta {
    pub auid: String,
    pub path: String,
    pub etag: String,
    pub modified: i64,
    pub size: u64,
}

/// One XCAP user: a SIP URI with its digest credentials (HA1 values only, never a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub uri: String,
    /// Digest username: the URI without its scheme (`alice@example.com`).
    pub username: String,
    pub realm: String,
    /// Lower-case hex of MD5(username:realm:password).
    pub ha1_md5: String,
    /// Lower-case hex of SHA-256(username:realm:password).
    pub ha1_sha256: String,
    /// Other names the same user logs in with, each in its realm: the user part in the
    /// user's SIP domain (`alice` in `example.com`), as xcaplib-based clients and OpenXCAP do.
    pub aliases: Vec<Login>,
}

/// One digest login of a user: a username in a realm, and its HA1 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// What a read-check-write closure decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Leave the document as it is (a failed precondition, an XCAP error...).
    Keep,
    /// Store these bytes as the document, under a fresh ETag.
    Put(Vec<u8>),
    /// Remove the document.
    Delete,
}

/// The outcome of a committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub previous_etag: Option<String>,
    /// None when the document was deleted.
    pub new_etag: Option<String>,
}

/// A committed change to a document, sent to the engine (xcap-diff, pres-rules, RLS lists) in
/// commit order: the engine's own type, so that nothing is translated on the way.
pub use presenced_systems::xdm::DocumentChange;

/// A storage failure (I/O, corruption, a locked database past the busy timeout).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Reads available inside a write transaction (for constraints that span documents, such as
/// RFC 4826 §4.4.3's unique service URIs).
pub trait StoreRead {
    /// Every document of one application usage in the users' trees: (xui, path, content).
    fn user_documents(&self, auid: &str) -> Result<Vec<(String, String, Vec<u8>)>, StoreError>;

    /// The rls-services documents (xui, path) that define the service `uri` (RFC 4826
    /// §4.4.3: at most one should): an index lookup, not a read of every document.
    fn service_uri_holders(&self, uri: &str) -> Result<Vec<(String, String)>, StoreError>;
}

/// The application usage whose documents define resource list services.
pub const RLS_AUID: &str = "rls-services";

/// The `uri` attributes of the `<service>` elements of an rls-services document.
pub fn service_uris(doc: &[u8]) -> Vec<String> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let Ok(text) = std::str::from_utf8(doc) else {
        return Vec::new();
    };
    let mut r = quick_xml::reader::NsReader::from_str(text);
    let mut out = Vec::new();
    loop {
        match r.read_resolved_event() {
            Ok((ns, Event::Start(e) | Event::Empty(e))) => {
                let in_rls = matches!(ns, ResolveResult::Bound(n)
                    if n.0 == "urn:ietf:params:xml:ns:rls-services");
                if in_rls && e.local_name().into_inner() == "service" {
                    for a in e.attributes().flatten() {
                        if a.key.0 == "uri"
                            && let Ok(v) = a.normalized_value(quick_xml::XmlVersion::default())
                        {
                            out.push(v.trim().to_owned());
                        }
                    }
                }
            }
            Ok((_, Event::Eof)) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// The document and user store.
pub trait Store: Send + Sync {
    /// The document under `key`, if any.
    fn get(&self, key: &DocKey) -> Result<Option<StoredDoc>, StoreError>;

    /// Read-check-write in one transaction: `decide` sees the current document (and a reader
    /// of the others) and says what to write; a write gets a fresh ETag, commits, and is
    /// announced as a [`DocumentChange`] before the next write can commit. Returns None when
    /// `decide` chose [`WriteOp::Keep`].
    fn modify(
        &self,
        key: &DocKey,
        decide: &mut dyn FnMut(Option<&StoredDoc>, &dyn StoreRead) -> WriteOp,
    ) -> Result<Option<Committed>, StoreError>;

    /// Every document of one application usage in the users' trees: (xui, path, content).
    fn user_documents(&self, auid: &str) -> Result<Vec<(String, String, Vec<u8>)>, StoreError>;

    /// Every stored document as a creation event (no previous tag): what the engine loads at
    /// start before any write can happen.
    fn snapshot(&self) -> Result<Vec<DocumentChange>, StoreError>;

    /// The documents of one user, every usage, sorted by usage and path.
    fn list_user(&self, xui: &str) -> Result<Vec<DocMeta>, StoreError>;

    /// Add a user or replace their credentials; true when the user is new.
    fn put_user(&self, user: &UserRecord) -> Result<bool, StoreError>;
    /// Add or replace many users in one transaction (a bulk import), counting one change of
    /// the users (one reload by a running server); (added, updated). A URI given twice is
    /// stored as its last record (counted as added, then updated).
    fn put_users(&self, users: &[UserRecord]) -> Result<(usize, usize), StoreError>;
    /// Remove a user (their documents stay); false when there was none.
    fn delete_user(&self, uri: &str) -> Result<bool, StoreError>;
    /// Every user, sorted by URI.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// The user with this digest username in this realm, its main login or an alias; the
    /// record's username, realm and HA1 values are those of the login that matched.
    fn user_by_username(
        &self,
        username: &str,
        realm: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Every digest login of every user (main logins and aliases), for SIP authentication.
    fn logins(&self) -> Result<Vec<presenced_systems::auth::UserLogin>, StoreError>;
    /// A number that changes with every change of the users, also one made by another
    /// process.
    fn users_version(&self) -> Result<u64, StoreError>;
    /// Whether any user is defined (authentication is required as soon as one is).
    fn has_users(&self) -> Result<bool, StoreError>;
}
