//! The guarded query console's SQL guard against a corpus of Athena statements, each with
//! the verdict and (for refusals) the reason the person should see; and property tests that
//! feed it arbitrary text, which it must answer without panicking.

use lakegate_domain::ResourceSpec;
use lakegate_domain::sql_guard::{CheckedQuery, GuardContext, Refusal, StatementKind, check};
use proptest::prelude::*;

/// sales.orders and sales.line_items whole; sales.customers and marketing.clicks by column;
/// marketing.campaigns whole. Not granted: sales.secrets, hr.salaries, anything else.
fn grant() -> Vec<ResourceSpec> {
    let spec = |database: &str, table: &str, columns: Option<&[&str]>| ResourceSpec {
        database: database.into(),
        table: table.into(),
        columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
    };
    vec![
        spec("sales", "orders", None),
        spec("sales", "line_items", None),
        spec("sales", "customers", Some(&["country", "customer_id"])),
        spec("marketing", "campaigns", None),
        spec("marketing", "clicks", Some(&["campaign_id", "clicked_at"])),
    ]
}

/// Each granted table's columns in the catalog, in the order of [`grant`]. Customers also
/// has `email`, `phone`, `address` and `name`, and clicks `user_agent` and `ip`, which the
/// grant leaves out.
fn catalog() -> Vec<Vec<String>> {
    let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect();
    vec![
        cols(&[
            "order_id",
            "customer_id",
            "amount",
            "campaign_id",
            "items",
            "shipping",
            "attributes",
            "payload",
            "status",
            "order_date",
            "order_ts",
            "email",
        ]),
        cols(&["order_id", "qty", "sku", "price"]),
        cols(&[
            "customer_id",
            "country",
            "email",
            "phone",
            "address",
            "name",
        ]),
        cols(&["campaign_id", "name", "budget"]),
        cols(&["campaign_id", "clicked_at", "user_agent", "ip"]),
    ]
}

/// The console's choices around the statement.
#[derive(Debug, Clone, Copy)]
enum Ctx {
    /// Database `sales` chosen, no LIMIT required.
    Sales,
    /// No database chosen.
    NoDb,
    /// Database `sales` chosen, and the policy requires a LIMIT.
    Limit,
}

enum Expect {
    /// Accepted, of this kind, reading exactly these `database.table`s.
    Ok(StatementKind, &'static [&'static str]),
    /// Refused, with a reason containing this text.
    No(&'static str),
}

use Ctx::{Limit, NoDb, Sales};
use Expect::{No, Ok as Yes};
use StatementKind::{Describe, Explain, Select, Show};

