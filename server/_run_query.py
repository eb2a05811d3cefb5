"""A project's runs, filtered, sorted and paged by the database.

``filters`` (the wandb-style document of :mod:`._filters`, same fields, operators and
meaning) is compiled to SQL over the ``runs`` columns and the JSON copies of config and
summary (``config_json``, ``summary_json``, see :mod:`._run_json`): SQLite's JSON1 functions
or PostgreSQL's ``jsonb``. ``order`` is a field (``created_at``, ``name``, ``config.lr``,
``summary.loss`` ...), with a leading ``-`` for descending; runs without the field come last,
ties go by creation. :mod:`._filters` stays the reference meaning; a test checks both agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, text

from . import _schema as s
from ._filters import _OPERATORS, _ORDER, _field_path
from ._nesting import check_depth
from .errors import BadRequest

_COLUMNS = {"state": "state", "group": "run_group", "job_type": "job_type", "name": "name"}
_COLUMNS.update(id="run_id", host="host", user="user_name")
SORTABLE = frozenset({"created_at", "heartbeat_at", "finished_at", "last_step", *_COLUMNS})
MAX_LIMIT = 10_000
MAX_OFFSET = 2**62  # binds as int64 in both databases
_SELECTED = ", ".join(c.name for c in s.runs.columns if not c.name.endswith("_json"))
_SQL_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


@dataclass(slots=True)
class _Sql:
    """SQL fragments for one dialect, with their bound parameters."""

    pg: bool
    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    # a JSON value at a path: its type ("number" "string" "true" "false" "null" "array"
    # "object", NULL when missing) and SQL expressions to compare it
    def json_at(self, column: str, path: list[str]) -> _Value:
        if self.pg:
            return _pg_json(f"({column} #> CAST({self.bind(path)} AS text[]))")
        where = self.bind("$" + "".join("." + json.dumps(p) for p in path))
        kind = (
            f"(CASE json_type({column}, {where}) WHEN 'integer' THEN 'number' "
            f"WHEN 'real' THEN 'number' WHEN 'text' THEN 'string' "
            f"ELSE json_type({column}, {where}) END)"
        )
        value = f"json_extract({column}, {where})"
        return _Value(value, kind, value, value, raw=f"json_type({column}, {where})")

    def tags(self) -> _Value:
        expr = "CAST(tags AS jsonb)" if self.pg else "tags"
        return _Value(expr, "'array'", "NULL", "NULL")

    def elements(self, v: _Value) -> tuple[str, _Value]:
        """A FROM clause over the elements of an array value, and the element's value."""
        if self.pg:
            source = (
                f"jsonb_array_elements(CASE WHEN jsonb_typeof({v.expr}) = 'array' "
                f"THEN {v.expr} ELSE '[]'::jsonb END) AS el(v)"
            )
            return source, _pg_json("el.v")
        source = f"json_each(CASE WHEN {v.kind} = 'array' THEN {v.expr} ELSE '[]' END) AS el"
        kind = (
            "(CASE el.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            "WHEN 'text' THEN 'string' ELSE el.type END)"
        )
        return source, _Value("el.value", kind, "el.value", "el.value", raw="el.type")


def _pg_json(expr: str) -> _Value:
    """A jsonb value: compared as jsonb (exact decimals, no cast that could fail)."""
    typeof = f"jsonb_typeof({expr})"
    kind = f"(CASE {typeof} WHEN 'boolean' THEN ({expr} #>> '{{}}') ELSE {typeof} END)"
    string = f"({expr} #>> '{{}}') COLLATE \"C\""
    return _Value(expr, kind, expr, string, jsonb=True)


