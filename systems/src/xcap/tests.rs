//! End-to-end tests of the XCAP core through [`apply`](super::apply), and the schema
//! validation helper shared by the module's tests.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `xml` to a temporary file, runs `/work/shared/schemas/validate.sh` on it and
/// asserts it validates, and that the text contains `must_contain`.
pub(crate) fn assert_valid(xml: &[u8], must_contain: &str) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let text = String::from_utf8_lossy(xml);
    assert!(text.contains(must_contain), "missing {must_contain:?} in:\n{text}");
    let path = std::env::temp_dir().join(format!(
        "presenced-xcap-{}-{}.xml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, xml).expect("write temp file");
    let out = std::process::Command::new("/work/shared/schemas/validate.sh")
        .arg(&path)
        .output()
        .expect("run validate.sh");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "validate.sh failed ({:?}):\n{}\n{}\n--- document ---\n{text}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
