//! Inclusive Canonical XML 1.0 (<https://www.w3.org/TR/2001/REC-xml-c14n-20010315>), with
//! and without comments, computed from a parsed tree (never by editing strings).
//!
//! The parser ([`crate::xml::parse`]) already did what XML 1.0 processing demands:
//! line endings normalized to `#xA`, character and predefined entity references
//! resolved, CDATA sections replaced by their characters, attribute values normalized.
//! This module then renders, per the C14N rules:
//!
//! * the XML declaration and whitespace outside the document element dropped; comments
//!   and PIs outside it separated from it by `#xA`;
//! * empty elements as start/end tag pairs;
//! * namespace declarations: on the apex element of the rendered subset every in-scope
//!   namespace (so a subtree inherits its ancestors' declarations), below it only those
//!   whose value differs from the parent's (superfluous ones dropped); `xmlns=""` only
//!   where a default namespace in scope of the parent is undeclared; sorted by prefix,
//!   the default namespace first;
//! * attributes sorted by (namespace URI, local name), unqualified ones first; on the apex
//!   of a subtree the `xml:*` attributes of its ancestors are inherited;
//! * text escaped as `&amp; &lt; &gt; &#xD;`, attribute values as
//!   `&amp; &lt; &quot; &#x9; &#xA; &#xD;`;
//! * comments kept only in the "with comments" variant.
//!
//! Two document subsets are supported: the whole document minus one element (the
//! enveloped-signature transform) and one element's subtree (SignedInfo).

use std::collections::BTreeMap;

use roxmltree::{Document, Node, NodeId, NodeType};

use crate::error::Result;

/// The XML namespace (`xml:` prefix).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Parses `xml` (with [`crate::xml::parse`]'s limits) and canonicalizes the whole document.
pub fn canonicalize(xml: &[u8], with_comments: bool) -> Result<Vec<u8>> {
    let doc = crate::xml::parse(xml)?;
    Ok(canonicalize_document(&doc, with_comments, None))
}

/// Canonicalizes the whole document, leaving out `exclude` (and its descendants) if given:
/// the enveloped-signature transform followed by C14N.
pub fn canonicalize_document(
    doc: &Document<'_>,
    with_comments: bool,
    exclude: Option<Node<'_, '_>>,
) -> Vec<u8> {
    canonicalize_document_inserting(doc, with_comments, exclude, None)
}

/// Canonicalizes the subtree rooted at `element` (e.g. SignedInfo): the apex renders all
/// namespaces in scope (inherited from its ancestors) and inherits ancestors' `xml:*`
/// attributes.
pub fn canonicalize_subtree(element: Node<'_, '_>, with_comments: bool) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        input: element.document().input_text(),
        with_comments,
        exclude: None,
        insert: None,
    };
    w.subtree(element);
    w.out
}

/// Like [`canonicalize_document`], and writes `insert` verbatim just before the end tag of
/// the document element (used by the signer to append the Signature as its last child).
pub(crate) fn canonicalize_document_inserting(
    doc: &Document<'_>,
    with_comments: bool,
    exclude: Option<Node<'_, '_>>,
    insert: Option<&[u8]>,
) -> Vec<u8> {
    let root_el = doc.root_element();
    let mut w = Writer {
        out: Vec::new(),
        input: doc.input_text(),
        with_comments,
        exclude: exclude.map(|n| n.id()),
        insert: insert.map(|i| (root_el.id(), i)),
    };
    let mut after_root = false;
    for child in doc.root().children() {
        match child.node_type() {
            NodeType::Element => {
                if Some(child.id()) != w.exclude {
                    w.subtree(child);
                }
                after_root = true;
            }
            NodeType::Comment | NodeType::PI => {
                if child.is_comment() && !with_comments {
                    continue;
                }
                if after_root {
                    w.out.push(b'\n');
                }
                w.leaf(child);
                if !after_root {
                    w.out.push(b'\n');
                }
            }
            // whitespace outside the document element is dropped
            NodeType::Text | NodeType::Root => {}
        }
    }
    w.out
}

struct Writer<'a> {
    out: Vec<u8>,
    input: &'a str,
    with_comments: bool,
    exclude: Option<NodeId>,
    insert: Option<(NodeId, &'a [u8])>,
}

enum Step<'a, 'input> {
    Open(Node<'a, 'input>),
    Close(Node<'a, 'input>),
}

/// The qualified name of an element as written (`prefix:local` or `local`).
fn element_qname<'i>(input: &'i str, n: Node<'_, '_>) -> &'i str {
    let r = n.range();
    let s = input.get(r.start + 1..r.end).unwrap_or("");
    let end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(s.len());
    &s[..end]
}