const ORDERS: &[&str] = &["sales.orders"];
const CUSTOMERS: &[&str] = &["sales.customers"];
const ORDERS_CUSTOMERS: &[&str] = &["sales.customers", "sales.orders"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
const CORPUS: &[(&str, Ctx, Expect)] = &[
    // ---- Plain reads, names and case ----
    ("SELECT * FROM sales.orders", Sales, Yes(Select, ORDERS)),
    ("select order_id, amount from orders where amount > 100", Sales, Yes(Select, ORDERS)),
    ("SELECT customer_id, country FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    (r#"SELECT * FROM "Sales"."Orders""#, Sales, Yes(Select, ORDERS)),
    (r#"SELECT "order_id" FROM "sales".orders"#, NoDb, Yes(Select, ORDERS)),
    ("SELECT * FROM awsdatacatalog.sales.orders", NoDb, Yes(Select, ORDERS)),
    ("SeLeCt CoUnT(*) FrOm SALES.ORDERS", Sales, Yes(Select, ORDERS)),
    (r#"SELECT "Country" FROM Sales.Customers"#, Sales, Yes(Select, CUSTOMERS)),
    ("SELECT 1", NoDb, Yes(Select, NONE)),
    ("SELECT current_date, current_timestamp, current_user, now()", NoDb, Yes(Select, NONE)),
    // ---- Comments and statement separators ----
    ("SELECT 1 -- ; DROP TABLE t", Sales, Yes(Select, NONE)),
    ("SELECT /* a note; DROP TABLE t */ order_id FROM sales.orders", Sales, Yes(Select, ORDERS)),
    ("SELECT order_id FROM sales.orders;", Sales, Yes(Select, ORDERS)),
    ("SELECT order_id FROM sales.orders ; ; ", Sales, Yes(Select, ORDERS)),
    ("-- report\nSELECT order_id\n  FROM sales.orders -- all of them\n", Sales, Yes(Select, ORDERS)),
    ("SELECT 1; DROP TABLE t", Sales, No("only one statement at a time: this text holds 2")),
    ("SELECT 1 /* hide */; DROP TABLE sales.orders", Sales, No("this text holds 2")),
    ("SELECT * FROM sales.orders; -- just a comment\nDELETE FROM sales.orders", Sales, No("this text holds 2")),
    ("SELECT 1; SELECT 2; SELECT 3", Sales, No("this text holds 3")),
    ("SELECT 1 /* /* */ ; DROP TABLE t; */", Sales, No("a comment contains `/*`")),
    ("SELECT 1 /* unterminated", Sales, No("the SQL could not be parsed")),
    ("", Sales, No("there is no SQL statement here")),
    ("  -- nothing but a comment", Sales, No("there is no SQL statement here")),
    (";", Sales, No("there is no SQL statement here")),
    // ---- CTEs ----
    ("WITH big AS (SELECT * FROM sales.orders WHERE amount > 1000) SELECT count(*) FROM big", Sales, Yes(Select, ORDERS)),
    ("WITH a AS (SELECT customer_id FROM sales.customers), b AS (SELECT * FROM a) SELECT * FROM b", Sales, Yes(Select, CUSTOMERS)),
    ("WITH secrets AS (SELECT order_id FROM sales.orders) SELECT * FROM secrets", Sales, Yes(Select, ORDERS)),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r", Sales, Yes(Select, NONE)),
    ("WITH s AS (SELECT * FROM hr.salaries) SELECT * FROM s", Sales, No("hr.salaries is not part of this grant")),
    // A CTE cannot see itself unless RECURSIVE: inside, `secrets` is the real table.
    ("WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", Sales, No("sales.secrets is not part of this grant")),
    ("WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a", Sales, No("sales.b is not part of this grant")),
    // A CTE's name does not reach outside the query that defines it.
    ("SELECT * FROM (WITH secrets AS (SELECT 1 AS x) SELECT * FROM secrets) t CROSS JOIN secrets", Sales, No("sales.secrets is not part of this grant")),
    ("WITH x AS (INSERT INTO sales.orders VALUES (1)) SELECT * FROM x", Sales, No("INSERT statements are not allowed")),
    // ---- Subqueries and joins ----
    ("SELECT * FROM (SELECT * FROM (SELECT order_id FROM sales.orders) x) y", Sales, Yes(Select, ORDERS)),
    ("SELECT * FROM sales.orders WHERE customer_id IN (SELECT customer_id FROM sales.customers WHERE country = 'DE')", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    ("SELECT o.order_id FROM sales.orders o WHERE EXISTS (SELECT 1 FROM sales.customers c WHERE c.customer_id = o.customer_id)", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    ("SELECT c.customer_id, (SELECT count(*) FROM sales.orders o WHERE o.customer_id = c.customer_id) AS n FROM sales.customers c", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    // `amount` is no granted column of customers, but the outer query's orders may hold it.
    ("SELECT order_id FROM sales.orders WHERE EXISTS (SELECT 1 FROM sales.customers WHERE customer_id = amount)", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    ("SELECT o.order_id, c.name FROM sales.orders o JOIN marketing.campaigns c ON o.campaign_id = c.campaign_id", Sales, Yes(Select, &["marketing.campaigns", "sales.orders"])),
    ("SELECT o.order_id, l.qty FROM sales.orders o CROSS JOIN LATERAL (SELECT qty FROM sales.line_items li WHERE li.order_id = o.order_id) l", Sales, Yes(Select, &["sales.line_items", "sales.orders"])),
    ("SELECT customer_id FROM sales.orders JOIN sales.customers USING (customer_id)", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    ("SELECT o.* FROM sales.orders o JOIN sales.customers c ON o.customer_id = c.customer_id", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    ("SELECT customer_id FROM sales.orders UNION ALL SELECT customer_id FROM sales.customers ORDER BY 1", Sales, Yes(Select, ORDERS_CUSTOMERS)),
    ("SELECT * FROM (sales.orders o JOIN sales.line_items l ON o.order_id = l.order_id)", Sales, Yes(Select, &["sales.line_items", "sales.orders"])),
    ("SELECT * FROM sales.secrets", Sales, No("sales.secrets is not part of this grant")),
    ("SELECT * FROM secrets", Sales, No("sales.secrets is not part of this grant")),
    ("SELECT * FROM hr.salaries", Sales, No("hr.salaries is not part of this grant")),
    ("SELECT * FROM sales.orders o JOIN hr.salaries s ON o.customer_id = s.employee_id", Sales, No("hr.salaries is not part of this grant")),
    ("SELECT * FROM sales.orders WHERE customer_id IN (SELECT employee_id FROM hr.salaries)", Sales, No("hr.salaries is not part of this grant")),
    ("SELECT * FROM (SELECT * FROM (SELECT * FROM sales.secrets) a) b", Sales, No("sales.secrets is not part of this grant")),
    ("SELECT 1 FROM sales.orders WHERE EXISTS (SELECT 1 FROM hr.salaries)", Sales, No("hr.salaries is not part of this grant")),
    ("SELECT (SELECT max(salary) FROM hr.salaries) FROM sales.orders", Sales, No("hr.salaries is not part of this grant")),
    ("SELECT order_id FROM sales.orders UNION SELECT employee_id FROM hr.salaries", Sales, No("hr.salaries is not part of this grant")),
    ("SELECT * FROM sales.orders o, marketing.secrets m", Sales, No("marketing.secrets is not part of this grant")),
    (r#"SELECT * FROM "sales"."orders$partitions""#, Sales, No("sales.orders$partitions is not part of this grant")),
    // Trino has no `x IN table`; nor has the guard's dialect.
    ("SELECT * FROM sales.orders WHERE customer_id IN sales.secrets", Sales, No("the SQL could not be parsed")),
    // ---- Names the guard must resolve ----
    ("SELECT * FROM orders", NoDb, No("`orders` names no database: write it as database.orders")),
    ("SELECT * FROM information_schema.tables", Sales, No("information_schema is not part of this grant")),
    (r#"SELECT * FROM "INFORMATION_SCHEMA"."COLUMNS" WHERE table_schema = 'sales'"#, Sales, No("information_schema is not part of this grant")),
    ("SELECT * FROM hive.sales.orders", Sales, No("catalog `hive` is not part of this grant")),
    ("SELECT * FROM a.b.c.d", Sales, No("is not a table name the console understands")),
    // ---- Athena functions, literals and expressions ----
    ("SELECT transform(items, x -> x * 2), filter(items, x -> x > 0) FROM sales.orders", Sales, Yes(Select, ORDERS)),
    ("SELECT customer_id, transform(ARRAY[1, 2], x -> x + 1) FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT reduce(ARRAY[1, 2, 3], 0, (s, x) -> s + x, s -> s) AS total, country FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT o.order_id, item FROM sales.orders o CROSS JOIN UNNEST(o.items) AS t(item)", Sales, Yes(Select, ORDERS)),
    ("SELECT c.customer_id, tag, n FROM sales.customers c CROSS JOIN UNNEST(ARRAY['a', 'b']) WITH ORDINALITY AS t(tag, n)", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT * FROM UNNEST(ARRAY[1, 2, 3]) AS t(n)", NoDb, Yes(Select, NONE)),
    ("SELECT order_id, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS r FROM sales.orders", Sales, Yes(Select, ORDERS)),
    ("SELECT country, count(*) OVER w FROM sales.customers WINDOW w AS (PARTITION BY country)", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT country, count(*) AS n FROM sales.customers GROUP BY country HAVING count(*) > 10 ORDER BY n DESC", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT country, customer_id, count(*) FROM sales.customers GROUP BY ROLLUP (country, customer_id)", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT approx_distinct(customer_id), approx_percentile(customer_id, 0.5) FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT TRY_CAST(amount AS decimal(10, 2)) FROM sales.orders WHERE order_date >= DATE '2024-01-01' AND order_ts < TIMESTAMP '2024-02-01 00:00:00'", Sales, Yes(Select, ORDERS)),
    ("SELECT date_trunc('day', order_ts AT TIME ZONE 'UTC') FROM sales.orders WHERE order_ts > current_timestamp - INTERVAL '7' DAY", Sales, Yes(Select, ORDERS)),
    ("SELECT o.shipping.city, items[1], attributes['color'] FROM sales.orders o", Sales, Yes(Select, ORDERS)),
    ("SELECT CASE WHEN json_extract_scalar(payload, '$.kind') = 'x' THEN 1 ELSE 0 END FROM sales.orders WHERE status IS DISTINCT FROM 'void'", Sales, Yes(Select, ORDERS)),
    ("SELECT count(*) FILTER (WHERE country = 'DE') FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT normalize(country, NFD) FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT regexp_like(country, '^D'), lower(country) || '!' FROM sales.customers WHERE country IN ('DE', 'FR')", Sales, Yes(Select, CUSTOMERS)),
    ("VALUES (1, 'a'), (2, 'b')", NoDb, Yes(Select, NONE)),
    ("SELECT x FROM (VALUES (1), (2)) AS t(x)", NoDb, Yes(Select, NONE)),
    ("SELECT * FROM sales.orders TABLESAMPLE BERNOULLI (10)", Sales, Yes(Select, ORDERS)),
    ("SELECT * FROM sales.orders o TABLESAMPLE SYSTEM (5) WHERE o.amount > 0", Sales, Yes(Select, ORDERS)),
    // Athena's Iceberg time travel: sqlparser reads no dialect's `FOR TIMESTAMP AS OF`.
    ("SELECT * FROM sales.orders FOR TIMESTAMP AS OF TIMESTAMP '2024-01-01 00:00:00'", Sales, No("the SQL could not be parsed")),
    ("SELEC * FROM sales.orders", Sales, No("the SQL could not be parsed")),
    ("SELECT * FROM sales.orders WHERE", Sales, No("the SQL could not be parsed")),
    // ---- Columns outside a column-limited grant ----
    ("SELECT email FROM sales.customers", Sales, No("column `email` of sales.customers is not part of this grant")),
    ("SELECT c.email FROM sales.customers c", Sales, No("column `email` of sales.customers is not part of this grant")),
    ("SELECT sales.customers.email FROM sales.customers", Sales, No("column `email` of sales.customers")),
    (r#"SELECT "EMAIL" FROM Sales.Customers"#, Sales, No("column `email` of sales.customers")),
    ("SELECT customer_id FROM sales.customers WHERE email LIKE '%@example.com'", Sales, No("column `email` of sales.customers")),
    ("SELECT customer_id FROM sales.customers ORDER BY email", Sales, No("column `email` of sales.customers")),
    ("SELECT o.order_id FROM sales.orders o JOIN sales.customers c ON o.email = c.email", Sales, No("column `email` of sales.customers")),
    ("SELECT customer_id FROM sales.customers WHERE customer_id IN (SELECT customer_id FROM sales.customers WHERE email IS NOT NULL)", Sales, No("column `email` of sales.customers")),
    ("SELECT order_id FROM sales.orders JOIN sales.customers USING (email)", Sales, No("column `email` of sales.customers")),
    ("SELECT transform(ARRAY[1], x -> x + phone) FROM sales.customers", Sales, No("column `phone` of sales.customers")),
    ("SELECT address.city FROM sales.customers", Sales, No("column `address` of sales.customers")),
    ("VALUES ((SELECT email FROM sales.customers))", Sales, No("column `email` of sales.customers")),
    ("SELECT country FROM sales.customers UNION SELECT email FROM sales.customers", Sales, No("column `email` of sales.customers")),
    // A lambda parameter shadows a column only inside its lambda.
    ("SELECT transform(ARRAY[1], email -> email + 1) FROM sales.customers", Sales, Yes(Select, CUSTOMERS)),
    ("SELECT transform(ARRAY[1], email -> email + 1), email FROM sales.customers", Sales, No("column `email` of sales.customers")),
    ("SELECT email FROM sales.customers AS email", Sales, No("column `email` of sales.customers")),
    ("SELECT user_agent FROM sales.customers, marketing.clicks", Sales, No("column `user_agent` of marketing.clicks is not part of this grant")),
    ("SELECT customer_id AS email FROM sales.customers WHERE email = 'x'", Sales, No("column `email` of sales.customers")),
    ("SELECT a FROM sales.customers AS c(a, b)", Sales, No("renaming the columns of sales.customers")),
    ("SELECT * FROM sales.customers", Sales, No("SELECT * on sales.customers is not allowed: this grant covers only some of its columns (country, customer_id); list them")),
    ("SELECT c.* FROM sales.customers c", Sales, No("SELECT * on sales.customers is not allowed")),
    ("SELECT * FROM sales.orders o JOIN sales.customers c ON o.customer_id = c.customer_id", Sales, No("SELECT * on sales.customers is not allowed")),
    ("SELECT * FROM (SELECT * FROM marketing.clicks) t", Sales, No("SELECT * on marketing.clicks is not allowed")),
    // Both tables have `email`: ambiguous to Trino, and customers' is withheld either way.
    ("SELECT email FROM sales.orders o JOIN sales.customers c ON o.customer_id = c.customer_id", Sales, No("column `email` of sales.customers")),
    // The subquery's output is known: `email` is orders' column, and orders is granted whole.
    ("SELECT t.email FROM (SELECT * FROM sales.orders) t", Sales, Yes(Select, ORDERS)),
    ("SELECT * FROM (SELECT customer_id FROM sales.customers) t", Sales, Yes(Select, CUSTOMERS)),
    // ---- LIMIT required by the policy ----
    ("SELECT * FROM sales.orders LIMIT 10", Limit, Yes(Select, ORDERS)),
    ("SELECT * FROM sales.orders ORDER BY amount DESC OFFSET 10 ROWS FETCH FIRST 5 ROWS ONLY", Limit, Yes(Select, ORDERS)),
    ("(SELECT * FROM sales.orders LIMIT 5)", Limit, Yes(Select, ORDERS)),
    ("WITH t AS (SELECT * FROM sales.orders) SELECT * FROM t LIMIT 100", Limit, Yes(Select, ORDERS)),
    ("SELECT * FROM sales.orders", Limit, No("add a LIMIT: this policy requires one")),
    ("SELECT * FROM sales.orders LIMIT ALL", Limit, No("add a LIMIT")),
    ("SELECT * FROM (SELECT * FROM sales.orders LIMIT 10) t", Limit, No("add a LIMIT")),
    ("(SELECT order_id FROM sales.orders LIMIT 5) UNION ALL (SELECT order_id FROM sales.orders LIMIT 5)", Limit, No("add a LIMIT")),
    ("SELECT 1", Limit, No("add a LIMIT")),
    ("SELECT * FROM hr.salaries", Limit, No("hr.salaries is not part of this grant")),
    // ---- EXPLAIN, SHOW, DESCRIBE ----
    ("EXPLAIN SELECT * FROM sales.orders", Sales, Yes(Explain, ORDERS)),
    ("explain select o.order_id from sales.orders o join sales.customers c on o.customer_id = c.customer_id", Limit, Yes(Explain, ORDERS_CUSTOMERS)),
    ("EXPLAIN ANALYZE SELECT count(*) FROM sales.orders LIMIT 1", Limit, Yes(Explain, ORDERS)),
    ("EXPLAIN ANALYZE SELECT count(*) FROM sales.orders", Limit, No("add a LIMIT")),
    ("EXPLAIN (ANALYZE true) SELECT count(*) FROM sales.orders", Limit, No("add a LIMIT")),
    ("EXPLAIN (FORMAT JSON) SELECT count(*) FROM sales.orders", Limit, Yes(Explain, ORDERS)),
    ("EXPLAIN SELECT * FROM hr.salaries", Sales, No("hr.salaries is not part of this grant")),
    ("EXPLAIN DROP TABLE sales.orders", Sales, No("DROP statements are not allowed")),
    ("EXPLAIN SHOW TABLES IN sales", Sales, No("EXPLAIN of anything but a query is not supported")),
    ("SHOW TABLES IN sales", NoDb, Yes(Show, NONE)),
    ("SHOW TABLES IN sales LIKE 'ord*'", NoDb, Yes(Show, NONE)),
    ("SHOW TABLES", Sales, Yes(Show, NONE)),
    ("SHOW TABLES", NoDb, No("SHOW TABLES needs a database")),
    ("SHOW TABLES IN hr", Sales, No("no table of database hr is part of this grant")),
    ("SHOW TABLES IN information_schema", Sales, No("information_schema is not part of this grant")),
    ("SHOW COLUMNS IN sales.orders", NoDb, Yes(Show, ORDERS)),
    ("SHOW COLUMNS FROM customers IN sales", NoDb, Yes(Show, CUSTOMERS)),
    ("SHOW COLUMNS IN hr.salaries", Sales, No("hr.salaries is not part of this grant")),
    ("SHOW DATABASES", Sales, No("SHOW DATABASES is not allowed")),
    ("SHOW CREATE TABLE sales.orders", Sales, No("SHOW CREATE is not allowed")),
    ("DESCRIBE sales.orders", NoDb, Yes(Describe, ORDERS)),
    ("DESCRIBE customers", Sales, Yes(Describe, CUSTOMERS)),
    ("DESCRIBE hr.salaries", Sales, No("hr.salaries is not part of this grant")),
    // ---- Everything that writes, changes or configures ----
    ("DROP TABLE sales.orders", Sales, No("DROP statements are not allowed: the console only reads")),
    ("INSERT INTO sales.orders SELECT * FROM sales.orders", Sales, No("INSERT statements are not allowed")),
    ("DELETE FROM sales.orders WHERE 1 = 1", Sales, No("DELETE statements are not allowed")),
    ("UPDATE sales.orders SET amount = 0", Sales, No("UPDATE statements are not allowed")),
    ("MERGE INTO sales.orders t USING sales.orders s ON t.order_id = s.order_id WHEN MATCHED THEN DELETE", Sales, No("MERGE statements are not allowed")),
    ("CREATE TABLE sales.copy AS SELECT * FROM sales.orders", Sales, No("CREATE TABLE AS SELECT statements are not allowed")),
    ("CREATE VIEW sales.v AS SELECT 1", Sales, No("CREATE statements are not allowed")),
    ("SELECT * INTO sales.copy FROM sales.orders", Sales, No("SELECT … INTO statements are not allowed")),
    ("UNLOAD (SELECT * FROM sales.orders) TO 's3://bucket/out/' WITH (format = 'PARQUET')", Sales, No("UNLOAD statements are not allowed")),
    ("CALL system.sync_partition_metadata('sales', 'orders', 'FULL')", Sales, No("CALL statements are not allowed")),
    ("SET SESSION query_max_run_time = '1h'", Sales, No("SET statements are not allowed")),
    ("USE sales", Sales, No("USE statements are not allowed")),
    ("MSCK REPAIR TABLE sales.orders", Sales, No("MSCK statements are not allowed")),
    ("VACUUM sales.orders", Sales, No("VACUUM statements are not allowed")),
    ("TRUNCATE TABLE sales.orders", Sales, No("TRUNCATE statements are not allowed")),
    ("ALTER TABLE sales.orders RENAME TO sales.old_orders", Sales, No("ALTER statements are not allowed")),
    ("GRANT SELECT ON sales.orders TO alice", Sales, No("GRANT statements are not allowed")),
    ("EXECUTE my_statement", Sales, No("EXECUTE statements are not allowed")),
    // ---- Constructs the console cannot check ----
    ("SELECT * FROM TABLE(system.query(query => 'SELECT * FROM secrets'))", Sales, No("`TABLE(…)` in FROM is not supported by the console")),
    ("SELECT * FROM generate_series(1, 10)", Sales, No("the table function `generate_series` is not supported")),
    ("SELECT order_id FROM sales.orders |> WHERE amount > 1", Sales, No("the SQL holds `|`")),
    ("SELECT x FROM sales.orders LATERAL VIEW explode(items) t AS x", Sales, No("`LATERAL VIEW` is not supported")),
    ("SELECT 1 FROM sales.orders FOR UPDATE", Sales, No("`FOR UPDATE` / `FOR SHARE` is not supported")),
];

fn context<'a>(
    ctx: Ctx,
    grant: &'a [ResourceSpec],
    catalog: &'a [Vec<String>],
) -> GuardContext<'a> {
    GuardContext {
        grant,
        catalog,
        default_database: match ctx {
            Ctx::NoDb => None,
            Ctx::Sales | Ctx::Limit => Some("sales"),
        },
        require_limit: matches!(ctx, Ctx::Limit),
    }
}

fn tables_of(checked: &CheckedQuery) -> Vec<String> {
    checked
        .tables
        .iter()
        .map(|(db, table)| format!("{db}.{table}"))
        .collect()
}

#[test]
fn corpus_has_the_promised_breadth() {
    let refused = CORPUS.iter().filter(|(_, _, e)| matches!(e, No(_))).count();
    let accepted = CORPUS.len() - refused;
    assert!(CORPUS.len() >= 60, "{} cases", CORPUS.len());
    assert!(
        accepted >= 30 && refused >= 30,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn corpus_verdicts_and_reasons() {
    let grant = grant();
    let catalog = catalog();
    let mut failures = Vec::new();
    for (sql, ctx, expect) in CORPUS {
        let result = check(sql, &context(*ctx, &grant, &catalog));
        let failure = match (expect, &result) {
            (Yes(kind, tables), Ok(checked)) => {
                (checked.kind != *kind || tables_of(checked) != *tables).then(|| {
                    format!(
                        "expected {kind:?} of {tables:?}, got {:?} of {:?}",
                        checked.kind,
                        tables_of(checked)
                    )
                })
            }
            (Yes(..), Err(refusal)) => Some(format!("refused: {refusal}")),
            (No(reason), Err(refusal)) => (!refusal.to_string().contains(reason)).then(|| {
                format!(
                    "expected a refusal with {reason:?}, got {:?}",
                    refusal.to_string()
                )
            }),
            (No(reason), Ok(checked)) => Some(format!(
                "accepted ({:?} of {:?}), expected a refusal with {reason:?}",
                checked.kind,
                tables_of(checked)
            )),
        };
        if let Some(failure) = failure {
            failures.push(format!("{sql:?} [{ctx:?}]: {failure}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n")
    );
}

#[test]
fn reasons_read_as_sentences_for_the_person() {
    let grant = grant();
    let catalog = catalog();
    let ctx = context(Ctx::Sales, &grant, &catalog);
    let reason = |sql: &str| check(sql, &ctx).unwrap_err().to_string();
    assert_eq!(
        reason("SELECT 1; DROP TABLE t"),
        "only one statement at a time: this text holds 2"
    );
    assert_eq!(
        reason("DROP TABLE t"),
        "DROP statements are not allowed: the console only reads"
    );
    assert_eq!(
        reason("SELECT * FROM sales.secrets"),
        "sales.secrets is not part of this grant"
    );
    assert_eq!(
        reason("SELECT email FROM sales.customers"),
        "column `email` of sales.customers is not part of this grant"
    );
    assert_eq!(
        reason("SELECT * FROM sales.customers"),
        "SELECT * on sales.customers is not allowed: this grant covers only some of its columns (country, customer_id); list them"
    );
    assert_eq!(
        reason("SELECT * FROM information_schema.columns"),
        "information_schema is not part of this grant"
    );
    assert!(
        reason("SELECT FROM WHERE").starts_with("the SQL could not be parsed: Expected"),
        "{}",
        reason("SELECT FROM WHERE")
    );
    let limit = context(Ctx::Limit, &grant, &catalog);
    assert_eq!(
        check("SELECT * FROM sales.orders", &limit),
        Err(Refusal::LimitRequired)
    );
}

#[test]
fn attributes_columns_where_it_can() {
    let grant = grant();
    let catalog = catalog();
    let checked = check(
        "SELECT c.country, o.amount, item FROM sales.orders o JOIN sales.customers c ON o.customer_id = c.customer_id CROSS JOIN UNNEST(o.items) AS u(item)",
        &context(Ctx::Sales, &grant, &catalog),
    )
    .unwrap();
    let columns: Vec<String> = checked
        .columns
        .iter()
        .map(|(d, t, c)| format!("{d}.{t}.{c}"))
        .collect();
    assert_eq!(
        columns,
        [
            "sales.customers.country",
            "sales.customers.customer_id",
            "sales.orders.amount",
            "sales.orders.customer_id",
            "sales.orders.items",
        ]
    );
}

#[test]
fn an_empty_grant_admits_only_queries_without_tables() {
    let ctx = GuardContext {
        grant: &[],
        catalog: &[],
        default_database: Some("sales"),
        require_limit: false,
    };
    assert!(check("SELECT 1 + 1", &ctx).is_ok());
    assert_eq!(
        check("SELECT * FROM orders", &ctx),
        Err(Refusal::TableNotGranted("sales.orders".into()))
    );
    assert_eq!(
        check("SHOW TABLES", &ctx),
        Err(Refusal::DatabaseNotGranted("sales".into()))
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let grant = grant();
    let catalog = catalog();
    let ctx = context(Ctx::Sales, &grant, &catalog);
    let long = format!(
        "SELECT 1 {}",
        " ".repeat(lakegate_domain::sql_guard::MAX_SQL_BYTES)
    );
    assert!(matches!(check(&long, &ctx), Err(Refusal::TooLong { .. })));
    let many = format!(
        "SELECT 1{}",
        ", 1".repeat(lakegate_domain::sql_guard::MAX_TOKENS)
    );
    assert!(matches!(
        check(&many, &ctx),
        Err(Refusal::TooManyTokens { .. })
    ));
    let deep = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
    assert_eq!(check(&deep, &ctx), Err(Refusal::TooDeep));
}

// ---- Never panics ----

/// Whatever the text, the guard answers; and what it accepts is one statement that reads
/// only granted tables.
fn assert_sound(sql: &str) -> Result<(), TestCaseError> {
    let grant = grant();
    let catalog = catalog();
    for ctx in [Ctx::Sales, Ctx::NoDb, Ctx::Limit] {
        let result = check(sql, &context(ctx, &grant, &catalog));
        prop_assert_ne!(&result, &Err(Refusal::Internal), "{:?}", sql);
        if let Ok(checked) = result {
            for (db, table) in &checked.tables {
                prop_assert!(
                    grant.iter().any(|g| &g.database == db && &g.table == table),
                    "{sql:?} accepted with {db}.{table}"
                );
            }
            let parsed = sqlparser::parser::Parser::parse_sql(
                &lakegate_domain::sql_guard::TrinoDialect,
                sql,
            );
            prop_assert_eq!(parsed.map(|s| s.len()).ok(), Some(1), "{:?}", sql);
        }
    }
    Ok(())
}

/// Names a generated query may use: granted, not granted, CTE names, mixed case.
const TABLES: &[&str] = &[
    "sales.orders",
    "sales.customers",
    "orders",
    "customers",
    "hr.salaries",
    "secrets",
    r#""Sales"."Customers""#,
    "awsdatacatalog.sales.orders",
    "information_schema.tables",
    "marketing.clicks",
    "cte1",
];
const LEAVES: &[&str] = &[
    "email",
    "customer_id",
    "country",
    "amount",
    "c.email",
    "c.country",
    "o.amount",
    "o.customer_id",
    "order_id",
    "status",
    "n",
    "u.n",
    "sales.customers.email",
    "address.city",
    "1",
    "'DE'",
    "NULL",
    "DATE '2024-01-01'",
    "current_date",
    "NFD",
    "items[1]",
];

/// Expressions in the shapes Athena users write, nested a few levels.
fn expr() -> impl Strategy<Value = String> {
    let table = || prop::sample::select(TABLES);
    prop::sample::select(LEAVES)
        .prop_map(str::to_string)
        .prop_recursive(4, 24, 3, move |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| format!("({e})")),
                (
                    inner.clone(),
                    prop::sample::select(&["+", "=", "AND", "OR", "<", "||"][..]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                (
                    prop::sample::select(
                        &["lower", "coalesce", "approx_distinct", "count", "max"][..]
                    ),
                    inner.clone()
                )
                    .prop_map(|(f, e)| format!("{f}({e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("transform(ARRAY[1, 2], x -> {e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("reduce(ARRAY[1], 0, (s, x) -> s + {e}, s -> s)")),
                inner
                    .clone()
                    .prop_map(|e| format!("CASE WHEN {e} THEN 1 ELSE 0 END")),
                (inner.clone(), table())
                    .prop_map(|(e, t)| format!("{e} IN (SELECT customer_id FROM {t})")),
                (table(), inner.clone())
                    .prop_map(|(t, e)| format!("EXISTS (SELECT 1 FROM {t} WHERE {e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("TRY_CAST({e} AS varchar)")),
                inner
                    .clone()
                    .prop_map(|e| format!("count(*) FILTER (WHERE {e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("sum(amount) OVER (PARTITION BY country ORDER BY {e})")),
            ]
        })
}

/// Whole statements: optional EXPLAIN and WITH, a SELECT list, FROM with joins, UNNEST and
/// subqueries, WHERE, GROUP BY, ORDER BY, LIMIT, UNION.
fn statement() -> impl Strategy<Value = String> {
    let from_item = prop_oneof![
        (
            prop::sample::select(TABLES),
            prop::sample::select(&["", " o", " c", " AS t"][..])
        )
            .prop_map(|(t, a)| format!("{t}{a}")),
        (prop::sample::select(TABLES), expr())
            .prop_map(|(t, e)| format!("(SELECT {e} FROM {t}) t")),
        Just("UNNEST(ARRAY[1, 2]) AS u(n)".to_string()),
        Just("(VALUES (1)) AS v(n)".to_string()),
    ];
    let lateral = (prop::sample::select(TABLES), expr()).prop_map(|(t, e)| {
        format!(" CROSS JOIN LATERAL (SELECT customer_id FROM {t} WHERE {e}) l")
    });
    let join = prop_oneof![
        (
            prop::sample::select(&["JOIN", "LEFT JOIN"][..]),
            from_item.clone(),
            expr()
        )
            .prop_map(|(kind, item, on)| format!(" {kind} {item} ON {on}")),
        from_item
            .clone()
            .prop_map(|item| format!(" CROSS JOIN {item}")),
        lateral,
    ];
    let item = prop_oneof![
        expr(),
        Just("*".to_string()),
        Just("c.*".to_string()),
        expr().prop_map(|e| format!("{e} AS n")),
    ];
    (
        prop::sample::select(&["", "", "EXPLAIN ", "EXPLAIN ANALYZE "][..]),
        prop::sample::select(
            &[
                "",
                "WITH cte1 AS (SELECT customer_id FROM sales.customers) ",
            ][..],
        ),
        prop::collection::vec(item, 1..4),
        from_item,
        prop::collection::vec(join, 0..3),
        prop::option::of(expr()),
        prop::option::of(expr()),
        prop::sample::select(
            &[
                "",
                " LIMIT 10",
                " ORDER BY n LIMIT 5",
                " UNION ALL SELECT 1",
            ][..],
        ),
    )
        .prop_map(|(explain, with, items, from, joins, filter, group, tail)| {
            let mut sql = format!(
                "{explain}{with}SELECT {} FROM {from}{}",
                items.join(", "),
                joins.concat()
            );
            if let Some(filter) = filter {
                sql.push_str(&format!(" WHERE {filter}"));
            }
            if let Some(group) = group {
                sql.push_str(&format!(" GROUP BY {group}"));
            }
            sql.push_str(tail);
            sql
        })
}

/// Pieces of Athena SQL, so that random sequences often parse and reach the walk.
const VOCABULARY: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "sales.orders",
    "sales.customers",
    "hr.salaries",
    "orders",
    "t",
    "WHERE",
    "x",
    "->",
    "x",
    "+",
    "1",
    "(",
    ")",
    "(",
    ")",
    ",",
    ";",
    "--",
    "/*",
    "*/",
    "'",
    "\"",
    "AS",
    "JOIN",
    "ON",
    "=",
    "UNNEST",
    "WITH",
    "t",
    "AS",
    "(",
    "SELECT",
    "1",
    ")",
    "LIMIT",
    "10",
    "UNION",
    "ALL",
    "EXISTS",
    "IN",
    "email",
    "customer_id",
    "c.email",
    ".",
    "EXPLAIN",
    "SHOW",
    "TABLES",
    "DESCRIBE",
    "DROP",
    "TABLE",
    "LATERAL",
    "VALUES",
    "ARRAY[",
    "]",
    "ORDER",
    "BY",
    "GROUP",
    "OVER",
    "PARTITION",
    "CROSS",
    "information_schema.tables",
    "awsdatacatalog.sales.orders",
    "TABLESAMPLE",
    "BERNOULLI",
    "CAST",
    "INTERVAL",
    "'1'",
    "DAY",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "NOT",
    "NULL",
    "IS",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_panics_on_any_text(sql in any::<String>()) {
        assert_sound(&sql)?;
    }

    #[test]
    fn never_panics_on_printable_ascii(sql in "[ -~\t\n]{0,400}") {
        assert_sound(&sql)?;
    }

    #[test]
    fn never_panics_on_text_spliced_into_a_statement(
        base in 0..CORPUS.len(),
        at in any::<prop::sample::Index>(),
        insert in "[ -~\n]{0,40}|\\PC{0,20}",
    ) {
        let valid = CORPUS[base].0;
        let boundaries: Vec<usize> = valid.char_indices().map(|(i, _)| i).chain([valid.len()]).collect();
        let cut = boundaries[at.index(boundaries.len())];
        let sql = format!("{}{}{}", &valid[..cut], insert, &valid[cut..]);
        assert_sound(&sql)?;
    }

    #[test]
    fn never_panics_on_generated_statements(sql in statement()) {
        assert_sound(&sql)?;
    }

    #[test]
    fn never_panics_on_sql_shaped_noise(words in prop::collection::vec(prop::sample::select(VOCABULARY), 0..80)) {
        assert_sound(&words.join(" "))?;
    }
}

/// The generated statements are only worth fuzzing with if most of them parse and reach the
/// walk over tables and columns, and both verdicts occur.
#[test]
fn generated_statements_reach_the_walk() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let grant = grant();
    let catalog = catalog();
    let ctx = context(Ctx::Sales, &grant, &catalog);
    let mut runner = TestRunner::deterministic();
    let strategy = statement();
    let (mut accepted, mut column_refusals, mut table_refusals, mut unparsed) = (0, 0, 0, 0);
    for _ in 0..300 {
        let sql = strategy.new_tree(&mut runner).unwrap().current();
        match check(&sql, &ctx) {
            Ok(_) => accepted += 1,
            Err(Refusal::Parse(_)) => unparsed += 1,
            Err(
                Refusal::ColumnNotGranted { .. }
                | Refusal::WildcardOnPartialGrant { .. }
                | Refusal::UnknownColumn(_),
            ) => column_refusals += 1,
            Err(Refusal::TableNotGranted(_)) => table_refusals += 1,
            Err(_) => {}
        }
    }
    let counts = format!(
        "accepted {accepted}, column refusals {column_refusals}, table refusals {table_refusals}, unparsed {unparsed}"
    );
    assert!(unparsed < 15, "{counts}");
    // With every table's columns known, most random mixes name a column that no table in
    // them has, which Trino refuses too: few are accepted, but some must be.
    assert!(
        accepted >= 5 && column_refusals >= 30 && table_refusals >= 50,
        "{counts}"
    );
}
