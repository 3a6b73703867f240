//! The SQL guard against analytic SQL nobody here wrote: TPC-H's 22 queries in Trino SQL, with
//! the tables and columns each one reads decided by an independent analyser (sqlglot), not by
//! the guard. `tests/guard/benchmark.py` writes them (scripts/test runs it and sets
//! `LAKEGATE_GUARD_BENCHMARK`).
//!
//! Under a grant of every TPC-H table, every query is accepted and reads exactly the columns
//! the analyser says; withhold any table it reads, or any single column it reads, and it is
//! refused.

use std::collections::{BTreeMap, BTreeSet};

use lakegate_domain::ResourceSpec;
use lakegate_domain::sql_guard::{GuardContext, Refusal, check};
use serde::Deserialize;

const DATABASE: &str = "tpch";

#[derive(Debug, Deserialize)]
struct Benchmark {
    source: String,
    schema: BTreeMap<String, Vec<String>>,
    queries: Vec<Query>,
}

#[derive(Debug, Deserialize)]
struct Query {
    name: String,
    sql: String,
    reads: BTreeMap<String, Vec<String>>,
}

fn benchmark() -> Benchmark {
    let path = std::env::var("LAKEGATE_GUARD_BENCHMARK").unwrap_or_else(|_| {
        panic!(
            "LAKEGATE_GUARD_BENCHMARK is not set: run scripts/test, or \
             `.venv/bin/python tests/guard/benchmark.py OUT.json` and point it at OUT.json"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every table of the schema, whole unless `withheld` names it (left out) or one of its
/// columns (left out of that table's grant); with the catalog's columns of each.
fn grant(
    schema: &BTreeMap<String, Vec<String>>,
    withheld: Option<(&str, Option<&str>)>,
) -> (Vec<ResourceSpec>, Vec<Vec<String>>) {
    let mut specs = Vec::new();
    let mut catalog = Vec::new();
    for (table, columns) in schema {
        let columns = match withheld {
            Some((t, None)) if t == table => continue,
            Some((t, Some(column))) if t == table => Some(
                columns
                    .iter()
                    .filter(|c| c.as_str() != column)
                    .cloned()
                    .collect(),
            ),
            _ => None,
        };
        specs.push(ResourceSpec {
            database: DATABASE.into(),
            table: table.clone(),
            columns,
        });
        catalog.push(schema[table].clone());
    }
    (specs, catalog)
}

fn run(
    sql: &str,
    (grant, catalog): &(Vec<ResourceSpec>, Vec<Vec<String>>),
) -> Result<BTreeMap<String, BTreeSet<String>>, Refusal> {
    let checked = check(
        sql,
        &GuardContext {
            grant,
            catalog,
            default_database: Some(DATABASE),
            require_limit: false,
        },
    )?;
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (database, table, column) in checked.columns {
        assert_eq!(database, DATABASE);
        read.entry(table).or_default().insert(column);
    }
    Ok(read)
}

#[test]
fn benchmark_queries_pass_whole_grants_and_are_refused_when_anything_they_read_is_withheld() {
    let bench = benchmark();
    assert_eq!(bench.queries.len(), 22, "TPC-H from {}", bench.source);
    let whole = grant(&bench.schema, None);
    let mut failures = Vec::new();
    let mut refusals = 0;
    for q in &bench.queries {
        let expected: BTreeMap<String, BTreeSet<String>> = q
            .reads
            .iter()
            .map(|(t, cols)| (t.clone(), cols.iter().cloned().collect()))
            .collect();
        match run(&q.sql, &whole) {
            Ok(read) if read == expected => {}
            Ok(read) => failures.push(format!(
                "{}: reads {read:?}, the analyser says {expected:?}",
                q.name
            )),
            Err(refusal) => failures.push(format!(
                "{}: refused under a whole grant: {refusal}",
                q.name
            )),
        }
        for (table, columns) in &q.reads {
            let cases = std::iter::once(None).chain(columns.iter().map(|c| Some(c.as_str())));
            for column in cases {
                let withheld = grant(&bench.schema, Some((table, column)));
                match run(&q.sql, &withheld) {
                    Err(_) => refusals += 1,
                    Ok(_) => failures.push(format!(
                        "{}: accepted with {table}{} withheld",
                        q.name,
                        column.map(|c| format!(".{c}")).unwrap_or_default()
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures over {} queries from {}:\n{}",
        failures.len(),
        bench.queries.len(),
        bench.source,
        failures.join("\n")
    );
    println!(
        "{} queries from {}: accepted whole, {refusals} withholdings refused",
        bench.queries.len(),
        bench.source
    );
}
