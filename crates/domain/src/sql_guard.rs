//! The guarded query console's SQL check: before anything runs in Athena, the text must be a
//! single read-only statement (`SELECT`, `WITH … SELECT`, `EXPLAIN`, `SHOW TABLES`,
//! `SHOW COLUMNS`, `DESCRIBE`) whose every table, and every column, lies inside the grant.
//!
//! Three things make the verdict hold for what Athena runs (ADR 0013):
//! - the text is read the way Athena's (Trino's) lexer reads it: a dialect of our own and a
//!   check of every token ([`trino`]); text the two could read differently is refused;
//! - names resolve the way Trino resolves them, innermost query first, against the columns
//!   each granted table has in the catalog (recorded on the request), and against the output
//!   columns of each CTE and subquery; a name that matches nothing is refused, as Trino
//!   would;
//! - what is sent to Athena is the guard's own rendering of the statement it checked
//!   ([`CheckedQuery::sql`]), never the person's text: no comment, no spacing trick, no
//!   second reading survives the round trip.
//!
//! The statement still runs with the grant's own role session, and Lake Formation still
//! decides what it may read: the guard is a second wall, and the one that gives reasons.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, JoinConstraint,
    JoinOperator, LimitClause, ObjectName, ObjectNamePart, OrderBy, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, ShowStatementOptions, Statement, TableFactor,
    TableWithJoins, Visit, Visitor, visit_relations,
};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Tokenizer;

use crate::target::ResourceSpec;

mod trino;
pub use trino::TrinoDialect;
pub(crate) use trino::lexical_check;

/// Athena's own limit on the length of a query string, in bytes.
pub const MAX_SQL_BYTES: usize = 262_144;

/// Most tokens (words, literals, symbols; not whitespace or comments) one statement may hold.
/// Long chains like `a + a + … + a` parse into trees as deep as they are long, and walking,
/// or even dropping, such a tree recurses once per level: this bound keeps every walk far
/// from the end of the stack. Real console queries stay well below it.
pub const MAX_TOKENS: usize = 10_000;

/// The parser recurses deeply on some nested statements (each level of `EXPLAIN EXPLAIN …`
/// takes tens of kilobytes in a debug build), and its recursion limit alone does not keep
/// that inside a 2 MiB async worker stack. The check therefore runs on a thread of its own
/// with this much stack; the memory is reserved, and only touched as far as it is used.
const CHECK_STACK_BYTES: usize = 32 * 1024 * 1024;

/// The only catalog whose tables Lake Formation grants through lakegate.
pub(crate) const DEFAULT_CATALOG: &str = "awsdatacatalog";

/// Runs `work` (a parse of untrusted SQL) on a thread of its own with [`CHECK_STACK_BYTES`] of
/// stack. `None` when no thread can be had (the process is out of them) or `work` panicked:
/// better no answer than a parse on a stack that may be too small.
pub(crate) fn on_big_stack<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .stack_size(CHECK_STACK_BYTES)
            .spawn_scoped(scope, work)
            .ok()?
            .join()
            .ok()
    })
}

/// The normal forms `normalize(s, NFD)` takes: keywords to Trino, bare words to the parser.
/// Only there are they no column names.
const NORMAL_FORMS: &[&str] = &["nfc", "nfd", "nfkc", "nfkd"];

/// What the check needs to know about the grant and the person's choices.
#[derive(Debug, Clone, Copy)]
pub struct GuardContext<'a> {
    /// The tables (and, where limited, columns) of the active grant.
    pub grant: &'a [ResourceSpec],
    /// For each of `grant`, in the same order, the table's columns in the catalog (partition
    /// keys included), as recorded on the request. Empty (or shorter than `grant`) where not
    /// known: names are then resolved more cautiously (see [`check`]).
    pub catalog: &'a [Vec<String>],
    /// The database chosen on the console form; unqualified table names resolve against it.
    pub default_database: Option<&'a str>,
    /// The grant's policy requires every query to carry a `LIMIT` (or `FETCH FIRST`).
    pub require_limit: bool,
}

/// Which kind of statement was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT`, `WITH … SELECT`, `VALUES`, or a set operation of those.
    Select,
    /// `EXPLAIN` (or `EXPLAIN ANALYZE`) of a query.
    Explain,
    /// `SHOW TABLES` or `SHOW COLUMNS`.
    Show,
    /// `DESCRIBE database.table`.
    Describe,
}

/// A statement the console may run, and what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedQuery {
    pub kind: StatementKind,
    /// The statement as the guard read it, rendered back to SQL: what runs in Athena. It
    /// carries no comments, and parses back to the very statement that was checked.
    pub sql: String,
    /// `(database, table)` of every granted table the statement names, lower case, sorted,
    /// without duplicates. Empty for `SHOW TABLES` and for queries without tables.
    pub tables: Vec<(String, String)>,
    /// `(database, table, column)` of the columns read, lower case, sorted, without
    /// duplicates; `SELECT *` counts as every column the catalog lists. Complete when the
    /// catalog of every table is known; otherwise a name the guard could not place (`*` on a
    /// table of unknown columns, a name several such tables may hold) is left out.
    pub columns: Vec<(String, String, String)>,
}

