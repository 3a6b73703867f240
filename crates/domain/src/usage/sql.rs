//! What a query's SQL reads, as far as the flags need it: partitioned tables read without a
//! condition on a partition key, and tables read with `*`.
//!
//! The rule is deliberately simple. Each query block (one `SELECT`, in a CTE, a subquery or
//! a set operation alike) is judged alone: a partitioned table in its `FROM` or `JOIN` counts
//! as filtered when one of the table's partition keys, bare or qualified by the table's alias
//! or name, appears anywhere in that block's `WHERE`, `JOIN … ON`, `JOIN … USING` or
//! `HAVING`. Athena (Trino) may push a condition written outside a CTE or a subquery down
//! into it; this check does not, so such a query is flagged although it may be pruned: a
//! flag asks a person to look, it stops nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, TableAlias, TableFactor, TableWithJoins, Visit,
    Visitor,
};

use super::QueryFlag;
use crate::sql_guard::{
    DEFAULT_CATALOG, MAX_SQL_BYTES, join_constraint, lower_parts, on_big_stack, parse_one,
};

/// The partitioned tables of a grant: `(database, table)` → its partition keys, as Glue
/// lists them. Tables without keys may be left out.
pub type PartitionKeys = BTreeMap<(String, String), Vec<String>>;

/// What the SQL of one query reads, as the flags need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlFacts {
    /// `(database, table)` read with `SELECT *` or `SELECT t.*`, lower case, sorted, without
    /// duplicates.
    pub star_tables: Vec<(String, String)>,
    /// The partitioned tables read somewhere without a condition on any of their partition
    /// keys, lower case, sorted, each with its keys as given in [`PartitionKeys`].
    pub unfiltered_partition_scans: Vec<((String, String), Vec<String>)>,
}

/// Reads `sql` as Athena runs it in `default_database`. `None` when it does not parse, or is
/// longer than the SQL guard accepts (the guard refuses such SQL before it runs; from
/// elsewhere, it gets no flags). Unqualified tables without a default database, and tables of
/// other catalogs, are not resolved.
///
/// Never panics, and is safe on a small stack: the parse runs on a thread of its own; if no
/// thread can be had, or the parser fails in any way, the answer is `None`. Blocking and
/// CPU-bound (milliseconds): call it from `spawn_blocking` in async code.
pub fn analyze_sql(
    sql: &str,
    default_database: Option<&str>,
    partition_keys: &PartitionKeys,
) -> Option<SqlFacts> {
    if sql.len() > MAX_SQL_BYTES {
        return None;
    }
    // The parser can recurse deeper than an async worker's stack: as in the SQL guard.
    on_big_stack("usage-sql", || {
        analyze_on_this_thread(sql, default_database, partition_keys)
    })
    .flatten()
}

/// The [`QueryFlag::UnfilteredPartitionScan`] flags of `sql` (see [`analyze_sql`]); none for
/// SQL that does not parse.
pub fn unfiltered_partition_scans(
    sql: &str,
    default_database: Option<&str>,
    partition_keys: &PartitionKeys,
) -> Vec<QueryFlag> {
    analyze_sql(sql, default_database, partition_keys)
        .map(|facts| {
            facts
                .unfiltered_partition_scans
                .into_iter()
                .map(|(table, keys)| QueryFlag::UnfilteredPartitionScan { table, keys })
                .collect()
        })
        .unwrap_or_default()
}