/// In-scope namespaces of an element: prefix ("" = default) -> URI ("" = none).
fn in_scope<'a>(n: Node<'a, '_>) -> BTreeMap<&'a str, &'a str> {
    let mut m = BTreeMap::new();
    for ns in n.namespaces() {
        m.insert(ns.name().unwrap_or(""), ns.uri());
    }
    m
}

impl<'a> Writer<'a> {
    fn subtree(&mut self, top: Node<'_, '_>) {
        let mut stack = vec![Step::Open(top)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Open(n) => match n.node_type() {
                    NodeType::Element => {
                        if Some(n.id()) == self.exclude {
                            continue;
                        }
                        self.start_tag(n, n == top);
                        stack.push(Step::Close(n));
                        for c in n.children().rev() {
                            stack.push(Step::Open(c));
                        }
                    }
                    NodeType::Text => escape_text(&mut self.out, n.text().unwrap_or("")),
                    NodeType::Comment | NodeType::PI => self.leaf(n),
                    NodeType::Root => {}
                },
                Step::Close(n) => {
                    if let Some((id, bytes)) = self.insert {
                        if id == n.id() {
                            self.out.extend_from_slice(bytes);
                        }
                    }
                    self.out.extend_from_slice(b"</");
                    self.out
                        .extend_from_slice(element_qname(self.input, n).as_bytes());
                    self.out.push(b'>');
                }
            }
        }
    }

    fn leaf(&mut self, n: Node<'_, '_>) {
        match n.node_type() {
            NodeType::Comment if self.with_comments => {
                self.out.extend_from_slice(b"<!--");
                self.out
                    .extend_from_slice(n.text().unwrap_or("").as_bytes());
                self.out.extend_from_slice(b"-->");
            }
            NodeType::PI => {
                if let Some(pi) = n.pi() {
                    self.out.extend_from_slice(b"<?");
                    self.out.extend_from_slice(pi.target.as_bytes());
                    if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
                        self.out.push(b' ');
                        self.out.extend_from_slice(v.as_bytes());
                    }
                    self.out.extend_from_slice(b"?>");
                }
            }
            _ => {}
        }
    }

    fn start_tag(&mut self, n: Node<'_, '_>, is_apex: bool) {
        self.out.push(b'<');
        self.out
            .extend_from_slice(element_qname(self.input, n).as_bytes());

        // namespace declarations
        let own = in_scope(n);
        let parent_ctx = match (is_apex, n.parent_element()) {
            (false, Some(p)) => in_scope(p),
            _ => BTreeMap::new(),
        };
        for (prefix, uri) in &own {
            let parent_uri = parent_ctx.get(prefix).copied();
            let render = if prefix.is_empty() {
                // default namespace: "" means none
                *uri != parent_uri.unwrap_or("")
            } else {
                parent_uri != Some(*uri)
            };
            if render {
                if prefix.is_empty() {
                    self.out.extend_from_slice(b" xmlns=\"");
                } else {
                    self.out.extend_from_slice(b" xmlns:");
                    self.out.extend_from_slice(prefix.as_bytes());
                    self.out.extend_from_slice(b"=\"");
                }
                escape_attr(&mut self.out, uri);
                self.out.push(b'"');
            }
        }

        // attributes: (namespace URI, local name) order
        let mut attrs: Vec<(&str, &str, &str, &str)> = n
            .attributes()
            .map(|a| {
                (
                    a.namespace().unwrap_or(""),
                    a.name(),
                    self.input.get(a.range_qname()).unwrap_or(""),
                    a.value(),
                )
            })
            .collect();
        if is_apex {
            // xml:* attributes are inherited from the nearest ancestor that has them
            for anc in n.ancestors().skip(1).filter(|a| a.is_element()) {
                for a in anc.attributes() {
                    if a.namespace() == Some(XML_NS)
                        && !attrs.iter().any(|x| x.0 == XML_NS && x.1 == a.name())
                    {
                        attrs.push((
                            XML_NS,
                            a.name(),
                            self.input.get(a.range_qname()).unwrap_or(""),
                            a.value(),
                        ));
                    }
                }
            }
        }
        attrs.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
        for (_, _, qname, value) in attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(qname.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape_attr(&mut self.out, value);
            self.out.push(b'"');
        }
        self.out.push(b'>');
    }
}

fn escape_text(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

fn escape_attr(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\t' => out.extend_from_slice(b"&#x9;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}