/// Why a statement may not run. The message is shown to the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the SQL is {bytes} bytes long; Athena accepts at most {MAX_SQL_BYTES}")]
    TooLong { bytes: usize },
    #[error(
        "the SQL is too long for the console to check: {tokens} words and symbols, at most {MAX_TOKENS}"
    )]
    TooManyTokens { tokens: usize },
    #[error(
        "there is no SQL statement here: write one SELECT, WITH, EXPLAIN, SHOW or DESCRIBE statement"
    )]
    Empty,
    #[error("the SQL could not be parsed: {0}")]
    Parse(String),
    #[error("the SQL is nested too deeply for the console to check")]
    TooDeep,
    #[error(
        "a comment contains `/*`: Athena ends a comment at the first `*/`, so this text may not mean what it seems; remove the inner `/*`"
    )]
    NestedComment,
    /// The payload names the construct, e.g. "a carriage return inside a `--` comment".
    #[error(
        "the SQL holds {0}, which Athena reads differently from the console (or not at all); remove it"
    )]
    Lexical(String),
    #[error("only one statement at a time: this text holds {0}")]
    MultipleStatements(usize),
    /// The payload names the statement, e.g. `DROP` or `CREATE TABLE AS SELECT`.
    #[error("{0} statements are not allowed: the console only reads")]
    NotAllowed(String),
    #[error(
        "{0} is not allowed: the console answers SHOW TABLES and SHOW COLUMNS about granted tables"
    )]
    ShowNotAllowed(String),
    #[error("`{table}` names no database: write it as database.{table} or choose a database")]
    NoDatabase { table: String },
    #[error("SHOW TABLES needs a database: write SHOW TABLES IN database, or choose a database")]
    NoDatabaseForShow,
    #[error("information_schema is not part of this grant")]
    InformationSchema,
    #[error(
        "catalog `{0}` is not part of this grant: only tables of awsdatacatalog can be granted"
    )]
    Catalog(String),
    #[error("`{0}` is not a table name the console understands: write database.table")]
    BadName(String),
    /// The payload is `database.table`.
    #[error("{0} is not part of this grant")]
    TableNotGranted(String),
    #[error("no table of database {0} is part of this grant")]
    DatabaseNotGranted(String),
    /// `table` is `database.table`, or several of those joined by "or" when the column may
    /// belong to any of them.
    #[error("column `{column}` of {table} is not part of this grant")]
    ColumnNotGranted { column: String, table: String },
    /// Trino refuses such a name too ("cannot be resolved").
    #[error("column `{0}` is not a column of any table or subquery this statement reads")]
    UnknownColumn(String),
    /// `columns` lists the granted columns, comma-separated.
    #[error(
        "SELECT * on {table} is not allowed: this grant covers only some of its columns ({columns}); list them"
    )]
    WildcardOnPartialGrant { table: String, columns: String },
    #[error("add a LIMIT: this policy requires one")]
    LimitRequired,
    /// The payload describes the construct, e.g. "the table function `system.query`".
    #[error("{0} is not supported by the console")]
    Unsupported(String),
    #[error("the console could not check this SQL (an internal error); nothing was run")]
    Internal,
}

impl Refusal {
    /// The text could not be read the way Athena reads it (as opposed to being read, and
    /// refused for what it does). The query monitor flags such SQL run from elsewhere.
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self,
            Self::TooLong { .. }
                | Self::TooManyTokens { .. }
                | Self::Empty
                | Self::Parse(_)
                | Self::TooDeep
                | Self::NestedComment
                | Self::Lexical(_)
                | Self::MultipleStatements(_)
                | Self::Internal
        )
    }
}

/// Decides whether `sql` may run under the grant in `ctx`.
///
/// Blocking and CPU-bound (a few milliseconds for console-sized queries); call it from
/// `spawn_blocking` in async code. It never panics: a failure inside the parser becomes
/// [`Refusal::Internal`].
pub fn check(sql: &str, ctx: &GuardContext<'_>) -> Result<CheckedQuery, Refusal> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Refusal::TooLong { bytes: sql.len() });
    }
    on_big_stack("sql-guard", || check_on_this_thread(sql, ctx)).unwrap_or(Err(Refusal::Internal))
}

fn check_on_this_thread(sql: &str, ctx: &GuardContext<'_>) -> Result<CheckedQuery, Refusal> {
    let statement = parse_one(sql)?;
    let mut checker = Checker::new(ctx);
    let kind = checker.statement(&statement, ctx.require_limit)?;
    checker.every_relation_was_checked(&statement)?;
    let rendered = statement.to_string();
    // What runs must be what was checked: the rendering has to read back as the same
    // statement. A difference is a gap in the parser's printing, not the person's fault.
    if parse_one(&rendered).ok().as_ref() != Some(&statement) {
        return Err(Refusal::Unsupported(
            "this statement (the console cannot pass it on exactly as it reads it)".into(),
        ));
    }
    Ok(CheckedQuery {
        kind,
        sql: rendered,
        tables: checker.tables.into_iter().collect(),
        columns: checker.columns.into_iter().collect(),
    })
}

/// Reads `sql` as Athena's lexer would, and parses the one statement it must hold.
pub(crate) fn parse_one(sql: &str) -> Result<Statement, Refusal> {
    let dialect = TrinoDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Refusal::Parse(e.to_string()))?;
    let significant = lexical_check(sql, &tokens)?;
    if significant > MAX_TOKENS {
        return Err(Refusal::TooManyTokens {
            tokens: significant,
        });
    }
    let mut statements = Parser::new(&dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => Refusal::TooDeep,
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => Refusal::Parse(m),
        })?;
    match statements.len() {
        0 => Err(Refusal::Empty),
        1 => Ok(statements.remove(0)),
        many => Err(Refusal::MultipleStatements(many)),
    }
}

/// Column names, lower case; `None` where the guard cannot tell them.
type Columns = Option<BTreeSet<String>>;

/// A relation in a `FROM` clause, as far as column checks care.
#[derive(Debug, Clone)]
struct Relation {
    /// The name prefixes that refer to it in `prefix.column`: its alias, or, without one,
    /// `table`, `database.table` and `awsdatacatalog.database.table`.
    qualifiers: Vec<Vec<String>>,
    kind: RelationKind,
}

#[derive(Debug, Clone)]
enum RelationKind {
    /// A granted table: the columns the grant covers (`None`: all of them), and those the
    /// catalog lists (`None`: not known).
    Granted {
        database: String,
        table: String,
        granted: Columns,
        catalog: Columns,
    },
    /// A CTE, a subquery, `UNNEST` or `VALUES`: it reads no table itself (what it reads was
    /// checked on its own), and offers these columns.
    Derived { columns: Columns },
}

/// Whether a relation has a column of a given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Has {
    Yes,
    No,
    /// The guard cannot tell (a table of unknown columns, a subquery of unknown output).
    Maybe,
}

impl Relation {
    fn has(&self, name: &str) -> Has {
        let known = |columns: &Columns| match columns {
            Some(c) if c.contains(name) => Has::Yes,
            Some(_) => Has::No,
            None => Has::Maybe,
        };
        match &self.kind {
            RelationKind::Granted {
                granted, catalog, ..
            } => match (known(catalog), granted) {
                (Has::Yes, _) => Has::Yes,
                // A granted column is the table's, whatever an older catalog said.
                (_, Some(g)) if g.contains(name) => Has::Yes,
                (has, _) => has,
            },
            RelationKind::Derived { columns } => known(columns),
        }
    }

