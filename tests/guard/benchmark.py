"""Write the SQL guard's benchmark input: TPC-H's 22 queries in Trino SQL, each with
the base-table columns it reads, as decided by sqlglot rather than by lakegate.

    python3 tests/guard/benchmark.py OUT.json

The query texts come from the ibis-framework package, which ships DuckDB's TPC-H
queries as test data (ibis/backends/tests/tpc/queries/duckdb/h/NN.sql); sqlglot
transpiles them from DuckDB to Trino, qualifies every column against the TPC-H
schema and resolves it through aliases, derived tables and CTEs to a base table.
Any query that sqlglot cannot qualify, or a column it cannot place in a table,
stops the script with a non-zero exit. Both packages come from
scripts/requirements.txt.

Output: {"source": "ibis-framework X.Y.Z",
         "schema": {table: [column, ...]},
         "queries": [{"name": "q01", "sql": ..., "reads": {table: [column, ...]}}]}
with unqualified lower-case table names and every list sorted.
"""

import importlib.metadata
import json
import sys

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope, traverse_scope

PACKAGE = "ibis-framework"
QUERY_DIR = "ibis/backends/tests/tpc/queries/duckdb/h/"

# The TPC-H schema (specification, clause 1.4). Name resolution needs no types.
SCHEMA = {
    "customer": "c_custkey c_name c_address c_nationkey c_phone c_acctbal c_mktsegment c_comment",
    "lineitem": "l_orderkey l_partkey l_suppkey l_linenumber l_quantity l_extendedprice"
    " l_discount l_tax l_returnflag l_linestatus l_shipdate l_commitdate l_receiptdate"
    " l_shipinstruct l_shipmode l_comment",
    "nation": "n_nationkey n_name n_regionkey n_comment",
    "orders": "o_orderkey o_custkey o_orderstatus o_totalprice o_orderdate o_orderpriority"
    " o_clerk o_shippriority o_comment",
    "part": "p_partkey p_name p_mfgr p_brand p_type p_size p_container p_retailprice p_comment",
    "partsupp": "ps_partkey ps_suppkey ps_availqty ps_supplycost ps_comment",
    "region": "r_regionkey r_name r_comment",
    "supplier": "s_suppkey s_name s_address s_nationkey s_phone s_acctbal s_comment",
}
SCHEMA = {table: columns.split() for table, columns in SCHEMA.items()}
TYPED_SCHEMA = {table: dict.fromkeys(columns, "unknown") for table, columns in SCHEMA.items()}


def fail(message):
    sys.exit(f"benchmark.py: {message}")


def expand_group_by_aliases(tree):
    """DuckDB looks a GROUP BY name up in the FROM relations and then in the select
    list's aliases; Trino in the FROM relations only (TPC-H Q15 groups by the alias
    `supplier_no`). Replace each group key that names an alias but no input column
    with the aliased expression: sqlglot's transpiler leaves such keys as they are."""
    for scope in build_scope(tree).traverse():
        select = scope.expression
        if not isinstance(select, exp.Select) or not select.args.get("group"):
            continue
        inputs = set()
        for source in scope.sources.values():
            if isinstance(source, Scope):
                inputs.update(source.expression.named_selects)
            else:
                inputs.update(SCHEMA.get(source.name, ()))
        aliases = {s.alias: s.this for s in select.expressions if isinstance(s, exp.Alias)}
        for key in list(select.args["group"].expressions):
            alias_only = key.name in aliases and key.name not in inputs
            if isinstance(key, exp.Column) and not key.table and alias_only:
                key.replace(aliases[key.name].copy())
    return tree


def find_source(scope, name):
    """The source a column qualifier names: in the column's own scope, or, for a
    correlated column, in an enclosing one."""
    while scope is not None:
        if name in scope.sources:
            return scope.sources[name]
        scope = scope.parent
    return None


def reads(sql, dialect, label):
    """The base-table columns a query reads, {table: sorted columns}."""
    try:
        tree = qualify(sqlglot.parse_one(sql, read=dialect), schema=TYPED_SCHEMA, dialect=dialect)
    except sqlglot.errors.SqlglotError as error:
        fail(f"{label}: sqlglot cannot qualify the {dialect} text: {error}")
    found = {}
    for scope in traverse_scope(tree):
        # After qualification scope.columns holds every column reference except the
        # ORDER BY names of the scope's own select list, and each carries a qualifier.
        for column in scope.columns:
            source = find_source(scope, column.table)
            if source is None:
                fail(f"{label}: column {column.sql()} resolves to no table")
            if isinstance(source, exp.Table):
                found.setdefault(source.name.lower(), set()).add(column.name.lower())
            # A column of a derived table or CTE: its inputs are counted in that scope.
    return {table: sorted(columns) for table, columns in sorted(found.items())}


def main():
    if len(sys.argv) != 2:
        fail("usage: benchmark.py OUT.json")
    dist = importlib.metadata.distribution(PACKAGE)
    files = sorted((f for f in dist.files or () if str(f).startswith(QUERY_DIR)), key=str)
    files = [f for f in files if f.name.endswith(".sql")]
    if [f.name for f in files] != [f"{n:02d}.sql" for n in range(1, 23)]:
        fail(f"{PACKAGE} {dist.version} does not ship the 22 TPC-H queries under {QUERY_DIR}")

    queries = []
    for file in files:
        name = f"q{file.name[:2]}"
        duckdb_sql = file.read_text()
        tree = expand_group_by_aliases(sqlglot.parse_one(duckdb_sql, read="duckdb"))
        trino_sql = tree.sql(dialect="trino", pretty=True)
        read = reads(trino_sql, "trino", name)
        # The translation must not change what is read.
        if read != reads(duckdb_sql, "duckdb", name):
            fail(f"{name}: the Trino text reads other columns than the DuckDB text")
        queries.append({"name": name, "sql": trino_sql, "reads": read})

    out = {
        "source": f"{PACKAGE} {dist.version}",
        "schema": {table: sorted(columns) for table, columns in sorted(SCHEMA.items())},
        "queries": queries,
    }
    with open(sys.argv[1], "w") as handle:
        json.dump(out, handle, indent=2)
        handle.write("\n")


if __name__ == "__main__":
    main()