@dataclass(frozen=True, slots=True)
class _Value:
    expr: str  # the value (JSON on PostgreSQL)
    kind: str  # its type name, NULL when missing
    number: str  # as a number, where kind is 'number'
    string: str  # as text, where kind is 'string'
    may_be_list: bool = True
    jsonb: bool = False  # PostgreSQL jsonb: compared as jsonb
    raw: str | None = None  # SQLite: json_type() of the value, cheaper to test than kind

    def is_(self, kind: str) -> str:
        """The condition that the value is of ``kind``."""
        if self.jsonb:
            if kind in ("true", "false"):
                return f"({self.expr} = '{kind}'::jsonb)"
            return f"(jsonb_typeof({self.expr}) = '{kind}')"
        if self.raw is None:
            return f"{self.kind} = '{kind}'"
        if kind == "number":
            return f"{self.raw} IN ('integer', 'real')"
        return f"{self.raw} = '{'text' if kind == 'string' else kind}'"

    def compare(self, sql: _Sql, kind: str, op: str, want: Any) -> str:
        """``value op want`` for a value of ``kind`` (a number or a str)."""
        if self.jsonb:
            # the number as its JSON text: the decimal stored, compared exactly
            bound = sql.bind(json.dumps(want) if kind == "number" else want)
            want_json = f"to_jsonb(CAST({bound} AS {'numeric' if kind == 'number' else 'text'}))"
            if op == "=":
                return f"COALESCE({self.expr} = {want_json}, FALSE)"
            if kind == "number":
                return f"COALESCE({self.is_(kind)} AND {self.expr} {op} {want_json}, FALSE)"
            return f"COALESCE({self.is_(kind)} AND {self.string} {op} {bound}, FALSE)"
        value = self.number if kind == "number" else self.string
        bound = sql.bind(want)
        if self.raw is None:  # a column: no JSON to parse
            return f"COALESCE({self.is_(kind)} AND {value} {op} {bound}, FALSE)"
        # SQLite: compare first, so most rows parse the JSON once
        return f"COALESCE({value} {op} {bound} AND {self.is_(kind)}, FALSE)"

    def present(self) -> str:
        if self.jsonb:
            return f"({self.expr} IS NOT NULL)"
        return f"({self.raw if self.raw is not None else self.kind} IS NOT NULL)"


def _column(sql: _Sql, name: str) -> _Value:
    kind = f"(CASE WHEN {name} IS NULL THEN 'null' ELSE 'string' END)"
    return _Value(name, kind, name, f'{name} COLLATE "C"' if sql.pg else name, False)


def _kind_of(want: Any) -> str:
    if want is True or want is False:
        return "true" if want else "false"
    if want is None:
        return "null"
    if isinstance(want, (int, float)):
        return "number"
    if isinstance(want, str):
        return "string"
    return "array" if isinstance(want, list) else "object"


def _scalar_eq(sql: _Sql, v: _Value, want: Any) -> str:
    kind = _kind_of(want)
    if kind in ("true", "false", "null"):
        return f"COALESCE({v.is_(kind)}, FALSE)"
    if kind in ("number", "string"):
        return v.compare(sql, kind, "=", want)
    doc = sql.bind(json.dumps(want, separators=(",", ":")))
    if sql.pg:
        return f"COALESCE({v.expr} = CAST({doc} AS jsonb), FALSE)"
    return f"COALESCE({v.kind} = '{kind}' AND {v.expr} = json({doc}), FALSE)"


def _eq(sql: _Sql, v: _Value, want: Any) -> str:
    """Python's ``_equal``: a list field equals a non-list value it holds."""
    direct = _scalar_eq(sql, v, want)
    if isinstance(want, list) or not v.may_be_list:
        return direct
    source, element = sql.elements(v)
    inside = f"EXISTS (SELECT 1 FROM {source} WHERE {_scalar_eq(sql, element, want)})"
    return f"({direct} OR COALESCE({v.is_('array')} AND {inside}, FALSE))"


def _ordered(sql: _Sql, v: _Value, op: str, want: Any) -> str:
    kind = _kind_of(want)
    if kind in ("number", "string"):
        return v.compare(sql, kind, _SQL_OPS[op], want)
    return "FALSE"  # bools, None, lists and maps are never ordered


