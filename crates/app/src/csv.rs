//! CSV as RFC 4180 writes it: the audit export and the query console's downloads.

/// Quotes a field when it needs it.
pub(crate) fn csv_field(s: &str) -> String {
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
    fn records_end_in_crlf_and_nulls_are_empty() {
        assert_eq!(csv_record([Some("1"), None, Some("a,b")]), "1,,\"a,b\"\r\n");
        assert_eq!(csv_record([]), "\r\n");
    }
}
