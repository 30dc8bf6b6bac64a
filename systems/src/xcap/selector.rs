//! XCAP node selectors (RFC 4825 §6.3): a path of steps from the document element, each a
//! name (QName or `*`) with an optional position `[n]` and/or attribute test `[@a="v"]`,
//! optionally ending in an attribute selector `@a` or the namespace selector `namespace::*`.
//! Unprefixed element names are in the usage's default namespace (§6.3), prefixes come from
//! the request's `xmlns()` bindings (§6.4); unprefixed attribute names have no namespace.

use super::dom::{Element, split_qname};
use super::error::XcapError;

/// Which elements a step's name matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameTest {
    /// `*`: any element.
    Any,
    /// A QName resolved to (namespace, local name).
    Name {
        /// Namespace name (None: no namespace).
        ns: Option<String>,
        /// Local name.
        local: String,
    },
}

impl NameTest {
    /// Whether `el` passes the name test.
    pub fn matches(&self, el: &Element) -> bool {
        match self {
            NameTest::Any => true,
            NameTest::Name { ns, local } => {
                &*el.local == local.as_str() && el.ns.as_deref() == ns.as_deref()
            }
        }
    }
}

/// An attribute test `[@name="value"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrTest {
    /// Attribute namespace (None for unprefixed).
    pub ns: Option<String>,
    /// Attribute local name.
    pub local: String,
    /// Value to compare with (unescaped).
    pub value: String,
}

impl AttrTest {
    /// Whether `el` carries the attribute with this value.
    pub fn matches(&self, el: &Element) -> bool {
        el.attr_ns(self.ns.as_deref(), &self.local) == Some(self.value.as_str())
    }
}

/// One location step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Name test.
    pub name: NameTest,
    /// `[n]`: the n-th (1-based) element among the siblings that pass the name test.
    pub position: Option<usize>,
    /// `[@a="v"]`, applied after the position (as XPath does for `name[n][@a="v"]`).
    pub attr: Option<AttrTest>,
    /// The step as written (decoded), for building ancestor URIs.
    pub text: String,
}

/// What follows the element steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// `@name`: an attribute of the selected element.
    Attribute {
        /// Attribute namespace (None for unprefixed).
        ns: Option<String>,
        /// Attribute local name.
        local: String,
        /// As written.
        text: String,
    },
    /// `namespace::*`: the namespace bindings in scope at the selected element.
    Namespaces,
}

/// A parsed node selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelector {
    /// Element steps, the first one matching the document element.
    pub steps: Vec<Step>,
    /// Attribute or namespace selector, if any.
    pub terminal: Option<Terminal>,
}

impl NodeSelector {
    /// Parses `text` (decoded), resolving prefixes with `bindings` and unprefixed element
    /// names to `default_ns`. 400 when the selector does not follow the grammar or uses an
    /// unbound prefix.
    pub fn parse(
        text: &str,
        bindings: &[(String, String)],
        default_ns: &str,
    ) -> Result<NodeSelector, XcapError> {
        let parts = split_steps(text)?;
        let mut steps = Vec::with_capacity(parts.len());
        let mut terminal = None;
        let n = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let last = i + 1 == n;
            if last && part == "namespace::*" {
                terminal = Some(Terminal::Namespaces);
                break;
            }
            if let Some(att) = part.strip_prefix('@') {
                if !last {
                    return Err(bad("attribute selector must be last"));
                }
                let (ns, local) = resolve_attr_name(att, bindings)?;
                terminal = Some(Terminal::Attribute {
                    ns,
                    local,
                    text: part.to_string(),
                });
                break;
            }
            steps.push(parse_step(part, bindings, default_ns)?);
        }
        if steps.is_empty() {
            return Err(bad("node selector has no element step"));
        }
        Ok(NodeSelector { steps, terminal })
    }

    /// The node selector text of the first `n` steps (for ancestor URIs).
    pub fn steps_text(&self, n: usize) -> String {
        let mut s = String::new();
        for (i, st) in self.steps.iter().take(n).enumerate() {
            if i > 0 {
                s.push('/');
            }
            s.push_str(&st.text);
        }
        s
    }
}

fn bad(why: &str) -> XcapError {
    XcapError::bad_request(format!("bad node selector: {why}"))
}

/// Splits on '/' outside quotes and brackets.
fn split_steps(text: &str) -> Result<Vec<&str>, XcapError> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth < 0 {
                    return Err(bad("unbalanced ']'"));
                }
            }
            (None, '/') if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() || depth != 0 {
        return Err(bad("unterminated predicate"));
    }
    out.push(&text[start..]);
    if out.iter().any(|s| s.is_empty()) {
        return Err(bad("empty step"));
    }
    Ok(out)
}

