//! CSV as RFC 4180 writes it (CRLF, a cell quoted when it holds a comma, a
//! quote or a line break, quotes doubled), with text a spreadsheet would run
//! as a formula neutralised as OWASP recommends against CSV injection: text
//! that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
//! leading `'` and is quoted. Numbers and booleans are written as JSON
//! writes them (a negative number stays a number).

use serde_json::Value;

/// Appends one text cell, neutralised and quoted when it must be.
pub fn push_text(out: &mut String, text: &str) {
    let neutralise = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if !neutralise && !text.contains([',', '"', '\n', '\r']) {
        out.push_str(text);
        return;
    }
    out.push('"');
    if neutralise {
        out.push('\'');
    }
    for ch in text.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
}

/// Appends one JSON leaf as a cell: null empty, numbers and booleans as
/// they are, text through [`push_text`], anything else as its JSON text.
pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_text(out, s),
        other => push_text(out, &other.to_string()),
    }
}

/// Appends one row of values, ended by CRLF.
pub fn push_row<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a Value>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_value(out, cell);
    }
    out.push_str("\r\n");
}

/// Appends the header row.
pub fn push_header<'a>(out: &mut String, names: impl IntoIterator<Item = &'a str>) {
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_text(out, name);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(cells: &[Value]) -> String {
        let mut out = String::new();
        push_row(&mut out, cells);
        out
    }

    #[test]
    fn cells_are_quoted_as_rfc_4180_says() {
        assert_eq!(row(&[json!("a"), json!("b c"), json!(null)]), "a,b c,\r\n");
        assert_eq!(
            row(&[json!("x,y"), json!("say \"hi\""), json!("two\nlines")]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
        assert_eq!(
            row(&[json!(-42), json!(true), json!(1.5)]),
            "-42,true,1.5\r\n"
        );
    }

    #[test]
    fn text_a_spreadsheet_would_run_is_neutralised() {
        for cell in ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            let out = row(&[json!(cell)]);
            assert!(out.starts_with("\"'"), "{cell:?} became {out:?}");
        }
        assert_eq!(
            row(&[json!("=HYPERLINK(\"http://x\")")]),
            "\"'=HYPERLINK(\"\"http://x\"\")\"\r\n"
        );
        assert_eq!(row(&[json!("a=b")]), "a=b\r\n");
    }
}
