//! RFC 4180 cells for the CSV export, with spreadsheet formulas defused.
//!
//! A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is what
//! Excel, LibreOffice and Google Sheets run as a formula ("CSV injection"). Audit
//! entries carry client-chosen text (paths, user agents), so such a text cell gets a
//! leading `'`: spreadsheets show the text, and a reader can strip the one character.

/// Records end in CRLF (RFC 4180 §2.1).
pub(crate) const END: &[u8] = b"\r\n";

/// A text cell: neutralised, then quoted if it holds a comma, a quote or a line break.
pub(crate) fn text(out: &mut Vec<u8>, value: &str) {
    let defuse = value
        .as_bytes()
        .first()
        .is_some_and(|b| matches!(b, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
    let quote = value
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if quote {
        out.push(b'"');
    }
    if defuse {
        out.push(b'\'');
    }
    for byte in value.bytes() {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    if quote {
        out.push(b'"');
    }
}

/// An optional text cell: empty when absent.
pub(crate) fn optional(out: &mut Vec<u8>, value: Option<&str>) {
    if let Some(value) = value {
        text(out, value);
    }
}

/// A number cell (never quoted, never neutralised: it is ours, not a client's).
pub(crate) fn number(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value}");
}

pub(crate) fn comma(out: &mut Vec<u8>) {
    out.push(b',');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: &str) -> String {
        let mut out = Vec::new();
        text(&mut out, value);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn cells_are_quoted_only_when_they_must_be() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), r#""a,b""#);
        assert_eq!(cell(r#"say "hi""#), r#""say ""hi""""#);
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn formula_leading_cells_are_defused() {
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("=a,b"), r#""'=a,b""#);
        assert_eq!(cell("a=b"), "a=b");
    }
}
