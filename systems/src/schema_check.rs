//! Test support: validates XML against the schemas in the repository's `tests/schemas/`
//! (xmllint through `validate.sh`), and reads the example documents kept beside them. Every
//! document presenced emits must pass; a missing xmllint fails the check, it never skips.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository's schema directory.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/schemas"))
}

/// Runs `validate.sh` on `xml`; Err carries its exit status and complaint.
pub fn validate(xml: &[u8]) -> Result<(), String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    // One file per call: tests run on parallel threads, and in several processes.
    let path = std::env::temp_dir().join(format!(
        "presenced-schema-{}-{}.xml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, xml).expect("write temp file");
    let out = Command::new("bash")
        .arg(dir().join("validate.sh"))
        .arg(&path)
        .output()
        .expect("run validate.sh");
    let _ = std::fs::remove_file(&path);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Panics with the document and xmllint's complaint unless `xml` validates.
pub fn assert_valid(xml: &[u8]) {
    if let Err(why) = validate(xml) {
        panic!(
            "document does not validate: {why}\n--- document ---\n{}",
            String::from_utf8_lossy(xml)
        );
    }
}

/// An example document from `tests/schemas/examples`.
pub fn example(name: &str) -> Vec<u8> {
    let p = dir().join("examples").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
