//! CSV as RFC 4180 writes it: the audit export and the query console's downloads.
//!
//! A spreadsheet opening the file runs a cell that starts with `=`, `+`, `-` or `@` (or a
//! tab or carriage return before one) as a formula; query results and audit details are
//! other people's text, so such a cell gets a leading `'`, which spreadsheets show as text.

/// The characters a spreadsheet may read a formula after, at the start of a cell.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Quotes a field when it needs it, and neutralises one a spreadsheet would run.
pub(crate) fn csv_field(s: &str) -> String {
    if s.starts_with(FORMULA_START) {
        return format!("\"'{}\"", s.replace('"', "\"\""));
    }
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One record with its line ending (CRLF, as the RFC writes). `None` (SQL `NULL`) is an empty
/// field.
pub(crate) fn csv_record<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut line = fields
        .into_iter()
        .map(|f| f.map(csv_field).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        for cell in ["=1+1", "+1", "-2", "@SUM(A1)", "\t=1", "\r=1"] {
            let field = csv_field(cell);
            assert!(field.starts_with("\"'"), "{cell:?} -> {field:?}");
        }
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("a=1"), "a=1");
    }

    #[test]
    fn records_end_in_crlf_and_nulls_are_empty() {
        assert_eq!(csv_record([Some("1"), None, Some("a,b")]), "1,,\"a,b\"\r\n");
        assert_eq!(csv_record([]), "\r\n");
    }
}