def _op(sql: _Sql, key: str, v: _Value, op: str, arg: Any) -> str:
    present = v.present()
    if op == "$eq":
        return _eq(sql, v, arg)
    if op == "$ne":
        return f"(NOT {_eq(sql, v, arg)})"
    if op in _ORDER:
        return _ordered(sql, v, op, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise BadRequest(f"{op} on {key!r} takes a list, got {json.dumps(arg)}")
        anyof = "(" + " OR ".join([_eq(sql, v, a) for a in arg] or ["FALSE"]) + ")"
        return anyof if op == "$in" else f"(NOT {anyof})"
    if op == "$exists":
        return present if arg else f"(NOT {present})"
    raise BadRequest(
        f"unknown filter operator {op!r} on {key!r}; use one of {', '.join(_OPERATORS)}"
    )


def _value(sql: _Sql, key: str) -> _Value:
    path = _field_path(key)
    if path[0] in ("config", "summary"):
        return sql.json_at(f"{path[0]}_json", path[1:])
    if path[0] == "tags":
        return sql.tags()
    return _column(sql, _COLUMNS[path[0]])


def compile_where(sql: _Sql, spec: Any) -> str:
    """The SQL condition of a filter document."""
    if not isinstance(spec, dict):
        raise BadRequest(f"a filter must be a JSON object, got {json.dumps(spec)}")
    parts = [_item(sql, key, value) for key, value in spec.items()]
    return "(" + " AND ".join(parts or ["TRUE"]) + ")"


def _item(sql: _Sql, key: str, value: Any) -> str:
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise BadRequest(f"{key} takes a non-empty list of filters")
        joiner = " AND " if key == "$and" else " OR "
        return "(" + joiner.join(compile_where(sql, v) for v in value) + ")"
    if key.startswith("$"):
        raise BadRequest(f"unknown filter operator {key!r} at the top level; use $and or $or")
    v = _value(sql, key)
    if isinstance(value, dict) and any(k.startswith("$") for k in value):
        tests = [_op(sql, key, v, op, arg) for op, arg in value.items()]
    else:
        tests = [_op(sql, key, v, "$eq", value)]
    return "(" + " AND ".join(tests) + ")"


def _order_by(sql: _Sql, order: str | None) -> str:
    if not order:
        return "created_at, id"
    descending = order.startswith("-")
    name = order.lstrip("-+")
    direction = "DESC" if descending else "ASC"
    if name in ("created_at", "heartbeat_at", "finished_at", "last_step"):
        expr = name
    else:
        try:
            path = _field_path(name)
        except BadRequest:
            path = []
        if not path or path[0] == "tags":
            raise BadRequest(
                f"order={order!r} cannot be sorted on; use one of "
                f"{', '.join(sorted(SORTABLE))}, config.<key> or summary.<key>, with a "
                "leading '-' for descending"
            ) from None
        expr = _value(sql, name).expr
    return f"({expr}) IS NULL, {expr} {direction}, created_at, id"


@dataclass(frozen=True, slots=True)
class RunPage:
    rows: list[Row[Any]]
    total: int


MAX_SEARCH = 256


def _search(sql: _Sql, search: str) -> str:
    """Runs whose name or id holds ``search`` (``%`` and ``_`` literal), case ignored as the
    database's LOWER() does: ASCII letters on SQLite, every letter on PostgreSQL."""
    if len(search) > MAX_SEARCH:
        raise BadRequest(f"search is {len(search)} characters; pass at most {MAX_SEARCH}")
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"LOWER({sql.bind(f'%{escaped}%')})"
    return f"(LOWER(name) LIKE {like} ESCAPE '\\' OR LOWER(run_id) LIKE {like} ESCAPE '\\')"


def project_runs(
    conn: Connection,
    project_id: int,
    filters: str | None,
    order: str | None,
    limit: int | None,
    offset: int,
    search: str | None = None,
) -> RunPage:
    """One page of a project's runs (every run with ``limit=None``), and how many match;
    ``search`` keeps the runs whose name or id contains it (ASCII case ignored)."""
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit={limit} is out of range; ask for 1 to {MAX_LIMIT} runs")
    if not 0 <= offset <= MAX_OFFSET:
        raise BadRequest(f"offset={offset} is out of range; pass 0 to {MAX_OFFSET}")
    sql = _Sql(conn.dialect.name == "postgresql")
    where = "TRUE"
    if filters:
        check_depth(filters.encode(), "filters")
        try:
            spec = json.loads(filters)
        except ValueError as exc:
            raise BadRequest(f"filters is not valid JSON ({exc}); pass a JSON object") from exc
        where = compile_where(sql, spec)
    if search:
        where = f"{where} AND {_search(sql, search)}"
    condition = f"project_id = {sql.bind(project_id)} AND {where}"
    # PostgreSQL counts in the same scan (the sort that follows is over the matches only);
    # SQLite would then sort every match, where a separate count is cheaper
    counted = ", COUNT(*) OVER () AS total_matched" if sql.pg else ""
    page = (
        f"SELECT {_SELECTED}{counted} FROM runs WHERE {condition} ORDER BY {_order_by(sql, order)}"
    )
    if limit is not None:
        page += f" LIMIT {sql.bind(limit)} OFFSET {sql.bind(offset)}"
    elif offset:
        page += (
            f" LIMIT -1 OFFSET {sql.bind(offset)}" if not sql.pg else f" OFFSET {sql.bind(offset)}"
        )
    rows = list(conn.execute(text(page), sql.params))
    if limit is None and not offset:
        total = len(rows)
    elif rows and sql.pg:
        total = int(rows[0].total_matched)
    elif not rows and not offset:
        total = 0
    else:
        count = f"SELECT COUNT(*) FROM runs WHERE {condition}"
        total = int(conn.execute(text(count), sql.params).scalar_one())
    return RunPage(rows, total)