fn analyze_on_this_thread(
    sql: &str,
    default_database: Option<&str>,
    partition_keys: &PartitionKeys,
) -> Option<SqlFacts> {
    // Read exactly as the SQL guard reads it: as Athena's lexer does, one statement.
    let statements = [parse_one(sql).ok()?];
    let mut walker = Walker {
        keys: partition_keys
            .iter()
            .filter(|(_, keys)| !keys.is_empty())
            .map(|((db, table), keys)| {
                let lower = keys.iter().map(|k| k.to_lowercase()).collect();
                let keys = TableKeys { given: keys, lower };
                ((db.to_lowercase(), table.to_lowercase()), keys)
            })
            .collect(),
        default_database: default_database.map(str::to_lowercase),
        star_tables: BTreeSet::new(),
        unfiltered: BTreeSet::new(),
    };
    for statement in &statements {
        walker.subqueries(statement, &[]);
    }
    let unfiltered_partition_scans = walker
        .unfiltered
        .iter()
        .filter_map(|table| {
            let keys = walker.keys.get(table)?;
            Some((table.clone(), keys.given.to_vec()))
        })
        .collect();
    Some(SqlFacts {
        star_tables: walker.star_tables.into_iter().collect(),
        unfiltered_partition_scans,
    })
}

/// A table in a block's `FROM`, and the name prefixes that refer to it in `prefix.column`.
struct Relation {
    table: (String, String),
    qualifiers: Vec<Vec<String>>,
}

/// What one block's `FROM` clause holds.
#[derive(Default)]
struct FromClause<'q> {
    tables: Vec<Relation>,
    /// `ON` conditions.
    conditions: Vec<&'q Expr>,
    /// `USING` columns.
    using: Vec<String>,
}

/// The partition keys of one table.
struct TableKeys<'k> {
    /// As the caller gave them, for the flag.
    given: &'k [String],
    /// In lower case, for matching.
    lower: BTreeSet<String>,
}

struct Walker<'k> {
    keys: BTreeMap<(String, String), TableKeys<'k>>,
    default_database: Option<String>,
    star_tables: BTreeSet<(String, String)>,
    unfiltered: BTreeSet<(String, String)>,
}