fn resolve_attr_name(
    qname: &str,
    bindings: &[(String, String)],
) -> Result<(Option<String>, String), XcapError> {
    let (prefix, local) = split_qname(qname).ok_or_else(|| bad("invalid attribute name"))?;
    let ns = match prefix {
        None => None,
        Some("xml") => Some(super::dom::XML_NS.to_string()),
        Some(p) => Some(lookup_binding(bindings, p)?.to_string()),
    };
    Ok((ns, local.to_string()))
}

fn lookup_binding<'a>(bindings: &'a [(String, String)], p: &str) -> Result<&'a str, XcapError> {
    bindings
        .iter()
        .rev()
        .find(|(q, _)| q == p)
        .map(|(_, n)| n.as_str())
        .ok_or_else(|| XcapError::bad_request(format!("prefix '{p}' has no xmlns() binding")))
}

fn parse_step(
    part: &str,
    bindings: &[(String, String)],
    default_ns: &str,
) -> Result<Step, XcapError> {
    let name_end = part.find('[').unwrap_or(part.len());
    let name = &part[..name_end];
    let name_test = if name == "*" {
        NameTest::Any
    } else {
        let (prefix, local) = split_qname(name).ok_or_else(|| bad("invalid element name"))?;
        let ns = match prefix {
            None if default_ns.is_empty() => None,
            None => Some(default_ns.to_string()),
            Some(p) => Some(lookup_binding(bindings, p)?.to_string()),
        };
        NameTest::Name {
            ns,
            local: local.to_string(),
        }
    };
    let mut rest = &part[name_end..];
    let mut position = None;
    let mut attr = None;
    while !rest.is_empty() {
        let inner_end = closing_bracket(rest).ok_or_else(|| bad("unterminated predicate"))?;
        let inner = &rest[1..inner_end];
        rest = &rest[inner_end + 1..];
        if let Some(a) = inner.strip_prefix('@') {
            if attr.is_some() {
                return Err(bad("more than one attribute test"));
            }
            let (qn, value) = a
                .split_once('=')
                .ok_or_else(|| bad("attribute test without '='"))?;
            let value = value.trim();
            let q = value
                .chars()
                .next()
                .ok_or_else(|| bad("attribute test without value"))?;
            if !(q == '"' || q == '\'') || value.len() < 2 || !value.ends_with(q) {
                return Err(bad("attribute value must be quoted"));
            }
            let raw = &value[1..value.len() - 1];
            if raw.contains(q) || raw.contains('<') {
                return Err(bad("bad attribute value"));
            }
            let value = quick_xml::escape::unescape(raw)
                .map_err(|_| bad("bad reference in attribute value"))?
                .into_owned();
            let (ns, local) = resolve_attr_name(qn.trim(), bindings)?;
            attr = Some(AttrTest { ns, local, value });
        } else {
            // RFC 4825 §6.3: position is 1*DIGIT, and comes before the attribute test.
            if attr.is_some() || position.is_some() {
                return Err(bad("position must come first, once"));
            }
            if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("predicate is neither a position nor an attribute test"));
            }
            // `[0]` follows the grammar (1*DIGIT) and, as in XPath, selects nothing.
            let n: usize = inner.parse().map_err(|_| bad("position too large"))?;
            position = Some(n);
        }
    }
    Ok(Step {
        name: name_test,
        position,
        attr,
        text: part.to_string(),
    })
}

/// Index of the ']' closing the predicate that `s` starts with ('['), quotes respected.
fn closing_bracket(s: &str) -> Option<usize> {
    if !s.starts_with('[') {
        return None;
    }
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ']') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Applies one step to the children of `parent`: indices (into `children`) of the matches.
pub fn step_matches(parent: &Element, step: &Step, out: &mut Vec<usize>) {
    let mut k = 0usize;
    for (i, child) in parent.child_elements() {
        if !step.name.matches(child) {
            continue;
        }
        k += 1;
        if let Some(p) = step.position {
            if k < p {
                continue;
            }
            if k > p {
                break;
            }
        }
        if step.attr.as_ref().is_none_or(|a| a.matches(child)) {
            out.push(i);
        }
    }
}

/// Whether the document element passes the first step (it is the only element child of the
/// document node, so its position is 1).
fn root_matches(root: &Element, step: &Step) -> bool {
    step.name.matches(root)
        && step.position.is_none_or(|p| p == 1)
        && step.attr.as_ref().is_none_or(|a| a.matches(root))
}

