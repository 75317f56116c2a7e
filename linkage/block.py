"""Blocking: which pairs are scored. Each rule of the spec is a condition on two records (``l.``/``r.``).

A rule of equalities of one column on both sides (``l.name_key = r.name_key AND l.dob = r.dob``) becomes a
blocking key per record (:func:`block_keys`), and one join on the keys finds the pairs of all such rules;
other rules of equalities (``l.x = r.y``) are indexed per side (:func:`lookup_keys`), so that an incremental
run finds a new record's stored candidates through the ``block_index`` table. Splink runs the rules
(:func:`blocking_rules`) in the ``score`` stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from linkage.errors import ConfigError
from linkage.fragments import fragment_problems
from linkage.spec import ModelSpec

__all__ = ["block_keys", "blocking_rules", "check_blocking", "key_columns", "lookup_keys", "rule_sides"]


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
    index, probe = [], []
    for number, rule in enumerate(rules):
        if key_columns(rule):
            continue  # in block_keys
        sides = rule_sides(rule)
        if sides is None:
            raise ConfigError(
                f"blocking rule {rule!r} is not equalities of columns: incremental linking cannot index it"
            )
        x, y = sides

        index += [_side_key(number, "r", y), _side_key(number, "l", x)]
        probe += [_side_key(number, "r", x), _side_key(number, "l", y)]

    def listed(keys: list[str]) -> str:
        extra = f"list_filter([{', '.join(keys)}], lambda k: k IS NOT NULL)" if keys else "[]::UBIGINT[]"
        return f"list_concat(block_keys, {extra})"

    return listed(index), listed(probe)


def _side_key(rule: int, side: str, columns: list[str]) -> str:
    present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    return f"CASE WHEN {present} THEN hash({rule}, '{side}', {', '.join(columns)}) END"


def blocking_rules(rules: list[str]) -> list[Any]:
    """Splink's blocking rules for prediction: the spec's rules that are not keyed, then one keyed rule."""
    plain: list[Any] = [rule for rule in rules if key_columns(rule) is None]
    if len(plain) < len(rules):
        # Last, so that Splink leaves out of it the pairs of the plain rules (it does not the other way round).
        plain.append({"blocking_rule": "l.block_keys = r.block_keys", "arrays_to_explode": ["block_keys"]})
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
