"""Blocking: which pairs are scored. Each rule of the spec is a condition on two records (``l.``/``r.``).

A rule of equalities of one column on both sides (``l.name_key = r.name_key AND l.dob = r.dob``) becomes a
blocking key per record (:func:`block_keys`), and one join on the keys finds the pairs of all such rules;
other rules of equalities (``l.x = r.y``) are indexed per side (:func:`lookup_keys`), so that an incremental
run finds a new record's stored candidates through the ``block_index`` table. Splink runs the rules
(:func:`blocking_rules`) in the ``score`` stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from linkage.errors import ConfigError
from linkage.fragments import fragment_problems
from linkage.spec import ModelSpec

__all__ = [
    "KeyMaker",
    "block_keys",
    "blocking_rules",
    "check_blocking",
    "duckdb_hash",
    "key_columns",
    "lookup_keys",
    "rule_sides",
    "side_probes",
]


def key_columns(rule: str) -> list[str] | None:
    """The columns of a rule that is only equalities of one column on both sides, else None.

    >>> key_columns("l.name_key = r.name_key AND l.dob = r.dob")
    ['name_key', 'dob']
    >>> key_columns("l.bare_name_key = r.name_key") is None
    True
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(rule, read="duckdb")
    columns = []
    for term in tree.flatten() if isinstance(tree, exp.And) else [tree]:
        if not (isinstance(term, exp.EQ) and isinstance(term.left, exp.Column) and isinstance(term.right, exp.Column)):
            return None
        left, right = term.left, term.right
        if {left.table, right.table} != {"l", "r"} or left.name != right.name:
            return None
        columns.append(left.name)
    return columns


def block_keys(rules: list[str]) -> str:
    """SQL for a record's blocking keys: one per rule of equalities that the record has all columns of.

    A rule such as ``l.name_key = r.name_key AND l.dob = r.dob`` pairs two records exactly when they share
    its key, the hash of the rule's index and its columns. Splink then finds every rule's pairs with one
    join on the keys (an exploding blocking rule, each pair once), instead of one join per rule that must
    also test every earlier rule to leave out the pairs it found (at 1M records about 2 s per rule).
    A hash collision only adds a pair to score: the comparisons, not the key, decide a match.
    """
    keys = []
    for index, rule in enumerate(rules):
        columns = key_columns(rule)
        if columns:
            present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
            keys.append(f"CASE WHEN {present} THEN hash({index}, {', '.join(columns)}) END")
    if not keys:
        return "[]::UBIGINT[]"
    return f"list_filter([{', '.join(keys)}], lambda k: k IS NOT NULL)"