    /// The relation's column names, as `SELECT *` lists them.
    fn columns(&self) -> Columns {
        match &self.kind {
            RelationKind::Granted { catalog, .. } => catalog.clone(),
            RelationKind::Derived { columns } => columns.clone(),
        }
    }
}

/// The relations of one `SELECT`, for resolving the column names in it.
#[derive(Debug, Clone, Default)]
struct Scope {
    relations: Vec<Relation>,
}

/// What a query sees from where it stands: CTEs in reach (with their columns), and the
/// scopes of the queries around it (outermost first), whose columns it may reference.
#[derive(Debug, Clone, Default)]
struct Env {
    ctes: BTreeMap<String, Columns>,
    scopes: Vec<Scope>,
}

impl Env {
    fn with_scope(&self, scope: Scope) -> Env {
        let mut env = self.clone();
        env.scopes.push(scope);
        env
    }
}

/// One granted table, as the checker holds it.
#[derive(Debug, Clone)]
struct GrantedTable {
    granted: Columns,
    catalog: Columns,
}

struct Checker {
    /// `(database, table)` → what the grant and the catalog say of it, all lower case.
    grant: BTreeMap<(String, String), GrantedTable>,
    default_database: Option<String>,
    tables: BTreeSet<(String, String)>,
    columns: BTreeSet<(String, String, String)>,
    /// How often each relation name (as sqlparser prints it) was resolved by the walk.
    resolved: BTreeMap<String, usize>,
}

impl Checker {
    fn new(ctx: &GuardContext<'_>) -> Self {
        let lower = |cols: &[String]| cols.iter().map(|c| c.to_lowercase()).collect();
        let mut grant = BTreeMap::new();
        for (i, spec) in ctx.grant.iter().enumerate() {
            let catalog = ctx
                .catalog
                .get(i)
                .filter(|c| !c.is_empty())
                .map(|c| lower(c));
            grant.insert(
                (spec.database.to_lowercase(), spec.table.to_lowercase()),
                GrantedTable {
                    granted: spec.columns.as_deref().map(lower),
                    catalog,
                },
            );
        }
        Self {
            grant,
            default_database: ctx.default_database.map(str::to_lowercase),
            tables: BTreeSet::new(),
            columns: BTreeSet::new(),
            resolved: BTreeMap::new(),
        }
    }

