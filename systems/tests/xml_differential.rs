//! A differential check for work on the XML parsers: writes, for a corpus of XML documents (the
//! schema examples, every XML literal in the PIDF and XCAP DOM sources, and every one-byte
//! mutation of a few of them), what `pidf::parse` makes of it (entity, element kinds, ids,
//! namespaces and a hash of each element's bytes, of `compose` and of the `parse_with_view` view,
//! or the error) and what the XCAP DOM makes of it (a hash of the re-serialized tree, or the
//! condition and phrase; as a document and as a fragment). Run it on two revisions and compare:
//!
//! ```sh
//! XML_DUMP=/tmp/a.txt cargo test --release -p presenced-systems --test xml_differential -- --ignored
//! ```
//!
//! Each line starts with a hash of its input, so cases present at both revisions can be joined
//! (`join`) even when the sources gain or lose literals. Ignored by default: a tool, not a check.

use std::io::Write;
use std::path::{Path, PathBuf};

use presenced_systems::formats::pidf;
use presenced_systems::xcap::dom;

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn pidf_outcome(bytes: &[u8]) -> String {
    let doc = match pidf::parse(bytes) {
        Ok(doc) => doc,
        Err(e) => return format!("ERR {e:?}"),
    };
    let mut s = format!("OK entity={:?}", doc.entity.as_str());
    for el in doc.elements.iter() {
        s += &format!(
            " [{:?} {:?} {{{}}}{} #{:x}]",
            el.kind,
            el.id(),
            el.namespace(),
            el.local_name(),
            fnv(el.as_bytes())
        );
    }
    s += &format!(
        " compose#{:x}",
        fnv(&pidf::compose("sip:alice@example.com", &[&doc]))
    );
    match pidf::parse_with_view(bytes, &["sip:", "alice@example.com"]) {
        Ok(v) => s += &format!(" view#{:x}", fnv(&v.view().unwrap_or_default())),
        Err(e) => s += &format!(" view ERR {e:?}"),
    }
    match pidf::parse_bytes(bytes::Bytes::copy_from_slice(bytes)) {
        Ok(b) if b.elements.len() == doc.elements.len() => {}
        Ok(_) => s += " bytes DIFFER",
        Err(e) => s += &format!(" bytes ERR {e:?}"),
    }
    s
}

fn xcap_err(e: presenced_systems::xcap::XcapError) -> String {
    format!("ERR {} {:?} {:?}", e.status, e.condition, e.phrase)
}

fn dom_outcome(bytes: &[u8]) -> String {
    let doc = match dom::parse_document(bytes) {
        Ok(doc) => format!("OK #{:x}", fnv(&doc.to_bytes())),
        Err(e) => xcap_err(e),
    };
    let ctx: Vec<dom::Binding> = vec![
        (None, dom::Name::from("urn:ietf:params:xml:ns:pidf")),
        (Some("p".into()), "urn:p".into()),
    ];
    let frag = match dom::parse_fragment(bytes, &ctx) {
        Ok(el) => format!("OK #{:x}", fnv(dom::element_as_written(&el).as_bytes())),
        Err(e) => xcap_err(e),
    };
    format!("{doc} | frag {frag}")
}

fn outcome(bytes: &[u8]) -> String {
    let mut line = format!(
        "{:016x} pidf {} | dom {}",
        fnv(bytes),
        pidf_outcome(bytes),
        dom_outcome(bytes)
    );
    // XML_DUMP_INPUTS=1: each input too, to look at the cases that differ
    if std::env::var_os("XML_DUMP_INPUTS").is_some() {
        line += &format!(" | input {:?}", String::from_utf8_lossy(bytes));
    }
    line
}

