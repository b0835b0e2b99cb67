"""What each captured statement must satisfy to run on Redshift, checked with two independent Redshift grammars
(sqlglot's and sqlfluff's) and with Redshift's documented lists (reserved words, functions by node).

Each check returns the problems it finds in one statement, as sentences; none means the statement passes.
"""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import sqlglot
from sqlglot import exp

from sparkify.settings import reserved_words

DATA = Path(__file__).with_name("data")
# Schemas Redshift keeps on its leader node: a statement reading only these runs there.
CATALOG_SCHEMAS = {"pg_catalog", "information_schema"}
# Tables of Redshift's system log and views, which live on the compute nodes.
SYSTEM_TABLE = re.compile(r"^(stl|stv|svl|svv|sys)_")
TEXT_TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR}
NILADIC = {
    exp.CurrentTimestamp: "current_timestamp",
    exp.CurrentTime: "current_time",
    exp.CurrentDate: "current_date",
    exp.CurrentUser: "current_user",
}
# A gap of sqlfluff's Redshift grammar, not of the statement: the column definition list Redshift requires
# after pg_get_late_binding_view_cols() (documented with the function), in dbt-redshift's own catalog queries.
SQLFLUFF_GAPS = (re.compile(r"pg_get_late_binding_view_cols\(\)\s*\w*\s*$", re.IGNORECASE),)


# Statements sqlglot has no grammar for (it parses them as an opaque command) but Redshift documents: the
# reader's login and grants (CREATE USER; GRANT ... ON ALL TABLES IN SCHEMA; ALTER DEFAULT PRIVILEGES). Only
# sqlfluff's grammar checks them.
SQLGLOT_GAPS = re.compile(
    r"^\s*(create\s+user\s|grant\s+select\s+on\s+all\s+tables\s+in\s+schema\s|alter\s+default\s+privileges\s)",
    re.IGNORECASE,
)


def _words(name: str) -> frozenset[str]:
    lines = (DATA / name).read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


COMPUTE_FUNCTIONS = _words("functions.txt")
LEADER_FUNCTIONS = _words("leader_node_functions.txt")


def parse(sql: str) -> list[exp.Expression]:
    return [tree for tree in sqlglot.parse(sql, read="redshift") if tree is not None]


def sqlglot_problems(sql: str) -> list[str]:
    if SQLGLOT_GAPS.match(sql):
        return []
    try:
        trees = parse(sql)
    except sqlglot.errors.ParseError as error:
        return [f"sqlglot (redshift) rejects it: {str(error).splitlines()[0]}"]
    if not trees:
        return ["sqlglot (redshift) finds no statement in it"]
    return [
        f"sqlglot (redshift) only parses it as an opaque command: {command.sql()[:80]!r}"
        for tree in trees
        for command in tree.find_all(exp.Command)
    ]


@cache
def _linter():
    from sqlfluff.core import FluffConfig, Linter

    return Linter(config=FluffConfig(overrides={"dialect": "redshift"}))


def sqlfluff_problems(sql: str) -> list[str]:
    parsed = _linter().parse_string(sql)
    if parsed.tree is None:
        return [f"sqlfluff (redshift) rejects it: {[v.desc() for v in parsed.violations][:1]}"]
    problems = []
    for segment in parsed.tree.recursive_crawl("unparsable"):
        before = sql[: segment.pos_marker.source_slice.start]
        if any(gap.search(before) for gap in SQLFLUFF_GAPS):
            continue
        problems.append(f"sqlfluff (redshift) cannot parse {segment.raw[:80]!r}")
    return problems


def grammar_problems(sql: str) -> list[str]:
    return sqlglot_problems(sql) + sqlfluff_problems(sql)


# A string literal, '' inside it included.
STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")


