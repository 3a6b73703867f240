//! What can be requested: tables of the Glue catalog, whole or by column, and where query
//! results go. Parsing happens here, once, at the edge; deeper code trusts these types.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Most resources one request may name.
pub const MAX_RESOURCES: usize = 20;
/// Longest Glue database, table or column name.
const MAX_NAME_LEN: usize = 255;

/// One requested table, with all of its columns (`columns == None`) or some of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub database: String,
    pub table: String,
    /// Sorted and deduplicated; `None` means every column of the table.
    pub columns: Option<Vec<String>>,
}

impl ResourceSpec {
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

impl fmt::Display for ResourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.columns {
            None => write!(f, "{}.{}", self.database, self.table),
            Some(cols) => write!(f, "{}.{}: {}", self.database, self.table, cols.join(", ")),
        }
    }
}

/// Glue stores names in lower case; Athena and Lake Formation match them that way. `at` says
/// where the name was (`line 2`, `resources[1]`).
fn parse_identifier(raw: &str, what: &str, at: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::new(format!(
            "{at}: the {what} name is empty"
        )));
    }
    if name.len() > MAX_NAME_LEN || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ValidationError::new(format!(
            "{at}: `{name}` is not a valid {what} name (letters, digits and _ only)"
        )));
    }
    Ok(name.to_ascii_lowercase())
}

/// One table as an API client names it: `database`, `table`, and `columns` (all of them when
/// `None`). `at` says where it was, for messages.
fn resource(
    database: &str,
    table: &str,
    columns: Option<&[String]>,
    at: &str,
) -> Result<ResourceSpec, ValidationError> {
    let database = parse_identifier(database, "database", at)?;
    let table = parse_identifier(table, "table", at)?;
    let columns = match columns {
        None => None,
        Some([]) => {
            return Err(ValidationError::new(format!(
                "{at}: `columns` is empty; leave it out to ask for every column"
            )));
        }
        Some(list) => {
            let mut set = BTreeSet::new();
            for col in list {
                set.insert(parse_identifier(col, "column", at)?);
            }
            Some(set.into_iter().collect::<Vec<_>>())
        }
    };
    Ok(ResourceSpec {
        database,
        table,
        columns,
    })
}

/// A list of tables: at least one, at most [`MAX_RESOURCES`], each once.
fn check_list(specs: Vec<(String, ResourceSpec)>) -> Result<Vec<ResourceSpec>, ValidationError> {
    let mut out: Vec<ResourceSpec> = Vec::with_capacity(specs.len());
    for (at, spec) in specs {
        if out
            .iter()
            .any(|s| s.database == spec.database && s.table == spec.table)
        {
            return Err(ValidationError::new(format!(
                "{at}: {} is listed twice; put all its columns in one entry",
                spec.qualified_table()
            )));
        }
        out.push(spec);
    }
    if out.is_empty() {
        return Err(ValidationError::new(
            "name at least one table, one per line, like `sales.orders` or `sales.orders: order_id, amount`",
        ));
    }
    if out.len() > MAX_RESOURCES {
        return Err(ValidationError::new(format!(
            "a request may name at most {MAX_RESOURCES} tables; this one names {}",
            out.len()
        )));
    }
    Ok(out)
}