/// Reads the Rust string literal starting at `s[0] == '"'`; returns its value and length.
fn plain_literal(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = it.next()?;
                match e {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    '\\' | '"' | '\'' => out.push(e),
                    '\n' => {
                        while it.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                            it.next();
                        }
                    }
                    'x' => {
                        let h: String = (0..2).filter_map(|_| it.next().map(|(_, c)| c)).collect();
                        out.push(u8::from_str_radix(&h, 16).ok()? as char);
                    }
                    'u' => {
                        it.next()?;
                        let mut h = String::new();
                        for (_, c) in it.by_ref() {
                            if c == '}' {
                                break;
                            }
                            h.push(c);
                        }
                        out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Every string literal of a Rust source that looks like XML (starts with `<` after white
/// space, or holds `<?xml`).
fn xml_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = src.as_bytes();
    while i < b.len() {
        let rest = &src[i..];
        let raw_hashes = if rest.starts_with("r#\"") {
            Some(1)
        } else if rest.starts_with("r\"") {
            Some(0)
        } else {
            None
        };
        let found =
            if let Some(h) = raw_hashes.filter(|_| i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
                let open = 2 + h;
                let close = format!("\"{}", "#".repeat(h));
                rest[open..]
                    .find(&close)
                    .map(|e| (rest[open..open + e].to_string(), open + e + close.len()))
            } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
                plain_literal(rest)
            } else if b[i] == b'/' && rest.starts_with("//") {
                // comments: skip to the end of line
                let e = rest.find('\n').unwrap_or(rest.len());
                i += e;
                continue;
            } else {
                None
            };
        match found {
            Some((text, len)) => {
                let t = text.trim_start();
                if t.starts_with('<') || text.contains("<?xml") {
                    out.push(text);
                }
                i += len;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
#[ignore]
fn dump_xml_outcomes() {
    let Some(out) = std::env::var_os("XML_DUMP") else {
        return eprintln!("set XML_DUMP to the output file");
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let examples = root.join("../tests/schemas/examples");
    let mut mutated: Vec<Vec<u8>> = Vec::new();
    for e in std::fs::read_dir(&examples).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "xml") {
            let bytes = std::fs::read(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if ["pidf-rpid.xml", "resource-lists.xml"].contains(&name.as_str()) {
                mutated.push(bytes.clone());
            }
            corpus.push(bytes);
        }
    }
    // the XML literals of the parsers' own sources and tests, wherever they live
    let mut sources = Vec::new();
    for dir in ["src/formats", "src/xml", "src/xcap", "src/sip"] {
        rust_sources(&root.join(dir), &mut sources);
    }
    for p in &sources {
        let src = std::fs::read_to_string(p).unwrap();
        corpus.extend(xml_literals(&src).into_iter().map(String::into_bytes));
    }
    // two small documents of other shapes to mutate: prefixed PIDF with references, and a
    // declaration with an encoding
    mutated.push(
        br#"<?xml version='1.0' encoding='utf-8'?>
<!-- gw -->
<pidf:presence xmlns:pidf="urn:ietf:params:xml:ns:pidf" xmlns:g="urn:g" entity="pres:a@b">
<?gw x?><pidf:tuple id="t&amp;1"><pidf:status><pidf:basic>open</pidf:basic></pidf:status>
<pidf:note xml:lang="en">a &lt; &#x263A; <![CDATA[<x>]]></pidf:note></pidf:tuple>
<g:loc g:p="c" xmlns="urn:d"><city>P</city></g:loc></pidf:presence>
"#
        .to_vec(),
    );
    mutated.push(
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\" standalone=\"yes\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:a@b\"><tuple id=\"x\"><status><basic>closed</basic></status></tuple></presence>".to_vec(),
    );
    corpus.extend(mutated.iter().cloned());
    corpus.sort();
    corpus.dedup();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for bytes in &corpus {
        writeln!(f, "{}", outcome(bytes)).unwrap();
    }
    let subs: &[&[u8]] = &[
        b"\0", b" ", b":", b"<", b">", b"\"", b"'", b"&", b";", b"=", b"/", b"?", b"!", b"-", b"]",
        b"x", b"\xff", b"\xc3", b"#", b"",
    ];
    for bytes in &mutated {
        for i in 0..bytes.len() {
            for s in subs {
                let mut m = bytes[..i].to_vec();
                m.extend_from_slice(s);
                m.extend_from_slice(&bytes[i + 1..]);
                writeln!(f, "{}", outcome(&m)).unwrap();
            }
        }
    }
}