def all_grammar_problems(statements: list[str]) -> dict[str, list[str]]:
    """``grammar_problems`` of each statement, on every core (sqlfluff takes about 0.15 s a statement). What a
    string literal holds never changes how a statement parses: statements that differ only there (the same step
    on another day, with another run id) are parsed once, and share the result."""
    shapes = {sql: STRING_LITERAL.sub("''", sql) for sql in statements}
    first = {}
    for sql, shape in shapes.items():
        first.setdefault(shape, sql)
    with ProcessPoolExecutor() as pool:
        found = dict(zip(first, pool.map(grammar_problems, first.values(), chunksize=8), strict=True))
    return {sql: found[shape] for sql, shape in shapes.items()}


def _catalog_oid(identifier: exp.Identifier) -> bool:
    """``pg_class.oid``: the catalog's system column, qualified, as dbt-redshift itself queries it on every run."""
    column = identifier.parent
    return identifier.name.lower() == "oid" and isinstance(column, exp.Column) and bool(column.table)


def reserved_word_problems(sql: str) -> list[str]:
    """Unquoted identifiers that Redshift reserves (``raw``, ``user``, ``timestamp`` ...)."""
    reserved = reserved_words()["redshift"]
    return sorted(
        {
            f"unquoted identifier {identifier.name!r} is a Redshift reserved word"
            for tree in parse(sql)
            for identifier in tree.find_all(exp.Identifier)
            if not identifier.quoted and identifier.name.lower() in reserved and not _catalog_oid(identifier)
        }
    )


def function_names(sql: str, tree: exp.Expression) -> set[str]:
    """Every function the statement calls, by the name it is written with."""
    names = set()
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Anonymous):
            names.add(node.name.lower())
        elif type(node) in NILADIC and "start" not in node.meta:
            names.add(NILADIC[type(node)])
        elif "start" in node.meta:
            names.add(sql[node.meta["start"] : node.meta["end"] + 1].lower())
    return names


def reads_tables(tree: exp.Expression) -> list[str]:
    """The user and system tables a statement reads or writes (catalog tables and CTEs left out)."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables = []
    for table in tree.find_all(exp.Table):
        name, schema = table.name.lower(), table.db.lower()
        if not name or schema in CATALOG_SCHEMAS or name.startswith("pg_") or (not schema and name in ctes):
            continue
        tables.append(f"{schema}.{name}" if schema else name)
    return tables


def function_problems(sql: str) -> list[str]:
    """Functions Redshift does not have, and leader-node-only functions in a statement that reads a table."""
    problems = []
    for tree in parse(sql):
        names = function_names(sql, tree)
        for name in sorted(names - COMPUTE_FUNCTIONS - LEADER_FUNCTIONS):
            problems.append(f"{name}() is not a Redshift function")
        tables = reads_tables(tree)
        for name in sorted(names & (LEADER_FUNCTIONS - COMPUTE_FUNCTIONS)):
            if tables:
                problems.append(
                    f"{name}() runs on Redshift's leader node only, but the statement touches {', '.join(tables)}"
                )
    return problems


def _in_create_table(node: exp.Expression) -> bool:
    create = node.find_ancestor(exp.Create)
    return create is not None and str(create.args.get("kind", "")).upper() == "TABLE"


def type_problems(sql: str) -> list[str]:
    """Text types without a length where Redshift would give one silently: a table's column defined, or a
    value cast, as varchar/text (varchar(256)) or char (char(1)). (The column definition list of a function's
    result, as dbt-redshift writes for pg_get_late_binding_view_cols(), declares no storage.)"""
    problems = []
    for tree in parse(sql):
        for data_type in tree.find_all(exp.DataType):
            if data_type.this not in TEXT_TYPES or data_type.expressions:
                continue
            parent = data_type.parent
            if isinstance(parent, exp.Cast):
                if isinstance(parent.this, exp.Literal | exp.Null):
                    continue
                where = "a cast"
            elif isinstance(parent, exp.ColumnDef) and _in_create_table(parent):
                where = "a column definition"
            else:
                continue
            problems.append(
                f"{data_type.sql()} without a length in {where} ({parent.sql()[:80]!r}): "
                f"{'char(1)' if data_type.this == exp.DataType.Type.CHAR else 'varchar(256)'} on Redshift"
            )
    return problems