/// The tables of a JSON request: `(database, table, columns)` each, with the same rules as
/// the form's list.
pub fn resources_from<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a [String]>)>,
) -> Result<Vec<ResourceSpec>, ValidationError> {
    let specs = items
        .into_iter()
        .enumerate()
        .map(|(i, (database, table, columns))| {
            let at = format!("resources[{i}]");
            resource(database, table, columns, &at).map(|spec| (at, spec))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_list(specs)
}

/// Parses the request form's resource list: one table per line, `database.table` or
/// `database.table: col1, col2`. Blank lines and lines starting with `#` are ignored.
pub fn parse_resources(input: &str) -> Result<Vec<ResourceSpec>, ValidationError> {
    let mut specs = Vec::new();
    for (index, raw_line) in input.lines().enumerate() {
        let at = format!("line {}", index + 1);
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (table_part, column_part) = match line.split_once(':') {
            Some((t, c)) => (t, Some(c)),
            None => (line, None),
        };
        let Some((db, table)) = table_part.trim().split_once('.') else {
            return Err(ValidationError::new(format!(
                "{at}: expected `database.table` or `database.table: col1, col2`, got `{line}`"
            )));
        };
        let columns: Option<Vec<String>> =
            column_part.map(|list| list.split(',').map(ToOwned::to_owned).collect());
        let spec = resource(db, table, columns.as_deref(), &at)?;
        specs.push((at, spec));
    }
    check_list(specs)
}

/// Where Athena writes query results: `s3://bucket/prefix/`. Each request gets its own
/// sub-prefix, and its role may only touch that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsLocation {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl ResultsLocation {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let rest = input.trim().strip_prefix("s3://").ok_or_else(|| {
            ValidationError::new(format!(
                "results location `{input}` must look like s3://bucket/prefix/"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(ValidationError::new(format!(
                "`{bucket}` in results location `{input}` is not a valid S3 bucket name"
            )));
        }
        let mut prefix = prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// The key prefix (no bucket) under which one request's results live.
    pub fn request_prefix(&self, request: &impl fmt::Display) -> String {
        format!("{}{}/", self.prefix, request)
    }

    /// `s3://bucket/prefix/<request>/`
    pub fn request_uri(&self, request: &impl fmt::Display) -> String {
        format!("s3://{}/{}", self.bucket, self.request_prefix(request))
    }
}

impl fmt::Display for ResultsLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables_and_columns() {
        let specs = parse_resources(
            "sales.orders\n\n  # comment\nSales.Customers: email, Customer_ID , email\n",
        )
        .unwrap();
        assert_eq!(
            specs,
            vec![
                ResourceSpec {
                    database: "sales".into(),
                    table: "orders".into(),
                    columns: None
                },
                ResourceSpec {
                    database: "sales".into(),
                    table: "customers".into(),
                    columns: Some(vec!["customer_id".into(), "email".into()])
                },
            ]
        );
        assert_eq!(specs[1].to_string(), "sales.customers: customer_id, email");
    }

    #[test]
    fn refuses_bad_lines_with_the_line_number() {
        let cases = [
            ("", "at least one table"),
            ("orders", "line 1: expected `database.table`"),
            ("sales.orders\nsales.", "line 2: the table name is empty"),
            (
                "sales.ord-ers",
                "line 1: `ord-ers` is not a valid table name",
            ),
            ("sales.orders:", "line 1: the column name is empty"),
            ("sales.orders: a,,b", "the column name is empty"),
            (
                "sales.orders\nsales.orders: a",
                "line 2: sales.orders is listed twice",
            ),
            ("a.b.c", "`b.c` is not a valid table name"),
        ];
        for (input, expected) in cases {
            let err = parse_resources(input).unwrap_err();
            assert!(err.0.contains(expected), "{input:?}: got {err}");
        }
    }

    #[test]
    fn refuses_too_many_resources() {
        let input: String = (0..21).map(|i| format!("db.t{i}\n")).collect();
        let err = parse_resources(&input).unwrap_err();
        assert!(err.0.contains("at most 20"), "{err}");
        let ok: String = (0..20).map(|i| format!("db.t{i}\n")).collect();
        assert_eq!(parse_resources(&ok).unwrap().len(), 20);
    }

    #[test]
    fn results_location_round_trips() {
        let loc = ResultsLocation::parse("s3://lakegate-results/athena").unwrap();
        assert_eq!(loc.prefix, "athena/");
        assert_eq!(loc.request_uri(&"r1"), "s3://lakegate-results/athena/r1/");
        let bare = ResultsLocation::parse("s3://lakegate-results").unwrap();
        assert_eq!(bare.request_prefix(&"r1"), "r1/");
        for bad in ["lakegate-results/x", "s3://", "s3://UPPER/x", "s3://a/x"] {
            assert!(ResultsLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
