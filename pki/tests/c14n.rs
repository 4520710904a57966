//! Inclusive C14N 1.0 against the W3C recommendation's examples (section 3), with the
//! DOCTYPE lines removed (this parser refuses DTDs; the outputs below are adjusted where
//! the DTD contributed a default attribute or an attribute type), and subset cases.

use kezek_pki::c14n::{canonicalize, canonicalize_document, canonicalize_subtree};
use kezek_pki::xml;

fn c14n(input: &str, with_comments: bool) -> String {
    String::from_utf8(canonicalize(input.as_bytes(), with_comments).expect("canonicalizes"))
        .expect("utf-8")
}

// 3.1 PIs, Comments, and Outside of Document Element
const EX31: &str = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->\n";

#[test]
fn spec_3_1_without_comments() {
    assert_eq!(
        c14n(EX31, false),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
    );
}

#[test]
fn spec_3_1_with_comments() {
    assert_eq!(
        c14n(EX31, true),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->"
    );
}

// 3.2 Whitespace in Document Content
#[test]
fn spec_3_2_whitespace_in_content() {
    let input = "<doc>\n   <clean>   </clean>\n   <dirty>   A   B   </dirty>\n   <mixed>\n      A\n      <clean>   </clean>\n      B\n      <dirty>   A   B   </dirty>\n      C\n   </mixed>\n</doc>\n";
    assert_eq!(c14n(input, false), input.trim_end());
}

// 3.3 Start and End Tags
#[test]
fn spec_3_3_start_and_end_tags() {
    let input = r#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
    // as in the spec, minus e9's attr="default" that came from the DTD
    let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6 xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9 xmlns:a="http://www.ietf.org"></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
    assert_eq!(c14n(input, false), expected);
}

// 3.4 Character Modifications and Character References
#[test]
fn spec_3_4_character_references() {
    let input = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n   <normNames attr='   A   &#x20;&#13;&#xa;&#9;   B   '/>\n</doc>";
    // normNames is CDATA here (no DTD declares it NMTOKENS), so it is not collapsed
    let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n   <normNames attr=\"   A    &#xD;&#xA;&#x9;   B   \"></normNames>\n</doc>";
    assert_eq!(c14n(input, false), expected);
}

// 3.6 UTF-8 Encoding (input in UTF-8: other encodings are refused)
#[test]
fn spec_3_6_utf8() {
    assert_eq!(c14n("<doc>&#169;</doc>", false), "<doc>\u{a9}</doc>");
}

#[test]
fn line_endings_are_normalized_and_cr_references_kept() {
    assert_eq!(
        c14n("<a b=\"x\r\ny\">1\r\n2\r3&#13;&#xD;\n</a>\r\n", false),
        "<a b=\"x y\">1\n2\n3&#xD;&#xD;\n</a>"
    );
}

#[test]
fn text_and_attribute_escaping() {
    assert_eq!(
        c14n(
            "<a t=\"&lt;&gt;&amp;&quot;'&#9;&#10;&#13;\">&lt;&gt;&amp;\"'</a>",
            false
        ),
        "<a t=\"&lt;>&amp;&quot;'&#x9;&#xA;&#xD;\">&lt;&gt;&amp;\"'</a>"
    );
}

#[test]
fn attributes_sorted_by_namespace_uri_then_local_name() {
    assert_eq!(
        c14n(
            "<a xmlns:z=\"urn:a\" xmlns:y=\"urn:b\" y:k=\"1\" z:k=\"2\" b=\"3\" a=\"4\"/>",
            false
        ),
        "<a xmlns:y=\"urn:b\" xmlns:z=\"urn:a\" a=\"4\" b=\"3\" z:k=\"2\" y:k=\"1\"></a>"
    );
}

#[test]
fn superfluous_namespace_declarations_are_dropped() {
    assert_eq!(
        c14n(
            "<a xmlns=\"urn:d\" xmlns:p=\"urn:p\"><p:b xmlns:p=\"urn:p\" xmlns=\"urn:d\"><c xmlns=\"\"/></p:b></a>",
            false
        ),
        "<a xmlns=\"urn:d\" xmlns:p=\"urn:p\"><p:b><c xmlns=\"\"></c></p:b></a>"
    );
}

#[test]
fn comments_inside_content() {
    let x = "<a>1<!--x-->2<b><!-- y --></b></a>";
    assert_eq!(c14n(x, true), "<a>1<!--x-->2<b><!-- y --></b></a>");
    assert_eq!(c14n(x, false), "<a>12<b></b></a>");
}

#[test]
fn subtree_inherits_ancestor_namespaces_and_xml_attributes() {
    let x = "<r xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" xml:lang=\"kk\"><ds:S xml:space=\"preserve\"><ds:I Id=\"1\"><ds:M/><!--c--></ds:I></ds:S></r>";
    let doc = xml::parse(x.as_bytes()).expect("parses");
    let si = doc
        .descendants()
        .find(|n| n.tag_name().name() == "I")
        .expect("I");
    assert_eq!(
        String::from_utf8(canonicalize_subtree(si, false)).expect("utf-8"),
        "<ds:I xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" Id=\"1\" xml:lang=\"kk\" xml:space=\"preserve\"><ds:M></ds:M></ds:I>"
    );
    assert_eq!(
        String::from_utf8(canonicalize_subtree(si, true)).expect("utf-8"),
        "<ds:I xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" Id=\"1\" xml:lang=\"kk\" xml:space=\"preserve\"><ds:M></ds:M><!--c--></ds:I>"
    );
}

#[test]
fn document_minus_an_element() {
    let x = "<?xml version=\"1.0\"?>\n<!--top-->\n<r a=\"1\">\n  <v>x</v>\n  <S xmlns=\"urn:s\"><i/></S>\n</r>\n<!--end-->\n";
    let doc = xml::parse(x.as_bytes()).expect("parses");
    let s = doc
        .descendants()
        .find(|n| n.tag_name().name() == "S")
        .expect("S");
    assert_eq!(
        String::from_utf8(canonicalize_document(&doc, true, Some(s))).expect("utf-8"),
        "<!--top-->\n<r a=\"1\">\n  <v>x</v>\n  \n</r>\n<!--end-->"
    );
}

#[test]
fn c14n_is_idempotent() {
    for (x, wc) in [(EX31, true), (EX31, false)] {
        let once = canonicalize(x.as_bytes(), wc).expect("once");
        let twice = canonicalize(&once, wc).expect("twice");
        assert_eq!(once, twice);
    }
}