impl Walker<'_> {
    /// `ctes` are the CTE names in reach, which shadow tables of the default database.
    fn query(&mut self, query: &Query, ctes: &[String]) {
        let mut ctes = ctes.to_vec();
        if let Some(with) = &query.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|cte| cte.alias.name.value.to_lowercase())
                .collect();
            for (index, cte) in with.cte_tables.iter().enumerate() {
                // A CTE sees those before it (all of them, when recursive): a later name in
                // it is a real table.
                let mut visible = ctes.clone();
                visible.extend_from_slice(if with.recursive {
                    &names
                } else {
                    &names[..index]
                });
                self.query(&cte.query, &visible);
            }
            ctes.extend(names);
        }
        self.set_expr(&query.body, &ctes);
        self.subqueries(&query.order_by, &ctes);
        self.subqueries(&query.limit_clause, &ctes);
        self.subqueries(&query.fetch, &ctes);
    }

    fn set_expr(&mut self, body: &SetExpr, ctes: &[String]) {
        match body {
            SetExpr::Select(select) => self.select(select, ctes),
            SetExpr::Query(query) => self.query(query, ctes),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left, ctes);
                self.set_expr(right, ctes);
            }
            other => self.subqueries(other, ctes),
        }
    }

    fn select(&mut self, select: &Select, ctes: &[String]) {
        let mut from = FromClause::default();
        for item in &select.from {
            self.add_from_item(item, ctes, &mut from);
        }

        for item in &select.projection {
            match item {
                SelectItem::Wildcard(_) => {
                    self.star_tables
                        .extend(from.tables.iter().map(|r| r.table.clone()));
                }
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(name),
                    _,
                ) => {
                    let parts = lower_parts(name);
                    self.star_tables.extend(
                        from.tables
                            .iter()
                            .filter(|r| r.qualifiers.contains(&parts))
                            .map(|r| r.table.clone()),
                    );
                }
                _ => {}
            }
        }

        let mut names = NameCollector::default();
        for condition in from
            .conditions
            .iter()
            .copied()
            .chain(select.selection.as_ref())
            .chain(select.having.as_ref())
        {
            let _ = condition.visit(&mut names);
        }
        names
            .names
            .extend(from.using.iter().map(|column| vec![column.clone()]));
        for relation in &from.tables {
            let Some(TableKeys { lower: keys, .. }) = self.keys.get(&relation.table) else {
                continue;
            };
            let filtered = names.names.iter().any(|parts| match parts.split_last() {
                Some((column, prefix)) => {
                    keys.contains(column)
                        && (prefix.is_empty() || relation.qualifiers.iter().any(|q| q == prefix))
                }
                None => false,
            });
            if !filtered {
                self.unfiltered.insert(relation.table.clone());
            }
        }

        // Derived tables, and subqueries in any expression of the block.
        self.subqueries(select, ctes);
    }

    fn add_from_item<'q>(
        &self,
        item: &'q TableWithJoins,
        ctes: &[String],
        from: &mut FromClause<'q>,
    ) {
        self.add_factor(&item.relation, ctes, from);
        for join in &item.joins {
            self.add_factor(&join.relation, ctes, from);
            if let JoinOperator::AsOf {
                match_condition, ..
            } = &join.join_operator
            {
                from.conditions.push(match_condition);
            }
            match join_constraint(&join.join_operator) {
                Some(JoinConstraint::On(on)) => from.conditions.push(on),
                Some(JoinConstraint::Using(columns) | JoinConstraint::UsingAlias(columns, _)) => {
                    from.using.extend(
                        columns
                            .iter()
                            .filter_map(|column| lower_parts(column).pop()),
                    );
                }
                _ => {}
            }
        }
    }

    fn add_factor<'q>(&self, factor: &'q TableFactor, ctes: &[String], from: &mut FromClause<'q>) {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                if let Some(table) = self.resolve(name, ctes) {
                    from.tables.push(Relation {
                        qualifiers: qualifiers(&table, alias.as_ref()),
                        table,
                    });
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.add_from_item(table_with_joins, ctes, from),
            _ => {}
        }
    }

    /// `(database, table)` of a table name, or `None` for a CTE or a name that says no
    /// table of the default catalog.
    fn resolve(&self, name: &ObjectName, ctes: &[String]) -> Option<(String, String)> {
        let parts: Option<Vec<String>> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => Some(ident.value.to_lowercase()),
                ObjectNamePart::Function(_) => None,
            })
            .collect();
        match parts?.as_slice() {
            [table] if ctes.contains(table) => None,
            [table] => Some((self.default_database.clone()?, table.clone())),
            [database, table] => Some((database.clone(), table.clone())),
            [catalog, database, table] if catalog == DEFAULT_CATALOG => {
                Some((database.clone(), table.clone()))
            }
            _ => None,
        }
    }

    /// Walks every query directly inside `node` (not those inside them: each walk does its own).
    fn subqueries<V: Visit>(&mut self, node: &V, ctes: &[String]) {
        let mut finder = SubqueryFinder {
            walker: self,
            ctes,
            depth: 0,
        };
        let _ = node.visit(&mut finder);
    }
}

/// The prefixes that name the table in `prefix.column`: its alias, or without one its name
/// as `table`, `database.table` or `awsdatacatalog.database.table`.
fn qualifiers(table: &(String, String), alias: Option<&TableAlias>) -> Vec<Vec<String>> {
    match alias {
        Some(alias) => vec![vec![alias.name.value.to_lowercase()]],
        None => {
            let (database, name) = table.clone();
            vec![
                vec![name.clone()],
                vec![database.clone(), name.clone()],
                vec![DEFAULT_CATALOG.to_owned(), database, name],
            ]
        }
    }
}

struct SubqueryFinder<'w, 'k> {
    walker: &'w mut Walker<'k>,
    ctes: &'w [String],
    depth: usize,
}

