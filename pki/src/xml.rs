//! Safe XML parsing: size, BOM, encoding, DTD and depth checks before the tree is built.
//!
//! The tree is a [`roxmltree::Document`] (namespace-aware; character and predefined entity
//! references resolved; line endings and attribute values normalized as XML 1.0 says;
//! comments and processing instructions kept). A DOCTYPE is never processed: any
//! `<!DOCTYPE` is refused with `dtd_forbidden` before parsing, so no entity is ever
//! expanded.

use crate::error::{err, Error, ErrorCode, Result};

/// Largest XML document accepted (bytes).
pub const MAX_XML_BYTES: usize = 256 * 1024;
/// Deepest element nesting accepted (the document element is depth 1).
pub const MAX_XML_DEPTH: usize = 64;
/// Most nodes (elements, texts, comments, PIs) in one document.
pub const MAX_XML_NODES: u32 = 200_000;

/// Limits applied by [`parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_nodes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_XML_BYTES,
            max_depth: MAX_XML_DEPTH,
            max_nodes: MAX_XML_NODES,
        }
    }
}

/// Parses with the default [`Limits`].
pub fn parse(bytes: &[u8]) -> Result<roxmltree::Document<'_>> {
    parse_with(bytes, Limits::default())
}

/// Parses `bytes` as a UTF-8 XML document. Refusals, in this order: `too_large`, `bom`,
/// `malformed_xml` (not UTF-8, or a non-UTF-8 encoding declaration), `dtd_forbidden`,
/// `too_deep`, then `malformed_xml` / `too_large` (node limit) from the parser.
pub fn parse_with(bytes: &[u8], limits: Limits) -> Result<roxmltree::Document<'_>> {
    if bytes.len() > limits.max_bytes {
        return err(
            ErrorCode::TooLarge,
            format!(
                "document of {} bytes exceeds the limit of {} bytes",
                bytes.len(),
                limits.max_bytes
            ),
        );
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF])
        || bytes.starts_with(&[0xFE, 0xFF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0x00, 0x00, 0xFE, 0xFF])
    {
        return err(ErrorCode::Bom, "a leading byte-order mark is refused");
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::new(ErrorCode::MalformedXml, format!("not UTF-8: {e}")))?;
    check_encoding_decl(text)?;
    prescan(bytes, limits.max_depth)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
    };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Error::new(ErrorCode::DtdForbidden, "DTDs are refused"),
        roxmltree::Error::NodesLimitReached
        | roxmltree::Error::AttributesLimitReached
        | roxmltree::Error::NamespacesLimitReached => {
            Error::new(ErrorCode::TooLarge, format!("document too large: {e}"))
        }
        other => Error::new(ErrorCode::MalformedXml, other.to_string()),
    })
}

/// Refuses an XML declaration naming an encoding other than UTF-8.
fn check_encoding_decl(text: &str) -> Result<()> {
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    if !rest.starts_with([' ', '\t', '\r', '\n']) {
        return Ok(()); // a PI such as <?xml-stylesheet ...?>; the parser judges it
    }
    let Some(end) = rest.find("?>") else {
        return err(ErrorCode::MalformedXml, "unterminated XML declaration");
    };
    let decl = &rest[..end];
    if let Some(i) = decl.find("encoding") {
        let v = decl[i + "encoding".len()..].trim_start();
        let Some(v) = v.strip_prefix('=') else {
            return err(ErrorCode::MalformedXml, "bad encoding declaration");
        };
        let v = v.trim_start();
        let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return err(ErrorCode::MalformedXml, "bad encoding declaration");
        };
        let Some(close) = v[1..].find(q) else {
            return err(ErrorCode::MalformedXml, "bad encoding declaration");
        };
        let enc = &v[1..1 + close];
        if !enc.eq_ignore_ascii_case("UTF-8") && !enc.eq_ignore_ascii_case("UTF8") {
            return err(
                ErrorCode::MalformedXml,
                format!("encoding {enc:?} is not supported (UTF-8 only)"),
            );
        }
    }
    Ok(())
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Result<usize> {
    b.get(from..)
        .and_then(|s| s.windows(pat.len()).position(|w| w == pat))
        .map(|p| from + p)
        .ok_or_else(|| Error::new(ErrorCode::MalformedXml, "unterminated markup"))
}

/// A lexical pass that refuses any DOCTYPE and measures element nesting, so that the
/// (recursive) tree builder never sees a document deeper than the limit.
fn prescan(b: &[u8], max_depth: usize) -> Result<()> {
    let mut i = 0;
    let mut depth = 0usize;
    while i < b.len() {
        let Some(off) = b[i..].iter().position(|&c| c == b'<') else {
            break;
        };
        i += off;
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            i = find(b, i + 4, b"-->")? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(b, i + 9, b"]]>")? + 3;
        } else if rest.starts_with(b"<!") {
            if rest.len() >= 9 && rest[2..9].eq_ignore_ascii_case(b"DOCTYPE") {
                return err(
                    ErrorCode::DtdForbidden,
                    "a DOCTYPE is refused (no DTD or entity is ever processed)",
                );
            }
            return err(ErrorCode::MalformedXml, "unexpected <! markup");
        } else if rest.starts_with(b"<?") {
            i = find(b, i + 2, b"?>")? + 2;
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = find(b, i + 2, b">")? + 1;
        } else {
            // a start tag: scan to '>' outside quoted attribute values
            let mut j = i + 1;
            let mut quote: Option<u8> = None;
            loop {
                let Some(&c) = b.get(j) else {
                    return err(ErrorCode::MalformedXml, "unterminated start tag");
                };
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => break,
                    None => {}
                }
                j += 1;
            }
            let empty = b[j - 1] == b'/';
            if !empty {
                depth += 1;
                if depth > max_depth {
                    return err(
                        ErrorCode::TooDeep,
                        format!("element nesting exceeds the limit of {max_depth}"),
                    );
                }
            }
            i = j + 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(x: &[u8]) -> ErrorCode {
        match parse(x) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(code(b"\xEF\xBB\xBF<a/>"), ErrorCode::Bom);
        assert_eq!(code(b"<!DOCTYPE a><a/>"), ErrorCode::DtdForbidden);
        assert_eq!(code(b"<a><b></a>"), ErrorCode::MalformedXml);
        assert_eq!(
            code(b"<?xml version='1.0' encoding='windows-1251'?><a/>"),
            ErrorCode::MalformedXml
        );
        let deep = format!("{}{}", "<a>".repeat(65), "</a>".repeat(65));
        assert_eq!(code(deep.as_bytes()), ErrorCode::TooDeep);
        let ok = format!("{}{}", "<a>".repeat(64), "</a>".repeat(64));
        assert!(parse(ok.as_bytes()).is_ok());
        let big = format!("<a>{}</a>", "x".repeat(MAX_XML_BYTES));
        assert_eq!(code(big.as_bytes()), ErrorCode::TooLarge);
        assert_eq!(code(b"\xff<a/>"), ErrorCode::MalformedXml);
    }

    #[test]
    fn comments_and_attributes_do_not_confuse_depth() {
        let x = b"<a><!-- <b><b><b> --><c x='>' y=\"/>\"/><![CDATA[<d>]]></a>";
        assert!(parse(x).is_ok());
    }
}