/// The elements `steps` select, as paths of child indices below the document element.
pub fn select_all(root: &Element, steps: &[Step]) -> Vec<Vec<usize>> {
    let Some((first, rest)) = steps.split_first() else {
        return Vec::new();
    };
    if !root_matches(root, first) {
        return Vec::new();
    }
    let mut current: Vec<Vec<usize>> = vec![Vec::new()];
    let mut scratch = Vec::new();
    for step in rest {
        let mut next = Vec::new();
        for path in &current {
            let Some(el) = root.at(path) else { continue };
            scratch.clear();
            step_matches(el, step, &mut scratch);
            for &i in &scratch {
                let mut p = Vec::with_capacity(path.len() + 1);
                p.extend_from_slice(path);
                p.push(i);
                next.push(p);
            }
        }
        if next.is_empty() {
            return next;
        }
        current = next;
    }
    current
}

/// The single element `steps` select (RFC 4825 §6.3: a selector that matches no element or
/// more than one selects nothing).
pub fn select_one(root: &Element, steps: &[Step]) -> Option<Vec<usize>> {
    let mut all = select_all(root, steps);
    if all.len() == 1 { all.pop() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xcap::dom::parse_document;

    const RL: &str = "urn:ietf:params:xml:ns:resource-lists";

    fn sel(s: &str) -> NodeSelector {
        NodeSelector::parse(s, &[("x".into(), "urn:x".into())], RL).unwrap()
    }

    #[test]
    fn grammar() {
        let s = sel("resource-lists/list[@name=\"a/b]\"]/entry[2][@uri='sip:x']/@uri");
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[1].attr.as_ref().unwrap().value, "a/b]");
        assert_eq!(s.steps[2].position, Some(2));
        assert_eq!(
            s.terminal,
            Some(Terminal::Attribute {
                ns: None,
                local: "uri".into(),
                text: "@uri".into()
            })
        );
        let s = sel("*/x:foo/namespace::*");
        assert_eq!(s.steps[0].name, NameTest::Any);
        assert_eq!(
            s.steps[1].name,
            NameTest::Name {
                ns: Some("urn:x".into()),
                local: "foo".into()
            }
        );
        assert_eq!(s.terminal, Some(Terminal::Namespaces));
        let s = sel("a/b[@x:c=\"&quot;v&quot;\"]");
        let a = s.steps[1].attr.as_ref().unwrap();
        assert_eq!(
            (a.ns.as_deref(), a.value.as_str()),
            (Some("urn:x"), "\"v\"")
        );
    }

    #[test]
    fn grammar_errors() {
        for bad in [
            "",
            "a//b",
            "a/@x/b",
            "a[@x=1]",
            "a[@x=\"1\"][2]",
            "a[1",
            "y:a",
            "a/namespace::*/b",
            "a[foo]",
            "1a",
        ] {
            let e = NodeSelector::parse(bad, &[], RL).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }

    #[test]
    fn selection() {
        let doc = parse_document(
            format!(
                "<resource-lists xmlns='{RL}' xmlns:x='urn:x'>\
                 <list name='a'><entry uri='1'/><x:foo/><entry uri='2'/></list>\
                 <list name='b'><entry uri='1'/></list></resource-lists>"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = &doc.root;
        assert_eq!(select_one(r, &sel("resource-lists").steps), Some(vec![]));
        assert_eq!(select_one(r, &sel("resource-lists/list").steps), None);
        assert_eq!(
            select_one(r, &sel("resource-lists/list[2]/entry").steps),
            Some(vec![1, 0])
        );
        assert_eq!(
            select_one(r, &sel("resource-lists/list[@name=\"a\"]/entry[2]").steps),
            Some(vec![0, 2])
        );
        assert_eq!(
            select_one(r, &sel("resource-lists/list[1]/*[2]").steps),
            Some(vec![0, 1])
        );
        assert_eq!(
            select_one(r, &sel("resource-lists/list[1]/entry[2][@uri=\"1\"]").steps),
            None
        );
        // Not unique at an intermediate step but unique in the end (XPath node-sets).
        assert_eq!(
            select_one(r, &sel("resource-lists/list/entry[@uri=\"2\"]").steps),
            Some(vec![0, 2])
        );
        assert_eq!(select_one(r, &sel("other").steps), None);
        assert_eq!(select_one(r, &sel("*[1]").steps), Some(vec![]));
        assert_eq!(select_one(r, &sel("resource-lists/list[0]").steps), None);
    }
}