impl Visitor for SubqueryFinder<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if self.depth == 0 {
            self.walker.query(query, self.ctes);
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// The column names in expressions, as lower-case name parts, outside subqueries (a
/// subquery's names are its own block's).
#[derive(Default)]
struct NameCollector {
    depth: usize,
    names: Vec<Vec<String>>,
}

impl Visitor for NameCollector {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth == 0 {
            match expr {
                Expr::Identifier(ident) => self.names.push(vec![ident.value.to_lowercase()]),
                Expr::CompoundIdentifier(idents) => self
                    .names
                    .push(idents.iter().map(|i| i.value.to_lowercase()).collect()),
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn keys() -> PartitionKeys {
        let table = |db: &str, t: &str| (db.to_owned(), t.to_owned());
        let cols = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        PartitionKeys::from([
            (table("sales", "orders"), cols(&["dt"])),
            (table("sales", "events"), cols(&["year", "month"])),
            (table("other", "logs"), cols(&["day"])),
            // Listed without keys: not partitioned.
            (table("sales", "customers"), cols(&[])),
        ])
    }

    fn unfiltered(sql: &str) -> Vec<String> {
        unfiltered_partition_scans(sql, Some("sales"), &keys())
            .into_iter()
            .map(|flag| match flag {
                QueryFlag::UnfilteredPartitionScan {
                    table: (db, table),
                    keys,
                } => format!("{db}.{table}({})", keys.join(",")),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn partition_filters_per_query_block() {
        let cases: &[(&str, &[&str])] = &[
            ("SELECT * FROM orders WHERE dt = '2025-03-01'", &[]),
            ("SELECT id FROM orders", &["sales.orders(dt)"]),
            // The key in the SELECT list or GROUP BY filters nothing.
            (
                "SELECT dt, count(*) FROM orders GROUP BY dt",
                &["sales.orders(dt)"],
            ),
            ("SELECT * FROM orders WHERE 1 = 1", &["sales.orders(dt)"]),
            // Qualified by the alias, the table's name, or the full name.
            ("SELECT o.id FROM orders o WHERE o.dt > '2025'", &[]),
            ("SELECT o.id FROM orders AS o WHERE O.DT > '2025'", &[]),
            ("SELECT id FROM sales.orders WHERE orders.dt > '2025'", &[]),
            (
                "SELECT id FROM awsdatacatalog.sales.orders WHERE sales.orders.dt > '2025'",
                &[],
            ),
            // Qualified by something else: not this table's key.
            (
                "SELECT o.id FROM orders o WHERE x.dt > '2025'",
                &["sales.orders(dt)"],
            ),
            // Inside a function call, an IN list, a BETWEEN: still a condition on the key.
            (
                "SELECT * FROM orders WHERE date_parse(dt, '%Y-%m-%d') > now() - interval '1' day",
                &[],
            ),
            ("SELECT * FROM orders WHERE dt BETWEEN '1' AND '2'", &[]),
            // Any one of several keys is enough.
            ("SELECT * FROM events WHERE month = 3", &[]),
            ("SELECT * FROM events", &["sales.events(year,month)"]),
            // Quoted and upper-case names.
            (r#"SELECT * FROM Sales."ORDERS" WHERE "DT" = '1'"#, &[]),
            // Joins: ON on the key filters the tables whose key it names.
            ("SELECT * FROM orders o JOIN events e ON o.dt = e.year", &[]),
            (
                "SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id",
                &["sales.orders(dt)"],
            ),
            // Two partitioned tables, one filtered.
            (
                "SELECT * FROM orders o JOIN events e ON o.id = e.order_id WHERE o.dt = '1'",
                &["sales.events(year,month)"],
            ),
            (
                "SELECT * FROM orders, other.logs l WHERE orders.dt = l.day",
                &[],
            ),
            (
                "SELECT * FROM orders JOIN other.logs USING (dt)",
                &["other.logs(day)"],
            ),
            (
                "SELECT * FROM (orders o JOIN events e ON o.dt = e.dt)",
                &["sales.events(year,month)"],
            ),
            // HAVING counts too.
            (
                "SELECT dt, count(*) FROM orders GROUP BY dt HAVING dt > '1'",
                &[],
            ),
            // CTEs: a filter inside the CTE counts; a filter outside it is not seen.
            (
                "WITH recent AS (SELECT * FROM orders WHERE dt >= '2025') SELECT * FROM recent",
                &[],
            ),
            (
                "WITH everything AS (SELECT * FROM orders) SELECT * FROM everything WHERE dt = '1'",
                &["sales.orders(dt)"],
            ),
            // A CTE named like the table shadows it, but not inside itself.
            (
                "WITH orders AS (SELECT * FROM sales.orders WHERE dt = '1') SELECT * FROM orders",
                &[],
            ),
            (
                "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders WHERE dt = '1'",
                &["sales.orders(dt)"],
            ),
            // Subqueries are blocks of their own.
            (
                "SELECT * FROM (SELECT * FROM orders) t WHERE t.dt = '1'",
                &["sales.orders(dt)"],
            ),
            ("SELECT * FROM (SELECT * FROM orders WHERE dt = '1') t", &[]),
            (
                "SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE dt = '1')",
                &[],
            ),
            (
                "SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders)",
                &["sales.orders(dt)"],
            ),
            (
                "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM events e WHERE e.year = 2025 AND e.x = o.dt)",
                &["sales.orders(dt)"],
            ),
            (
                "SELECT (SELECT max(id) FROM orders) AS m FROM customers",
                &["sales.orders(dt)"],
            ),
            // Each side of a UNION is a block.
            (
                "SELECT id FROM orders WHERE dt = '1' UNION ALL SELECT id FROM orders",
                &["sales.orders(dt)"],
            ),
            (
                "SELECT id FROM orders WHERE dt = '1' UNION ALL SELECT id FROM events WHERE year = 1",
                &[],
            ),
            ("EXPLAIN SELECT * FROM orders", &["sales.orders(dt)"]),
            // Unpartitioned tables, unknown tables, other catalogs: nothing to say.
            ("SELECT * FROM customers", &[]),
            ("SELECT * FROM sales.unknown", &[]),
            ("SELECT * FROM hive.sales.orders", &[]),
            ("SELECT 1", &[]),
            // SQL that does not parse: no flag.
            ("SELEC * FRM orders", &[]),
            ("SELECT * FROM orders WHERE", &[]),
            ("", &[]),
        ];
        for (sql, want) in cases {
            assert_eq!(unfiltered(sql), *want, "{sql}");
        }
    }

    #[test]
    fn unqualified_tables_need_a_default_database() {
        let flags = unfiltered_partition_scans("SELECT * FROM orders", None, &keys());
        assert_eq!(flags, vec![]);
        let flags = unfiltered_partition_scans("SELECT * FROM sales.orders", None, &keys());
        assert_eq!(flags.len(), 1);
        // The database is matched case-insensitively, and so are the caller's names.
        let upper = PartitionKeys::from([(
            ("Sales".to_owned(), "Orders".to_owned()),
            vec!["DT".to_owned()],
        )]);
        assert_eq!(
            unfiltered_partition_scans("SELECT * FROM orders", Some("SALES"), &upper),
            vec![QueryFlag::UnfilteredPartitionScan {
                table: ("sales".to_owned(), "orders".to_owned()),
                keys: vec!["DT".to_owned()],
            }]
        );
        assert_eq!(
            unfiltered_partition_scans("SELECT * FROM orders WHERE dt = 1", Some("sales"), &upper),
            vec![]
        );
    }

    #[test]
    fn star_reads() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("SELECT id FROM orders", &[]),
            ("SELECT count(*) FROM orders", &[]),
            ("SELECT * FROM orders", &[("sales", "orders")]),
            (
                "SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id",
                &[("sales", "customers"), ("sales", "orders")],
            ),
            (
                "SELECT c.*, o.id FROM orders o JOIN customers c ON o.customer_id = c.id",
                &[("sales", "customers")],
            ),
            (
                "SELECT sales.orders.* FROM sales.orders",
                &[("sales", "orders")],
            ),
            ("SELECT * FROM (SELECT id FROM orders) t", &[]),
            (
                "WITH x AS (SELECT * FROM customers) SELECT id FROM x",
                &[("sales", "customers")],
            ),
            (
                "SELECT * FROM orders WHERE id IN (SELECT id FROM other.logs)",
                &[("sales", "orders")],
            ),
        ];
        for (sql, want) in cases {
            let facts = analyze_sql(sql, Some("sales"), &PartitionKeys::new()).unwrap();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(d, t)| ((*d).to_owned(), (*t).to_owned()))
                .collect();
            assert_eq!(facts.star_tables, want, "{sql}");
        }
        assert_eq!(analyze_sql("SELEC *", Some("sales"), &keys()), None);
        let too_long = format!("SELECT 1 -- {}", "x".repeat(MAX_SQL_BYTES));
        assert_eq!(analyze_sql(&too_long, Some("sales"), &keys()), None);
    }

    #[test]
    fn survives_deep_and_long_input_on_a_small_stack() {
        // Where async handlers run: on a 2 MiB stack. Whatever the text, the process lives.
        let inputs = [
            format!("{}SELECT 1", "EXPLAIN ".repeat(200)),
            format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
            format!(
                "SELECT 1 FROM orders WHERE {}",
                "dt = 1 AND ".repeat(2000) + "1 = 1"
            ),
            format!("SELECT 1{}", " UNION SELECT 1 FROM orders".repeat(1500)),
            format!("SELECT 1{}", " + 1".repeat(60_000)),
            format!(
                "SELECT * FROM {}orders{}",
                "(SELECT * FROM ".repeat(300),
                ")".repeat(300)
            ),
            format!(
                "SELECT * FROM {}orders{}",
                "(SELECT * FROM ".repeat(10),
                " t)".repeat(10)
            ),
        ];
        let results = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || inputs.iter().map(|sql| unfiltered(sql)).collect::<Vec<_>>())
            .unwrap()
            .join()
            .unwrap();
        // Too many tokens, or too deep for the parser: no flag. Within bounds: judged.
        let want: [&[&str]; 7] = [
            &[],
            &[],
            &[],
            &["sales.orders(dt)"],
            &[],
            &[],
            &["sales.orders(dt)"],
        ];
        assert_eq!(results, want);
    }

    fn sql_soup() -> impl Strategy<Value = String> {
        let words = prop::sample::select(vec![
            "SELECT",
            "*",
            "FROM",
            "orders",
            "o",
            "events",
            "sales",
            ".",
            ",",
            "WHERE",
            "dt",
            "year",
            "=",
            "'1'",
            "1",
            "(",
            ")",
            "JOIN",
            "ON",
            "USING",
            "WITH",
            "AS",
            "UNION",
            "ALL",
            "HAVING",
            "GROUP",
            "BY",
            "IN",
            "EXISTS",
            "AND",
            "OR",
            "x",
            "\"dt\"",
            "awsdatacatalog",
            "EXPLAIN",
            "LIMIT",
            "ORDER",
            "UNNEST",
            "LATERAL",
            "->",
            "CROSS",
        ]);
        prop::collection::vec(words, 0..60).prop_map(|words| words.join(" "))
    }

    proptest! {
        // Straight on this thread, so that a panic would fail the test rather than become
        // "no flag" in the worker thread.
        #[test]
        fn arbitrary_text_never_panics(sql in ".{0,300}") {
            let _ = analyze_on_this_thread(&sql, Some("sales"), &keys());
        }

        #[test]
        fn sql_like_text_never_panics(sql in sql_soup()) {
            let _ = analyze_on_this_thread(&sql, Some("sales"), &keys());
            let _ = analyze_on_this_thread(&sql, None, &keys());
        }
    }
}