    fn statement(
        &mut self,
        statement: &Statement,
        require_limit: bool,
    ) -> Result<StatementKind, Refusal> {
        match statement {
            Statement::Query(query) => {
                self.query(query, &Env::default())?;
                if require_limit && !has_limit(query) {
                    return Err(Refusal::LimitRequired);
                }
                Ok(StatementKind::Select)
            }
            Statement::Explain {
                statement,
                analyze,
                options,
                ..
            } => match statement.as_ref() {
                // Plain EXPLAIN only plans; EXPLAIN ANALYZE runs the query and pays for it.
                Statement::Query(_) => {
                    let runs = *analyze
                        || options
                            .iter()
                            .flatten()
                            .any(|o| o.name.value.eq_ignore_ascii_case("analyze"));
                    self.statement(statement, require_limit && runs)?;
                    Ok(StatementKind::Explain)
                }
                other => {
                    // Refuse with the inner statement's own reason where it has one
                    // (`EXPLAIN DROP …`: DROP is not allowed).
                    self.statement(other, false)?;
                    Err(Refusal::Unsupported(
                        "EXPLAIN of anything but a query".into(),
                    ))
                }
            },
            Statement::ExplainTable { table_name, .. } => {
                self.resolved_relation(table_name);
                let (database, table) = self.granted_table(table_name)?;
                self.tables.insert((database, table));
                Ok(StatementKind::Describe)
            }
            Statement::ShowTables { show_options, .. } => {
                let database = match show_parent(show_options) {
                    Some(name) => {
                        self.resolved_relation(name);
                        match object_parts(name)?.as_slice() {
                            [db] => db.clone(),
                            [catalog, db] if catalog == DEFAULT_CATALOG => db.clone(),
                            [catalog, _] => return Err(Refusal::Catalog(catalog.clone())),
                            _ => return Err(Refusal::BadName(name.to_string())),
                        }
                    }
                    None => self
                        .default_database
                        .clone()
                        .ok_or(Refusal::NoDatabaseForShow)?,
                };
                if database == "information_schema" {
                    return Err(Refusal::InformationSchema);
                }
                if !self.grant.keys().any(|(db, _)| *db == database) {
                    return Err(Refusal::DatabaseNotGranted(database));
                }
                Ok(StatementKind::Show)
            }
            Statement::ShowColumns { show_options, .. } => {
                let Some(name) = show_parent(show_options) else {
                    return Err(Refusal::Parse(
                        "SHOW COLUMNS needs a table: SHOW COLUMNS IN database.table".into(),
                    ));
                };
                self.resolved_relation(name);
                let (database, table) = self.granted_table(name)?;
                self.tables.insert((database, table));
                Ok(StatementKind::Show)
            }
            Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowCollation { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowObjects(_)
            | Statement::ShowProcessList { .. }
            | Statement::ShowCharset(_) => Err(Refusal::ShowNotAllowed(leading_words(
                &statement.to_string(),
                2,
            ))),
            other => Err(Refusal::NotAllowed(statement_name(other))),
        }
    }

    /// Checks a query, and returns the names of its output columns.
    fn query(&mut self, query: &Query, env: &Env) -> Result<Columns, Refusal> {
        if !query.pipe_operators.is_empty() {
            return Err(Refusal::Unsupported("pipe syntax (`|>`)".into()));
        }
        if !query.locks.is_empty() {
            return Err(Refusal::Unsupported("`FOR UPDATE` / `FOR SHARE`".into()));
        }
        if query.for_clause.is_some() || query.format_clause.is_some() || query.settings.is_some() {
            return Err(Refusal::Unsupported(
                "`FOR XML`, `FORMAT` or `SETTINGS` after a query".into(),
            ));
        }
        let mut env = env.clone();
        if let Some(with) = &query.with {
            let renamed = |cte: &sqlparser::ast::Cte| -> Columns {
                (!cte.alias.columns.is_empty()).then(|| {
                    cte.alias
                        .columns
                        .iter()
                        .map(|c| c.name.value.to_lowercase())
                        .collect()
                })
            };
            if with.recursive {
                // Every CTE sees all of them, itself included, before its output is known.
                for cte in &with.cte_tables {
                    env.ctes
                        .insert(cte.alias.name.value.to_lowercase(), renamed(cte));
                }
            }
            for cte in &with.cte_tables {
                // A CTE sees the ones before it (and, when recursive, all of them). A name it
                // cannot see is a real table, even if a later CTE has the same name.
                let output = self.query(&cte.query, &env)?;
                env.ctes
                    .insert(cte.alias.name.value.to_lowercase(), renamed(cte).or(output));
            }
        }
        let output = match query.body.as_ref() {
            SetExpr::Select(select) => self.select(select, &env, query.order_by.as_ref())?,
            body => {
                let output = self.set_expr(body, &env)?;
                // It names the output columns of a UNION or VALUES, which need no check:
                // only its subqueries do.
                if let Some(order_by) = &query.order_by {
                    self.scan(order_by, &env)?;
                }
                output
            }
        };
        // Constants, in valid SQL; scanned for the subqueries invalid SQL may still hold.
        self.scan(&query.limit_clause, &env)?;
        self.scan(&query.fetch, &env)?;
        Ok(output)
    }

    fn set_expr(&mut self, body: &SetExpr, env: &Env) -> Result<Columns, Refusal> {
        match body {
            SetExpr::Select(select) => self.select(select, env, None),
            SetExpr::Query(query) => self.query(query, env),
            SetExpr::SetOperation { left, right, .. } => {
                // A set operation's columns are named by its first part.
                let output = self.set_expr(left, env)?;
                self.set_expr(right, env)?;
                Ok(output)
            }
            // Names in VALUES rows can only be those of enclosing queries; its columns have
            // no names.
            SetExpr::Values(values) => {
                self.scan(values, env)?;
                Ok(Some(BTreeSet::new()))
            }
            SetExpr::Insert(statement)
            | SetExpr::Update(statement)
            | SetExpr::Delete(statement)
            | SetExpr::Merge(statement) => Err(Refusal::NotAllowed(statement_name(statement))),
            SetExpr::Table(_) => Err(Refusal::Unsupported(
                "`TABLE name` (write SELECT … FROM name)".into(),
            )),
        }
    }

    /// Checks one `SELECT`, and returns the names of its output columns.
    fn select(
        &mut self,
        select: &Select,
        env: &Env,
        order_by: Option<&OrderBy>,
    ) -> Result<Columns, Refusal> {
        if select.into.is_some() {
            return Err(Refusal::NotAllowed("SELECT … INTO".into()));
        }
        let foreign = [
            (!select.lateral_views.is_empty(), "`LATERAL VIEW`"),
            (select.prewhere.is_some(), "`PREWHERE`"),
            (!select.connect_by.is_empty(), "`CONNECT BY`"),
            (!select.cluster_by.is_empty(), "`CLUSTER BY`"),
            (!select.distribute_by.is_empty(), "`DISTRIBUTE BY`"),
            (!select.sort_by.is_empty(), "`SORT BY`"),
            (select.exclude.is_some(), "`EXCLUDE`"),
        ];
        if let Some((_, what)) = foreign.iter().find(|(present, _)| *present) {
            return Err(Refusal::Unsupported((*what).to_string()));
        }

        // FROM first: it decides what the names in the rest of the SELECT refer to. The
        // expressions inside FROM (join conditions, UNNEST arguments) are checked as each
        // item is added, against the items before it.
        let mut scope = Scope::default();
        for item in &select.from {
            self.add_from_item(item, env, &mut scope)?;
        }
        let inner = env.with_scope(scope.clone());

        let mut names = Names::default();
        // Output column names; `None` once one cannot be told.
        let mut output: Columns = Some(BTreeSet::new());
        // The output names ORDER BY may use, even where not all are known.
        let mut named = BTreeSet::new();
        let add_output = |output: &mut Columns, more: Columns| match (output.as_mut(), more) {
            (Some(out), Some(more)) => out.extend(more),
            _ => *output = None,
        };
        for item in &select.projection {
            match item {
                SelectItem::UnnamedExpr(expr) => {
                    named.extend(expr_name(expr));
                    add_output(&mut output, Some(expr_name(expr).into_iter().collect()));
                    names.absorb(self.scan(expr, &inner)?);
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    named.insert(alias.value.to_lowercase());
                    add_output(
                        &mut output,
                        Some(BTreeSet::from([alias.value.to_lowercase()])),
                    );
                    names.absorb(self.scan(expr, &inner)?);
                }
                SelectItem::ExprWithAliases {
                    expr,
                    aliases: many,
                } => {
                    named.extend(many.iter().map(|a| a.value.to_lowercase()));
                    add_output(
                        &mut output,
                        Some(many.iter().map(|a| a.value.to_lowercase()).collect()),
                    );
                    names.absorb(self.scan(expr, &inner)?);
                }
                SelectItem::Wildcard(options) => {
                    for relation in &scope.relations {
                        self.wildcard(relation)?;
                        add_output(&mut output, relation.columns());
                    }
                    names.absorb(self.scan(options, &inner)?);
                }
                SelectItem::QualifiedWildcard(kind, options) => {
                    match kind {
                        SelectItemQualifiedWildcardKind::ObjectName(name) => {
                            let parts = lower_parts(name);
                            let relation = inner
                                .scopes
                                .iter()
                                .rev()
                                .flat_map(|s| s.relations.iter())
                                .find(|r| r.qualifiers.contains(&parts));
                            match relation {
                                Some(relation) => {
                                    self.wildcard(relation)?;
                                    add_output(&mut output, relation.columns());
                                }
                                // `x.*` where x is no relation is a row field expansion:
                                // `x` is a column.
                                None => {
                                    names.idents.push(parts);
                                    add_output(&mut output, None);
                                }
                            }
                        }
                        SelectItemQualifiedWildcardKind::Expr(expr) => {
                            names.absorb(self.scan(expr, &inner)?);
                            add_output(&mut output, None);
                        }
                    }
                    names.absorb(self.scan(options, &inner)?);
                }
            }
        }
        for node in [&select.selection, &select.having, &select.qualify] {
            names.absorb(self.scan(node, &inner)?);
        }
        names.absorb(self.scan(&select.distinct, &inner)?);
        names.absorb(self.scan(&select.group_by, &inner)?);
        names.absorb(self.scan(&select.named_window, &inner)?);
        names.absorb(self.scan(&select.top, &inner)?);
        // ORDER BY may also name the SELECT list's output columns, by a bare name only.
        let mut order_names = Names::default();
        if let Some(order_by) = order_by {
            order_names.absorb(self.scan(order_by, &inner)?);
        }

        for parts in &names.idents {
            self.column(parts, &inner.scopes)?;
        }
        for parts in &order_names.idents {
            if let [single] = parts.as_slice()
                && named.contains(single)
            {
                continue;
            }
            self.column(parts, &inner.scopes)?;
        }
        Ok(output)
    }

    /// Adds the relations of one comma-separated `FROM` item (a relation and its joins), and
    /// checks the names in its join conditions against the relations so far.
    fn add_from_item(
        &mut self,
        item: &TableWithJoins,
        env: &Env,
        scope: &mut Scope,
    ) -> Result<(), Refusal> {
        let first = scope.relations.len();
        self.table_factor(&item.relation, env, scope)?;
        for join in &item.joins {
            let before = scope.relations.len();
            self.table_factor(&join.relation, env, scope)?;
            let condition = match &join.join_operator {
                JoinOperator::AsOf {
                    match_condition, ..
                } => Some(match_condition),
                other => match join_constraint(other) {
                    Some(JoinConstraint::On(on)) => Some(on),
                    _ => None,
                },
            };
            if let Some(condition) = condition {
                let here = env.with_scope(scope.clone());
                self.names_in(condition, &here)?;
            }
            if let Some(JoinConstraint::Using(columns) | JoinConstraint::UsingAlias(columns, _)) =
                join_constraint(&join.join_operator)
            {
                // A USING column exists on both sides. Check it on each side that is a
                // single relation; a longer left side could hold it in any of its tables.
                let mut sides = vec![&scope.relations[before..]];
                if before - first == 1 {
                    sides.push(&scope.relations[first..before]);
                }
                for side in sides {
                    if let [relation] = side {
                        for column in columns {
                            let parts = lower_parts(column);
                            if let Some(name) = parts.last() {
                                self.attributed_column(relation, name)?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn table_factor(
        &mut self,
        factor: &TableFactor,
        env: &Env,
        scope: &mut Scope,
    ) -> Result<(), Refusal> {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                partitions,
                with_hints,
                version,
                sample,
                ..
            } => {
                self.resolved_relation(name);
                if args.is_some() {
                    return Err(Refusal::Unsupported(format!("the table function `{name}`")));
                }
                if !partitions.is_empty() {
                    return Err(Refusal::Unsupported("`PARTITION (…)` after a table".into()));
                }
                // Constants, in valid SQL; scanned for the subqueries invalid SQL may hold.
                self.scan(with_hints, env)?;
                self.scan(version, env)?;
                self.scan(sample, env)?;
                let parts = object_parts(name)?;
                let alias_name = alias.as_ref().map(|a| a.name.value.to_lowercase());
                let renamed = renamed_columns(alias.as_ref());
                if let [single] = parts.as_slice()
                    && let Some(columns) = env.ctes.get(single)
                {
                    let qualifier = alias_name.unwrap_or_else(|| single.clone());
                    scope.relations.push(Relation {
                        qualifiers: vec![vec![qualifier]],
                        kind: RelationKind::Derived {
                            columns: renamed.or_else(|| columns.clone()),
                        },
                    });
                    return Ok(());
                }
                let (database, table) = self.granted_table(name)?;
                let GrantedTable { granted, catalog } = self
                    .grant
                    .get(&(database.clone(), table.clone()))
                    .cloned()
                    .ok_or_else(|| Refusal::TableNotGranted(format!("{database}.{table}")))?;
                let qualifiers = match alias_name {
                    Some(alias) => vec![vec![alias]],
                    None => vec![
                        vec![table.clone()],
                        vec![database.clone(), table.clone()],
                        vec![DEFAULT_CATALOG.to_string(), database.clone(), table.clone()],
                    ],
                };
                self.tables.insert((database.clone(), table.clone()));
                let kind = if renamed.is_some() {
                    if granted.is_some() {
                        // `t AS x(a, b)` renames columns by position; names checked afterwards
                        // would no longer say which columns are read.
                        return Err(Refusal::Unsupported(format!(
                            "renaming the columns of {database}.{table} in FROM (its grant covers only some columns; alias them in the SELECT list)"
                        )));
                    }
                    RelationKind::Derived { columns: renamed }
                } else {
                    RelationKind::Granted {
                        database,
                        table,
                        granted,
                        catalog,
                    }
                };
                scope.relations.push(Relation { qualifiers, kind });
                Ok(())
            }
            TableFactor::Derived {
                subquery,
                alias,
                sample,
                ..
            } => {
                self.scan(sample, env)?;
                // Visible to a LATERAL subquery; harmless for any other.
                let output = self.query(subquery, &env.with_scope(scope.clone()))?;
                scope.relations.push(Relation {
                    qualifiers: alias_qualifier(alias.as_ref()),
                    kind: RelationKind::Derived {
                        columns: renamed_columns(alias.as_ref()).or(output),
                    },
                });
                Ok(())
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset_alias,
                ..
            } => {
                // UNNEST expands arrays and maps; it reads no table. Its arguments name the
                // columns of the FROM items before it, never its own.
                self.names_in(array_exprs, &env.with_scope(scope.clone()))?;
                // Without names, an array of rows unnests into the rows' own fields.
                let columns = renamed_columns(alias.as_ref()).map(|mut columns| {
                    columns.extend(with_offset_alias.iter().map(|a| a.value.to_lowercase()));
                    columns
                });
                scope.relations.push(Relation {
                    qualifiers: alias_qualifier(alias.as_ref()),
                    kind: RelationKind::Derived { columns },
                });
                Ok(())
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                self.add_from_item(table_with_joins, env, scope)?;
                if alias.is_some() {
                    scope.relations.push(Relation {
                        qualifiers: alias_qualifier(alias.as_ref()),
                        kind: RelationKind::Derived { columns: None },
                    });
                }
                Ok(())
            }
            TableFactor::Function { name, .. } => {
                Err(Refusal::Unsupported(format!("the table function `{name}`")))
            }
            TableFactor::TableFunction { .. } => {
                Err(Refusal::Unsupported("`TABLE(…)` in FROM".into()))
            }
            TableFactor::Pivot { .. } | TableFactor::Unpivot { .. } => {
                Err(Refusal::Unsupported("`PIVOT` / `UNPIVOT`".into()))
            }
            TableFactor::MatchRecognize { .. } => {
                Err(Refusal::Unsupported("`MATCH_RECOGNIZE`".into()))
            }
            _ => Err(Refusal::Unsupported(
                "this kind of FROM item (only tables, subqueries, joins and UNNEST)".into(),
            )),
        }
    }

    /// Checks the column names in `node` against `env`'s scopes, at once.
    fn names_in<V: Visit>(&mut self, node: &V, env: &Env) -> Result<(), Refusal> {
        for parts in self.scan(node, env)?.idents {
            self.column(&parts, &env.scopes)?;
        }
        Ok(())
    }

    /// Collects the column references in `node` (lambda parameters inside their lambdas are
    /// none), and checks every subquery in it with `env`, whose innermost scope is that of
    /// the query `node` belongs to.
    fn scan<V: Visit>(&mut self, node: &V, env: &Env) -> Result<Names, Refusal> {
        let mut scanner = Scanner {
            checker: self,
            env,
            depth: 0,
            names: Names::default(),
            lambdas: Vec::new(),
            normal_forms: Vec::new(),
        };
        match node.visit(&mut scanner) {
            ControlFlow::Continue(()) => Ok(scanner.names),
            ControlFlow::Break(refusal) => Err(refusal),
        }
    }

    /// Checks one column reference, `col` or `prefix.col[.field…]`, against the scopes it may
    /// refer to (outermost first), the way Trino resolves it: as a column of the innermost
    /// relation the prefix names; failing that, its first part as a column (holding a row).
    fn column(&mut self, parts: &[String], scopes: &[Scope]) -> Result<(), Refusal> {
        let Some(first) = parts.first() else {
            return Ok(());
        };
        if parts.len() > 1 {
            for scope in scopes.iter().rev() {
                let best = scope
                    .relations
                    .iter()
                    .flat_map(|r| r.qualifiers.iter().map(move |q| (r, q)))
                    .filter(|(_, q)| parts.len() > q.len() && parts.starts_with(q))
                    .max_by_key(|(_, q)| q.len());
                if let Some((relation, qualifier)) = best {
                    let relation = relation.clone();
                    let column = &parts[qualifier.len()];
                    if relation.has(column) == Has::No {
                        return Err(Refusal::UnknownColumn(parts.join(".")));
                    }
                    return self.attributed_column(&relation, column);
                }
            }
            // No relation is called `first`: it is a column holding a row (`address.city`).
        }
        self.unqualified_column(first, scopes)
    }

    fn unqualified_column(&mut self, name: &str, scopes: &[Scope]) -> Result<(), Refusal> {
        // Tables limited to some columns, of unknown catalog, that may hold the name in a
        // scope nearer than where it was found: Trino would take theirs.
        let mut unsure: Vec<String> = Vec::new();
        // A relation of unknown columns may hold it.
        let mut opaque = false;
        for scope in scopes.iter().rev() {
            let owners: Vec<Relation> = scope
                .relations
                .iter()
                .filter(|r| r.has(name) == Has::Yes)
                .cloned()
                .collect();
            if !owners.is_empty() {
                if !unsure.is_empty() {
                    break;
                }
                // Two owners would be ambiguous to Trino; each is checked all the same.
                for owner in &owners {
                    self.attributed_column(owner, name)?;
                }
                return Ok(());
            }
            for relation in &scope.relations {
                if relation.has(name) == Has::Maybe {
                    match &relation.kind {
                        RelationKind::Granted {
                            database,
                            table,
                            granted: Some(_),
                            ..
                        } => unsure.push(format!("{database}.{table}")),
                        _ => opaque = true,
                    }
                }
            }
        }
        if !unsure.is_empty() {
            return Err(Refusal::ColumnNotGranted {
                column: name.to_string(),
                table: unsure.join(" or "),
            });
        }
        if opaque {
            return Ok(());
        }
        Err(Refusal::UnknownColumn(name.to_string()))
    }

    /// Checks that `relation`'s `column` is granted, and records it as read.
    fn attributed_column(&mut self, relation: &Relation, column: &str) -> Result<(), Refusal> {
        if let RelationKind::Granted {
            database,
            table,
            granted,
            ..
        } = &relation.kind
        {
            if granted.as_ref().is_some_and(|c| !c.contains(column)) {
                return Err(Refusal::ColumnNotGranted {
                    column: column.to_string(),
                    table: format!("{database}.{table}"),
                });
            }
            self.columns
                .insert((database.clone(), table.clone(), column.to_string()));
        }
        Ok(())
    }

    /// `SELECT *` or `t.*` over `relation`: refused on a table only partly granted;
    /// otherwise every column the catalog lists is read.
    fn wildcard(&mut self, relation: &Relation) -> Result<(), Refusal> {
        if let RelationKind::Granted {
            database,
            table,
            granted,
            catalog,
        } = &relation.kind
        {
            if let Some(columns) = granted {
                return Err(Refusal::WildcardOnPartialGrant {
                    table: format!("{database}.{table}"),
                    columns: columns.iter().cloned().collect::<Vec<_>>().join(", "),
                });
            }
            for column in catalog.iter().flatten() {
                self.columns
                    .insert((database.clone(), table.clone(), column.clone()));
            }
        }
        Ok(())
    }

    /// Resolves a table name to `(database, table)` and checks that the grant holds it.
    fn granted_table(&self, name: &ObjectName) -> Result<(String, String), Refusal> {
        let (database, table) = match object_parts(name)?.as_slice() {
            [table] => match &self.default_database {
                Some(db) => (db.clone(), table.clone()),
                None => {
                    return Err(Refusal::NoDatabase {
                        table: table.clone(),
                    });
                }
            },
            [db, table] => (db.clone(), table.clone()),
            [catalog, db, table] if catalog == DEFAULT_CATALOG => (db.clone(), table.clone()),
            [catalog, _, _] => return Err(Refusal::Catalog(catalog.clone())),
            _ => return Err(Refusal::BadName(name.to_string())),
        };
        if database == "information_schema" {
            return Err(Refusal::InformationSchema);
        }
        if !self.grant.contains_key(&(database.clone(), table.clone())) {
            return Err(Refusal::TableNotGranted(format!("{database}.{table}")));
        }
        Ok((database, table))
    }

    fn resolved_relation(&mut self, name: &ObjectName) {
        *self.resolved.entry(name.to_string()).or_default() += 1;
    }

    /// A last line of defence: sqlparser's own list of the statement's relations must hold
    /// nothing the walk above did not resolve. A table in a place the walk does not know
    /// would otherwise pass unchecked.
    fn every_relation_was_checked(&self, statement: &Statement) -> Result<(), Refusal> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let _ = visit_relations(statement, |name| {
            *seen.entry(name.to_string()).or_default() += 1;
            ControlFlow::<()>::Continue(())
        });
        for (name, count) in seen {
            if self.resolved.get(&name).copied().unwrap_or(0) < count {
                return Err(Refusal::Unsupported(format!(
                    "a table reference in this position (`{name}`)"
                )));
            }
        }
        Ok(())
    }
}

/// Column references found in expressions, each as its lower-case name parts, to be
/// checked once the whole SELECT has been seen.
#[derive(Debug, Default)]
struct Names {
    idents: Vec<Vec<String>>,
}

impl Names {
    fn absorb(&mut self, other: Names) {
        self.idents.extend(other.idents);
    }
}

/// Walks expressions with sqlparser's visitor, so that no kind of expression is missed.
/// Subqueries are handed to the checker as they are met, with the enclosing scopes; their
/// insides (depth > 0) are the checker's business, not this scan's.
struct Scanner<'a> {
    checker: &'a mut Checker,
    env: &'a Env,
    depth: usize,
    names: Names,
    /// Parameters of the lambdas being walked through (`x` in `transform(a, x -> x + 1)`):
    /// inside its lambda, such a name is no column.
    lambdas: Vec<BTreeSet<String>>,
    /// The normal-form arguments of `normalize(…)` met so far: no column names.
    normal_forms: Vec<*const Expr>,
}

impl Scanner<'_> {
    fn is_lambda_param(&self, name: &str) -> bool {
        self.lambdas.iter().any(|params| params.contains(name))
    }
}

impl Visitor for Scanner<'_> {
    type Break = Refusal;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Refusal> {
        if self.depth == 0
            && let Err(refusal) = self.checker.query(query, self.env)
        {
            return ControlFlow::Break(refusal);
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<Refusal> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<Refusal> {
        // Inside a subquery the checker resolves it; out here it is `x IN some_table`.
        if self.depth == 0 {
            return ControlFlow::Break(Refusal::Unsupported(format!(
                "a table name inside an expression (`{name}`; write a subquery)"
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Refusal> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                let parts = match expr {
                    Expr::Identifier(ident) => vec![ident.value.to_lowercase()],
                    Expr::CompoundIdentifier(idents) => lower_idents(idents),
                    _ => Vec::new(),
                };
                let normal_form = self.normal_forms.iter().any(|e| std::ptr::eq(*e, expr));
                if !normal_form
                    && !parts
                        .first()
                        .is_some_and(|first| self.is_lambda_param(first))
                {
                    self.names.idents.push(parts);
                }
            }
            _ => {
                if let Some(params) = lambda_params(expr) {
                    self.lambdas.push(params);
                }
                if let Some(form) = normal_form_arg(expr) {
                    self.normal_forms.push(form);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Refusal> {
        if self.depth == 0 && lambda_params(expr).is_some() {
            self.lambdas.pop();
        }
        ControlFlow::Continue(())
    }
}

/// The parameters of `expr` if it is a lambda. The generic dialect reads Athena's
/// `x -> x + 1` and `(s, x) -> s + x` as an arrow operator, not as a lambda.
fn lambda_params(expr: &Expr) -> Option<BTreeSet<String>> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Arrow,
            ..
        } => {
            let mut params = BTreeSet::new();
            arrow_params(left, &mut params);
            Some(params)
        }
        Expr::Lambda(lambda) => Some(
            lambda
                .params
                .iter()
                .map(|p| p.name.value.to_lowercase())
                .collect(),
        ),
        _ => None,
    }
}

/// The second argument of `normalize(s, NFD)`, when it is one of the normal forms.
fn normal_form_arg(expr: &Expr) -> Option<*const Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    if !lower_parts(&function.name).eq(&["normalize"]) {
        return None;
    }
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    match list.args.as_slice() {
        [
            _,
            FunctionArg::Unnamed(FunctionArgExpr::Expr(form @ Expr::Identifier(ident))),
        ] if NORMAL_FORMS.contains(&ident.value.to_lowercase().as_str()) => {
            Some(form as *const Expr)
        }
        _ => None,
    }
}

fn arrow_params(expr: &Expr, params: &mut BTreeSet<String>) {
    match expr {
        Expr::Identifier(ident) => {
            params.insert(ident.value.to_lowercase());
        }
        Expr::Nested(inner) => arrow_params(inner, params),
        Expr::Tuple(items) => {
            for item in items {
                arrow_params(item, params);
            }
        }
        _ => {}
    }
}

pub(crate) fn join_constraint(operator: &JoinOperator) -> Option<&JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c)
        | JoinOperator::AsOf { constraint: c, .. } => Some(c),
        _ => None,
    }
}

/// The outermost query, or the single parenthesized query it consists of, has a row limit.
fn has_limit(query: &Query) -> bool {
    let limited = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit, .. }) => limit.is_some(),
        Some(LimitClause::OffsetCommaLimit { .. }) => true,
        None => false,
    };
    limited
        || query.fetch.is_some()
        || matches!(query.body.as_ref(), SetExpr::Query(inner) if has_limit(inner))
}