def rule_sides(rule: str) -> tuple[list[str], list[str]] | None:
    """The columns a rule of equalities compares on its left and right sides, else None.

    ``IS NOT NULL`` terms are left out: an equality already fails on a null.

    >>> rule_sides("l.bare_name_key_hash = r.name_key_hash AND l.bare_name_key_hash IS NOT NULL")
    (['bare_name_key_hash'], ['name_key_hash'])
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(rule, read="duckdb")
    left: list[str] = []
    right: list[str] = []
    for term in tree.flatten() if isinstance(tree, exp.And) else [tree]:
        if isinstance(term, exp.Not) and isinstance(term.this, exp.Is):
            continue
        if not (isinstance(term, exp.EQ) and isinstance(term.left, exp.Column) and isinstance(term.right, exp.Column)):
            return None
        a, b = (term.left, term.right) if term.left.table == "l" else (term.right, term.left)
        if (a.table, b.table) != ("l", "r"):
            return None
        left.append(a.name)
        right.append(b.name)
    return left, right


def lookup_keys(rules: list[str]) -> tuple[str, str]:
    """SQL for a record's index keys and probe keys: a new record pairs with a stored one under some rule
    exactly when one of its probe keys is one of the stored record's index keys (or a hash collides).

    A rule of equalities of the same column on both sides has one key, the blocking key of
    :func:`block_keys`. A rule ``l.x = r.y`` pairs a stored record on either side: it is indexed by
    ``(rule, 'r', y)`` and ``(rule, 'l', x)``, and a new record probes ``(rule, 'r', x)`` and ``(rule, 'l', y)``.

    Raises:
        ConfigError: a rule is not made of equalities, so no index can find its pairs.
    """
    index = [key for n, x, y in _side_rules(rules) for key in (_side_key(n, "r", y), _side_key(n, "l", x))]
    left, right = side_probes(rules)
    return f"list_concat(block_keys, {_listed(index)})", f"list_concat(block_keys, {left}, {right})"


def side_probes(rules: list[str]) -> tuple[str, str]:
    """SQL for a new record's probe keys of the rules ``l.x = r.y``, by the side it takes in the pair found.

    A stored record found by the first list pairs with the new record as ``l`` (``l.x = r.y`` holds with
    the new record's ``x``); one found by the second, as ``r``. (A blocking key of :func:`block_keys` pairs
    two records either way round.)

    Raises:
        ConfigError: a rule is not made of equalities, so no index can find its pairs.
    """
    found = _side_rules(rules)
    return _listed([_side_key(n, "r", x) for n, x, _ in found]), _listed([_side_key(n, "l", y) for n, _, y in found])


def _side_rules(rules: list[str]) -> list[tuple[int, list[str], list[str]]]:
    """The rules ``l.x = r.y`` (not keyed): their number and the columns of each side.

    Raises:
        ConfigError: a rule is not made of equalities, so no index can find its pairs.
    """
    found = []
    for number, rule in enumerate(rules):
        if key_columns(rule):
            continue  # in block_keys
        sides = rule_sides(rule)
        if sides is None:
            raise ConfigError(
                f"blocking rule {rule!r} is not equalities of columns: incremental linking cannot index it"
            )
        found.append((number, *sides))
    return found


def _listed(keys: list[str]) -> str:
    return f"list_filter([{', '.join(keys)}], lambda k: k IS NOT NULL)" if keys else "[]::UBIGINT[]"


def _side_key(rule: int, side: str, columns: list[str]) -> str:
    present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    return f"CASE WHEN {present} THEN hash({rule}, '{side}', {', '.join(columns)}) END"


def blocking_rules(spec: ModelSpec, *, full: bool = False) -> list[Any]:
    """Splink's blocking rules for prediction: the spec's rules that are not keyed, then one keyed rule.

    The keyed rule joins on the model input's ``block_keys``; in a ``full`` run of a spec that caps its
    candidates (``max_candidates``), on ``pair_keys`` instead (:func:`linkage.prepare.cap_candidates`: one key
    per kept pair).
    """
    rules = spec.blocking
    keys = "pair_keys" if full and spec.max_candidates is not None else "block_keys"
    plain: list[Any] = [rule for rule in rules if key_columns(rule) is None]
    if len(plain) < len(rules):
        # Last, so that Splink leaves out of it the pairs of the plain rules (it does not the other way round).
        plain.append({"blocking_rule": f"l.{keys} = r.{keys}", "arrays_to_explode": [keys]})
    return plain


def check_blocking(available: Sequence[str], spec: ModelSpec) -> None:
    """Check the blocking rules of ``spec`` against the model input's columns (``available``).

    :func:`linkage.spec.load_spec` checks every fragment of a spec file; this holds a spec made or changed
    in code (``model_copy``) to the same check (:func:`linkage.fragments.fragment_problems`) before its keys are built.

    Raises:
        ConfigError: a blocking rule is not one condition of allowed parts over the model input's columns.
    """
    problems = [
        p
        for i, rule in enumerate(spec.blocking)
        for p in fragment_problems(rule, f"blocking[{i}]", available, sides=True)
    ]
    if problems:
        raise ConfigError("a blocking rule is invalid", problems=problems)


# DuckDB's hash (src/common/types/hash.cpp, hash.hpp; as of DuckDB 1.1 to 2.0): the keys of the block index
# are DuckDB hashes, and the warm scorer makes an applicant's keys without a statement (a statement of 40
# hash calls costs 8 ms, most of an officer's query). tests/test_blocking.py checks this against DuckDB itself.
_MASK: Final = (1 << 64) - 1
_MIX: Final = 0xD6E8FEB86659FD93
_NULL_HASH: Final = 0xBF58476D1CE4E5B9
_EPOCH: Final = dt.date(1970, 1, 1)
HASHED_TYPES: Final = frozenset({"VARCHAR", "DATE", "INTEGER", "BIGINT", "UBIGINT"})
"""The DuckDB types :func:`duckdb_hash` hashes as DuckDB does."""


def _murmur(x: int) -> int:
    x ^= x >> 32
    x = (x * _MIX) & _MASK
    x ^= x >> 32
    x = (x * _MIX) & _MASK
    return x ^ (x >> 32)


def _hash_text(text: str) -> int:
    data = text.encode("utf-8")
    h = 0xE17A1465 ^ ((len(data) * 0xC6A4A7935BD1E995) & _MASK)
    for at in range(0, len(data), 8):  # 8-byte blocks, little-endian, the last one padded with zeros
        h = ((h ^ int.from_bytes(data[at : at + 8], "little")) * _MIX) & _MASK
    return _murmur(h)


def _hash_one(value: Any, kind: str) -> int:
    if value is None:
        return _NULL_HASH
    if kind == "VARCHAR":
        return _hash_text(value)
    if kind == "DATE":
        return _murmur((value - _EPOCH).days & 0xFFFFFFFF)  # days since 1970 as a 32-bit integer
    if kind == "INTEGER":
        return _murmur(value & 0xFFFFFFFF)
    if kind in ("BIGINT", "UBIGINT"):
        return _murmur(value & _MASK)
    raise ValueError(f"no DuckDB hash of type {kind!r} here")


def duckdb_hash(*typed: tuple[Any, str]) -> int:
    """DuckDB's ``hash(a, b, ...)`` of values with their DuckDB types (:data:`HASHED_TYPES`).

    >>> duckdb_hash(("a", "VARCHAR")), duckdb_hash((1, "INTEGER"), ("a", "VARCHAR"))
    (12561829011207016135, 16748857609561410660)
    """
    found = 0
    for i, (value, kind) in enumerate(typed):
        h = _hash_one(value, kind)
        found = h if i == 0 else (((found ^ (found >> 32)) * _MIX) & _MASK) ^ h  # DuckDB's CombineHash
    return found


@dataclass(frozen=True)
class KeyMaker:
    """A record's blocking keys made in Python, as :func:`block_keys` and :func:`side_probes` make them in SQL:
    its block keys, and the probe keys that find a stored record it pairs with as ``l``, and as ``r``."""

    keyed: tuple[tuple[int, tuple[str, ...]], ...]
    sides: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...]
    types: Mapping[str, str]

    @classmethod
    def of(cls, rules: list[str], types: Mapping[str, str]) -> KeyMaker:
        """The key maker of ``rules`` over a model input whose columns have DuckDB ``types``.

        Raises:
            ValueError: a rule reads a column of a type :func:`duckdb_hash` does not hash.
            ConfigError: a rule is not made of equalities (:func:`lookup_keys`).
        """
        keyed = tuple((n, tuple(columns)) for n, rule in enumerate(rules) if (columns := key_columns(rule)))
        sides = tuple((n, tuple(x), tuple(y)) for n, x, y in _side_rules(rules))
        used = {c for _, columns in keyed for c in columns} | {c for _, x, y in sides for c in (*x, *y)}
        odd = sorted(c for c in used if types.get(c) not in HASHED_TYPES)
        if odd:
            raise ValueError(f"blocking columns of a type not hashed here: {', '.join(odd)}")
        return cls(keyed, sides, dict(types))

    def keys(self, row: Mapping[str, Any]) -> tuple[list[int], list[int], list[int]]:
        """``row``'s block keys and its probe keys as ``l`` and as ``r`` (a key needs all its columns)."""
        key = self._key(row)

        block = self._block(key)
        as_left = [key(((n, "INTEGER"), ("r", "VARCHAR")), x) for n, x, _ in self.sides]
        as_right = [key(((n, "INTEGER"), ("l", "VARCHAR")), y) for n, _, y in self.sides]
        return block, _present(as_left), _present(as_right)

    def index_keys(self, row: Mapping[str, Any]) -> list[int]:
        """``row``'s keys in the block index, as :func:`lookup_keys` makes them: its block keys, and for each rule
        ``l.x = r.y`` its ``y`` (found as ``r``) and its ``x`` (found as ``l``)."""
        key = self._key(row)
        sides = [key(((n, "INTEGER"), (side, "VARCHAR")), columns)
                 for n, x, y in self.sides for side, columns in (("r", y), ("l", x))]  # fmt: skip
        return self._block(key) + _present(sides)

    def _key(self, row: Mapping[str, Any]) -> Callable[[tuple[tuple[Any, str], ...], tuple[str, ...]], int | None]:
        def key(prefix: tuple[tuple[Any, str], ...], columns: tuple[str, ...]) -> int | None:
            values = [row[c] for c in columns]
            if any(v is None for v in values):
                return None
            return duckdb_hash(*prefix, *((v, self.types[c]) for v, c in zip(values, columns, strict=True)))

        return key

    def _block(self, key: Callable[[tuple[tuple[Any, str], ...], tuple[str, ...]], int | None]) -> list[int]:
        return _present([key(((n, "INTEGER"),), columns) for n, columns in self.keyed])


def _present(keys: list[int | None]) -> list[int]:
    return [k for k in keys if k is not None]