fn show_parent(options: &ShowStatementOptions) -> Option<&ObjectName> {
    options.show_in.as_ref()?.parent_name.as_ref()
}

/// Name parts in lower case, quotes removed: Glue stores names in lower case, and Athena
/// matches `"Sales"."Orders"` to `sales.orders`.
fn object_parts(name: &ObjectName) -> Result<Vec<String>, Refusal> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Ok(ident.value.to_lowercase()),
            ObjectNamePart::Function(_) => Err(Refusal::BadName(name.to_string())),
        })
        .collect()
}

/// Like [`object_parts`], for places where a function part simply matches nothing.
pub(crate) fn lower_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident.value.to_lowercase(),
            ObjectNamePart::Function(_) => String::new(),
        })
        .collect()
}

fn lower_idents(idents: &[Ident]) -> Vec<String> {
    idents.iter().map(|i| i.value.to_lowercase()).collect()
}

/// The column names `AS t(a, b)` gives, if it gives any.
fn renamed_columns(alias: Option<&sqlparser::ast::TableAlias>) -> Columns {
    let alias = alias.filter(|a| !a.columns.is_empty())?;
    Some(
        alias
            .columns
            .iter()
            .map(|c| c.name.value.to_lowercase())
            .collect(),
    )
}

/// The name Trino gives an unaliased output column: that of a column reference or a field
/// dereference (`t.a.b` is `b`); other expressions give none.
fn expr_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.to_lowercase()),
        Expr::CompoundIdentifier(idents) => idents.last().map(|i| i.value.to_lowercase()),
        Expr::Nested(inner) => expr_name(inner),
        _ => None,
    }
}

fn alias_qualifier(alias: Option<&sqlparser::ast::TableAlias>) -> Vec<Vec<String>> {
    alias
        .map(|a| vec![vec![a.name.value.to_lowercase()]])
        .unwrap_or_default()
}

/// How a refused statement is named to the person: its leading keyword (`DROP`, `INSERT`,
/// `UNLOAD`), taken from sqlparser's rendering so that every statement kind has one.
fn statement_name(statement: &Statement) -> String {
    if let Statement::CreateTable(create) = statement
        && create.query.is_some()
    {
        return "CREATE TABLE AS SELECT".into();
    }
    let word = leading_words(&statement.to_string(), 1);
    if word.is_empty() {
        "these".into()
    } else {
        word
    }
}

/// The first `count` words of `text`, letters and `_` only, upper case.
fn leading_words(text: &str, count: usize) -> String {
    text.split(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(count)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Vec<ResourceSpec> {
        vec![
            ResourceSpec {
                database: "sales".into(),
                table: "orders".into(),
                columns: None,
            },
            ResourceSpec {
                database: "sales".into(),
                table: "customers".into(),
                columns: Some(vec!["country".into(), "customer_id".into()]),
            },
        ]
    }

    fn run(sql: &str) -> Result<CheckedQuery, Refusal> {
        let grant = grant();
        check(
            sql,
            &GuardContext {
                grant: &grant,
                catalog: &[],
                default_database: Some("sales"),
                require_limit: false,
            },
        )
    }

    #[test]
    fn leading_words_names_statements() {
        assert_eq!(leading_words("UNLOAD(SELECT 1) TO 's3://x'", 1), "UNLOAD");
        assert_eq!(
            leading_words("show databases like 'x'", 2),
            "SHOW DATABASES"
        );
        assert_eq!(leading_words("", 1), "");
    }

    #[test]
    fn collects_tables_and_attributable_columns() {
        let checked = run(
            "SELECT o.amount, country FROM orders o JOIN sales.customers c ON o.customer_id = c.customer_id",
        )
        .unwrap();
        assert_eq!(
            checked.tables,
            vec![
                ("sales".to_string(), "customers".to_string()),
                ("sales".to_string(), "orders".to_string())
            ]
        );
        let columns: Vec<String> = checked
            .columns
            .iter()
            .map(|(d, t, c)| format!("{d}.{t}.{c}"))
            .collect();
        // `country` is unqualified; of the tables whose columns are known (here only from
        // the grant), customers has it. Orders' columns are not known, and Trino would call
        // the name ambiguous if orders had it too: either way, customers' column is checked.
        assert_eq!(
            columns,
            vec![
                "sales.customers.country",
                "sales.customers.customer_id",
                "sales.orders.amount",
                "sales.orders.customer_id"
            ]
        );
    }

    #[test]
    fn every_relation_check_catches_unwalked_places() {
        // The walk itself refuses `x IN table`; the safety net must agree on its own, as
        // seen from a checker that resolved nothing.
        let statements = Parser::parse_sql(
            // Trino has no `x IN table`, so the guard's own dialect does not parse it: the
            // generic one builds the statement the net must catch.
            &sqlparser::dialect::GenericDialect {},
            "SELECT 1 FROM sales.orders WHERE id IN sales.secrets",
        )
        .unwrap();
        let grant = grant();
        let checker = Checker::new(&GuardContext {
            grant: &grant,
            catalog: &[],
            default_database: None,
            require_limit: false,
        });
        let err = checker
            .every_relation_was_checked(&statements[0])
            .unwrap_err();
        assert!(matches!(err, Refusal::Unsupported(_)), "{err}");
    }

    #[test]
    fn survives_deep_and_long_input_on_a_small_stack() {
        // Run where async handlers run: on a 2 MiB stack. The guard must not take the
        // process down, whatever the text.
        let inputs = [
            format!("{}SELECT 1", "EXPLAIN ".repeat(200)),
            format!("{}SELECT 1", "DESC ".repeat(200)),
            format!("{}SELECT 1", "PREPARE a AS ".repeat(200)),
            format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("SELECT 1{}", " + 1".repeat(4990)),
            format!("SELECT 1{}", " UNION SELECT 1".repeat(3000)),
            format!("SELECT 1{}", " + 1".repeat(60_000)),
            format!(
                "SELECT * FROM {}orders{}",
                "(SELECT * FROM ".repeat(300),
                ")".repeat(300)
            ),
            "x".repeat(MAX_SQL_BYTES + 1),
        ];
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for sql in &inputs {
                    let result = run(sql);
                    assert_ne!(result, Err(Refusal::Internal), "{}", &sql[..40]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
