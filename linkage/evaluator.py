"""A spec's SQL fragments evaluated in Python on one pair of model-input rows, as DuckDB evaluates them.

The officer service scores one applicant against a few stored candidates; DuckDB's fixed cost per
statement is more than the whole budget of such a query. This module compiles a checked fragment
(:mod:`linkage.fragments`: a comparison level, a blocking rule, the veto) ONCE into nested Python
closures, and each call then costs microseconds. A spec is data: nothing of it becomes Python source
(no ``eval``/``exec``/``compile``); the tree that sqlglot parses is walked and each node becomes a closure.

Semantics are DuckDB 2.0's, checked against DuckDB itself (``tests/test_evaluator.py``): three-valued
logic (a condition holds only when it is TRUE), NULL propagation through functions and operators except
where DuckDB does not propagate (``coalesce``, ``least``/``greatest`` ignore NULLs, ``list_bool_and`` is
an aggregate over the list), 1-based and negative indexing and slices of strings and lists (out of range:
NULL for a list, '' for a string), strings compared by code point (= UTF-8 bytes, as DuckDB compares
VARCHAR), and the similarity functions written as DuckDB computes them, bit for bit.

What the evaluator does not reproduce it refuses with :class:`Unsupported`: a node or a function it does
not implement (``LIKE``, ``regexp_*``, ``hash``, ``TRY_CAST``, ``a[:m]``, which sqlglot reads as the
placeholder ``a[$m]``...) when the fragment is compiled, and a value whose type DuckDB would cast implicitly
(a string compared with a number, text cast to a number) when the condition is called. It never guesses an
answer. Where DuckDB fails the query, so does the call: ``ZeroDivisionError`` for a division by zero,
``OverflowError`` for a cast out of an integer type's range. (Integer arithmetic is Python's, without
DuckDB's overflow errors: far beyond the counts and years that fragments compute with.)

Two things sqlglot does that this module undoes or refuses: it stores a constant integer index 0-based
(``k[1]`` is ``Bracket(k, 0)``, ``x[-1]`` is ``Bracket(x, -2)``; a computed index such as ``aw[i]`` is left
as written), and it reads ``x[:name]`` as a placeholder rather than a slice.

>>> holds = pair_condition("l.name_key = r.name_key AND jaro_winkler_similarity(l.name, r.name) >= 0.9")
>>> holds({"name_key": "SITI", "name": "SITI AMINAH"}, {"name_key": "SITI", "name": "SITI AMINA"})
True
>>> row_condition("gamma_name = 0 OR gamma_dob IN (2, 6)")({"gamma_name": 3, "gamma_dob": None})
False
"""

from __future__ import annotations

import datetime
import functools
import math
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, cast

import jellyfish

__all__ = [
    "Unsupported",
    "damerau_levenshtein",
    "jaro_similarity",
    "jaro_winkler_similarity",
    "levenshtein",
    "pair_condition",
    "row_condition",
]


class Unsupported(Exception):
    """A fragment uses a node or function the evaluator does not implement (or, at call time, a value
    type whose implicit cast in DuckDB it does not reproduce)."""


# A compiled node: a function of the frame (a list: the rows, then the bound variables' slots).
Node = Callable[[list[Any]], Any]


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def pair_condition(sql: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
    """Compile a checked fragment over ``l.<col>`` / ``r.<col>`` into a function (l_row, r_row) -> it holds.

    SQL three-valued logic: NULL counts as not holding, as in ``CASE WHEN``.

    Args:
        sql: the fragment (a blocking rule or a comparison level).

    Returns:
        A function of the two model-input rows (as ``pyarrow``'s ``to_pylist()`` gives them).

    Raises:
        Unsupported: a node or function the evaluator does not implement.
    """
    body, size = _compile(sql, sides=True)
    pad = [None] * (size - 2)

    def holds(l_row: Mapping[str, Any], r_row: Mapping[str, Any]) -> bool:
        return body([l_row, r_row, *pad]) is True

    return holds


def row_condition(sql: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a checked fragment over bare columns (the veto: ``gamma_name = 0 OR ...``) into a function.

    Raises:
        Unsupported: a node or function the evaluator does not implement.
    """
    value = _row_value(sql)

    def holds(row: Mapping[str, Any]) -> bool:
        return value(row) is True

    return holds


def _row_value(sql: str) -> Callable[[Mapping[str, Any]], Any]:
    """The value of an expression over bare columns (None for NULL): the tests compare it with DuckDB's."""
    body, size = _compile(sql, sides=False)
    pad = [None] * (size - 1)

    def value(row: Mapping[str, Any]) -> Any:
        return body([row, *pad])

    return value


def _compile(sql: str, *, sides: bool) -> tuple[Node, int]:
    """A fragment compiled: its closure and the size of the frame it reads."""
    compiler = _Compiler(rows=2 if sides else 1)
    body = compiler.compile(_parse(sql), {})
    return body, compiler.size


def _parse(sql: str) -> Any:
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except (SqlglotError, ValueError) as exc:
        raise Unsupported(f"not a fragment sqlglot reads: {sql!r}") from exc


# ---------------------------------------------------------------------------------------------------------
# Similarity functions, as DuckDB computes them (on code points)


def _plain(a: str, b: str) -> bool:
    """Both strings are ASCII without CR: jellyfish (which counts graphemes, where DuckDB counts code points,
    and reads CR LF as one) then gives DuckDB's answer, at a twentieth of the Python code's cost."""
    return a.isascii() and b.isascii() and "\r" not in a and "\r" not in b


def levenshtein(a: str, b: str) -> int:
    """The edit distance (insertions, deletions, substitutions) between ``a`` and ``b``, as DuckDB's."""
    if _plain(a, b):
        return int(jellyfish.levenshtein_distance(a, b))
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def damerau_levenshtein(a: str, b: str) -> int:
    """The edit distance with transpositions of adjacent letters (unrestricted: Lowrance-Wagner), as DuckDB's."""
    if _plain(a, b):
        return int(jellyfish.damerau_levenshtein_distance(a, b))
    if not a or not b:
        return len(a) + len(b)
    big = len(a) + len(b)
    last_row: dict[str, int] = {}
    # rows of the table, shifted by one so that row/column 0 is the "infinite" border
    table: list[list[int]] = [[big] * (len(b) + 2), [big, *range(len(b) + 1)]]
    table += [[big, i, *([0] * len(b))] for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        last_col = 0
        for j in range(1, len(b) + 1):
            k = last_row.get(b[j - 1], 0)
            same = a[i - 1] == b[j - 1]
            cost = 0 if same else 1
            table[i + 1][j + 1] = min(
                table[i][j] + cost,
                table[i + 1][j] + 1,
                table[i][j + 1] + 1,
                table[k][last_col] + (i - k - 1) + 1 + (j - last_col - 1),
            )
            if same:
                last_col = j
        last_row[a[i - 1]] = i
    return table[len(a) + 1][len(b) + 1]


def jaro_similarity(p: str, t: str) -> float:
    """Jaro similarity as DuckDB computes it (its bundled rapidfuzz algorithm: 0.0 when either is empty)."""
    p_len, t_len = len(p), len(t)
    if not p_len or not t_len:
        return 0.0
    if p_len == 1 and t_len == 1:  # rapidfuzz's own case: its window (1 // 2 - 1) would be empty
        return float(p == t)
    if _plain(p, t):
        return float(jellyfish.jaro_similarity(p, t))
    bound = max(p_len, t_len) // 2 - 1
    p_flags = [False] * p_len
    t_flags = [False] * t_len
    common = 0
    for j, c in enumerate(t):  # each letter of t takes the first free equal letter of p in the window
        hi = min(p_len, j + bound + 1)
        i = p.find(c, max(0, j - bound), hi)
        while i >= 0 and p_flags[i]:
            i = p.find(c, i + 1, hi)
        if i >= 0:
            p_flags[i] = t_flags[j] = True
            common += 1
    if not common:
        return 0.0
    p_common = [c for c, f in zip(p, p_flags, strict=True) if f]
    t_common = [c for c, f in zip(t, t_flags, strict=True) if f]
    transpositions = sum(x != y for x, y in zip(p_common, t_common, strict=True)) // 2
    # the same operations in the same order as rapidfuzz's jaro_calculate_similarity: equal bits
    sim = common / p_len
    sim += common / t_len
    sim += (common - transpositions) / common
    return sim / 3.0


def jaro_winkler_similarity(p: str, t: str) -> float:
    """Jaro-Winkler similarity as DuckDB computes it (prefix weight 0.1 on up to 4 letters, above 0.7)."""
    prefix = 0
    for x, y in zip(p[:4], t[:4], strict=False):
        if x != y:
            break
        prefix += 1
    sim = jaro_similarity(p, t)
    if sim > 0.7:
        # DuckDB's build fuses sim + (prefix * 0.1) * (1.0 - sim) into one fused multiply-add (one rounding,
        # not two): the last bit differs without it, e.g. 0.805 against 0.8049999999999999 for ABAA/AAAAA
        sim = min(_fma(prefix * 0.1, 1.0 - sim, sim), 1.0)
    return sim


def _fma(a: float, b: float, c: float) -> float:
    """a * b + c rounded once (math.fma is Python 3.13's): exact in integers, then one correct rounding."""
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    nc, dc = c.as_integer_ratio()
    return (na * nb * dc + nc * da * db) / (da * db * dc)  # int / int is correctly rounded in CPython


# ---------------------------------------------------------------------------------------------------------
# Values: comparisons and the helpers of the functions below


def _refuse(what: str) -> Unsupported:
    return Unsupported(what)


def _pair(x: Any, y: Any) -> tuple[Any, Any]:
    """Two non-NULL values made comparable as DuckDB compares them, or Unsupported where it would cast."""
    tx, ty = type(x), type(y)
    if tx is ty:
        if tx is float and (x != x or y != y):
            raise _refuse("NaN compared (DuckDB orders NaN above every number)")
        if tx is list and (None in x or None in y):
            return _nulls_last(x), _nulls_last(y)
        return x, y
    if tx in (int, float) and ty in (int, float):
        return float(x), float(y)  # DuckDB casts the integer to DOUBLE
    raise _refuse(f"{tx.__name__} compared with {ty.__name__} (DuckDB would cast one of them)")


def _nulls_last(xs: list[Any]) -> list[tuple[int, Any]]:
    """A list as DuckDB orders lists: a NULL element equals a NULL and is greater than any value."""
    return [(1, None) if x is None else (0, x) for x in xs]


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def compare(x: Any, y: Any) -> Any:
        if x is None or y is None:
            return None
        if type(x) is type(y) and type(x) in (str, int, date_type, bool):
            return op(x, y)
        x, y = _pair(x, y)
        return op(x, y)

    return compare


date_type: Final = datetime.date
_EQ: Final = _compare(operator.eq)

_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "EQ": operator.eq,
    "NEQ": operator.ne,
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
}
_FAST: Final = (str, int, datetime.date, bool)  # types compared as they are when both sides have one


def _comparison(op: Callable[[Any, Any], bool], a: Node, b: Node) -> Node:
    """A comparison node: NULL when a side is NULL (the hot path of every level, so written out)."""

    def compare(env: list[Any]) -> Any:
        x = a(env)
        if x is None:
            return None
        y = b(env)
        if y is None:
            return None
        if type(x) is type(y) and type(x) in _FAST:
            return op(x, y)
        x, y = _pair(x, y)
        return op(x, y)

    return compare


def _integer(node: Any) -> int | None:
    """The integer a literal (or a negated literal) stands for, else None."""
    from sqlglot import exp

    negative = isinstance(node, exp.Neg)
    inner = node.this if negative else node
    if not isinstance(inner, exp.Literal) or inner.is_string:
        return None
    value = _literal(inner)
    if not isinstance(value, int):
        return None
    return -value if negative else value


def _extract_at(value: Node, i: int) -> Node:
    """``x[i]`` for a constant i."""

    def extract(env: list[Any]) -> Any:
        x = value(env)
        if x is None:
            return None
        if type(x) is list:
            n = len(x)
            if 0 < i <= n:
                return x[i - 1]
            return x[n + i] if i < 0 and -i <= n else None
        return _extract(x, i)

    return extract


def _extract_by(value: Node, index: Node) -> Node:
    """``x[i]`` for a computed i (a lambda's index: ``aw[i]``)."""

    def extract(env: list[Any]) -> Any:
        x = value(env)
        if x is None:
            return None
        i = index(env)
        if i is None:
            return None
        if type(x) is list and type(i) is int:
            n = len(x)
            if 0 < i <= n:
                return x[i - 1]
            return x[n + i] if i < 0 and -i <= n else None
        return _extract(x, i)

    return extract


_COMPARISONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "EQ": _EQ,
    "NEQ": _compare(operator.ne),
    "GT": _compare(operator.gt),
    "GTE": _compare(operator.ge),
    "LT": _compare(operator.lt),
    "LTE": _compare(operator.le),
}


def _number(x: Any) -> int | float:
    if type(x) not in (int, float):
        raise _refuse(f"arithmetic on {type(x).__name__}")
    return cast(int | float, x)


def _int(x: Any) -> int:
    if type(x) is not int:
        raise _refuse(f"an integer wanted, not {type(x).__name__}")
    return x


def _text(x: Any) -> str:
    if type(x) is not str:
        raise _refuse(f"text wanted, not {type(x).__name__} (DuckDB would cast it)")
    return x


def _items(x: Any) -> list[Any]:
    if type(x) is not list:
        raise _refuse(f"a list wanted, not {type(x).__name__}")
    return x


def _date(x: Any) -> datetime.date:
    if type(x) is not datetime.date:
        raise _refuse(f"a DATE wanted, not {type(x).__name__}")
    return x


def _div(x: Any, y: Any) -> float:
    x, y = _number(x), _number(y)
    if y == 0:
        raise ZeroDivisionError("division by zero (DuckDB fails the query)")
    return float(x) / float(y)


def _intdiv(x: Any, y: Any) -> int:
    n, d = _int(x), _int(y)
    if d == 0:
        raise ZeroDivisionError("division by zero (DuckDB fails the query)")
    q = abs(n) // abs(d)  # DuckDB truncates towards zero, as C does
    return q if (n < 0) == (d < 0) else -q


def _mod(x: Any, y: Any) -> int:
    n, d = _int(x), _int(y)
    if d == 0:
        raise ZeroDivisionError("division by zero (DuckDB fails the query)")
    m = abs(n) % abs(d)  # the sign of the dividend, as C's %
    return m if n >= 0 else -m


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(x: Any, y: Any) -> Any:
        if type(x) is int and type(y) is int:
            return op(x, y)
        return op(_number(x), _number(y))

    return apply


def _concat(x: Any, y: Any) -> str:
    return _text(x) + _text(y)


def _extract(x: Any, i: Any) -> Any:
    """``x[i]``: DuckDB's array_extract on a string ('' out of range) or a list (NULL out of range)."""
    i = _int(i)
    if type(x) is str:
        n = len(x)
        if i > 0:
            return x[i - 1] if i <= n else ""
        if i < 0:
            return x[n + i] if -i <= n else ""
        return ""
    x = _items(x)
    n = len(x)
    if 0 < i <= n:
        return x[i - 1]
    if i < 0 and -i <= n:
        return x[n + i]
    return None


def _slice(x: Any, begin: Any, end: Any) -> Any:
    """``x[begin:end]``: 1-based, both ends included, negative from the end (DuckDB's array_slice)."""
    if type(x) is not str:
        x = _items(x)
    n = len(x)
    b = 1 if begin is _OPEN else _int(begin)
    e = n if end is _OPEN else _int(end)
    if b < 0:
        b = n + b + 1
    if e < 0:
        e = n + e + 1
    b = max(b, 1)
    e = min(e, n)
    return x[b - 1 : e] if e >= b else x[:0]


_OPEN: Final = object()  # a slice's missing end


def _substring(s: Any, start: Any, length: Any = _OPEN) -> str:
    """DuckDB's substring(s, start[, length]) on code points (start 0 or negative as DuckDB reads them)."""
    s, start = _text(s), _int(start)
    n = len(s)
    if start < 0:
        start = n + start + 1
    if length is _OPEN:
        first, last = start, n
    else:
        length = _int(length)
        first, last = (start, start + length - 1) if length >= 0 else (start + length, start - 1)
    first, last = max(first, 1), min(last, n)
    return s[first - 1 : last] if last >= first else ""


def _left(value: Any, count: Any) -> str:
    s, n = _text(value), _int(count)
    return s[:n] if n >= 0 else s[: max(len(s) + n, 0)]


def _right(value: Any, count: Any) -> str:
    s, n = _text(value), _int(count)
    if n >= 0:
        return s[len(s) - n :] if n < len(s) else s
    return s[-n:]


def _length(x: Any) -> int:
    if type(x) is str or type(x) is list:
        return len(x)
    raise _refuse(f"length of {type(x).__name__}")


def _case_map(value: Any, upper: bool) -> str:
    s = _text(value)
    if s.isascii():
        return s.upper() if upper else s.lower()
    out = []
    for c in s:
        mapped = c.upper() if upper else c.lower()
        if len(mapped) != 1:  # a special-casing rule (ß -> SS): DuckDB maps one letter to one letter
            mapped = _SIMPLE_CASE.get((c, upper), "")
            if not mapped:
                raise _refuse(f"case mapping of {c!r}")
        out.append(mapped)
    return "".join(out)


# DuckDB (utf8proc) maps these letters to one letter where Python's full case mapping gives two.
_SIMPLE_CASE: Final = {("ß", True): "ẞ", ("İ", False): "i"}


def _trim(s: Any) -> str:
    return _text(s).strip(" ")


def _replace(value: Any, old: Any, new: Any) -> str:
    s, part = _text(value), _text(old)
    return s.replace(part, _text(new)) if part else s


def _contains(s: Any, part: Any) -> bool:
    return _text(part) in _text(s)


def _starts_with(s: Any, part: Any) -> bool:
    return _text(s).startswith(_text(part))


def _ends_with(s: Any, part: Any) -> bool:
    return _text(s).endswith(_text(part))


def _abs(x: Any) -> Any:
    return abs(_number(x))


def _list_contains(xs: Node, x: Node) -> Node:
    """list_contains(xs, x): NULL elements never equal a value; a NULL x is NULL, but false in an empty list."""

    def contains(env: list[Any]) -> Any:
        items = xs(env)
        if items is None:
            return None
        value = x(env)
        if value is None:
            return None if _items(items) else False
        return value in _items(items)

    return contains


def _list_has_all(xs: Any, ys: Any) -> bool:
    xs = _items(xs)
    return all(y is None or y in xs for y in _items(ys))  # NULLs of the second list are ignored


def _list_has_any(xs: Any, ys: Any) -> bool:
    xs = _items(xs)
    return any(y is not None and y in xs for y in _items(ys))


def _list_intersect(xs: Any, ys: Any) -> list[Any]:
    if ys is None:  # NULL only when the first list is: a NULL second list intersects to nothing
        return []
    ys = _items(ys)
    seen: list[Any] = []
    for x in _items(xs):
        if x is not None and x in ys and x not in seen:
            seen.append(x)
    return seen


def _list_bool(kind: bool) -> Callable[[Any], Any]:
    """``list_bool_and`` (kind False: any false makes it false) / ``list_bool_or``: an aggregate over the
    list, NULLs ignored, NULL when nothing is left."""

    def aggregate(xs: Any) -> Any:
        return _folded(kind, _items(xs))

    return aggregate


def _folded(kind: bool, values: Iterable[Any]) -> Any:
    """The aggregate of :func:`_list_bool` over ``values``, read only as far as the first that decides it."""
    found = False
    for x in values:
        if x is None:
            continue
        if type(x) is not bool:
            raise _refuse(f"list_bool_* over {type(x).__name__}")
        if x is kind:
            return kind
        found = True
    return (not kind) if found else None


def _list_sort(xs: Any) -> list[Any]:
    xs = _items(xs)
    values = [x for x in xs if x is not None]
    if len({type(x) for x in values}) > 1 or any(type(x) in (float, list) for x in values):
        raise _refuse("list_sort of mixed values, doubles or lists")
    return sorted(values) + [None] * (len(xs) - len(values))  # DuckDB's default: ascending, NULLs last


def _list_reverse(xs: Any) -> list[Any]:
    return _items(xs)[::-1]


def _year(d: Any) -> int:
    return _date(d).year


def _month(d: Any) -> int:
    return _date(d).month


def _day(d: Any) -> int:
    return _date(d).day


_STRFTIME: Final[dict[str, Callable[[datetime.date], str]]] = {
    "Y": lambda d: f"{d.year:04d}",
    "m": lambda d: f"{d.month:02d}",
    "d": lambda d: f"{d.day:02d}",
    "y": lambda d: f"{d.year % 100:02d}",
    "j": lambda d: f"{d.timetuple().tm_yday:03d}",
}


def _strftime_format(fmt: str) -> Callable[[Any], str]:
    """A date formatter for a literal format of the specifiers %Y %m %d %y %j %% (others: Unsupported)."""
    parts: list[str | Callable[[datetime.date], str]] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            parts.append(c)
            i += 1
            continue
        spec = fmt[i + 1 : i + 2]
        if spec == "%":
            parts.append("%")
        elif spec in _STRFTIME:
            parts.append(_STRFTIME[spec])
        else:
            raise Unsupported(f"strftime specifier %{spec} in {fmt!r}")
        i += 2

    def format_date(d: Any) -> str:
        d = _date(d)
        return "".join(p if isinstance(p, str) else p(d) for p in parts)

    return format_date


def _to_text(x: Any) -> str:
    if type(x) is str:
        return x
    if type(x) is bool:
        return "true" if x else "false"
    if type(x) is int:
        return str(x)
    if type(x) is datetime.date:
        return x.isoformat()  # YYYY-MM-DD, the year written with 4 digits, as DuckDB writes a DATE
    raise _refuse(f"{type(x).__name__} cast to text (DuckDB's own formatting)")


def _to_integer(bits: int) -> Callable[[Any], int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def cast(x: Any) -> int:
        if type(x) is bool or type(x) is int:
            n = int(x)
        elif type(x) is float and math.isfinite(x):
            n = round(x)  # DuckDB rounds a DOUBLE half to even, as Python's round
        else:
            raise _refuse(f"{type(x).__name__} cast to an integer (DuckDB's own parsing)")
        if not low <= n <= high:
            raise OverflowError(f"{n} is out of the range of a {bits}-bit integer (DuckDB fails the query)")
        return n

    return cast


def _to_double(x: Any) -> float:
    if type(x) is int or type(x) is float:
        return float(x)
    raise _refuse(f"{type(x).__name__} cast to DOUBLE")


def _to_date(x: Any) -> datetime.date:
    return _date(x)


def _to_boolean(x: Any) -> bool:
    if type(x) is bool:
        return x
    if type(x) is int:
        return x != 0
    raise _refuse(f"{type(x).__name__} cast to BOOLEAN")


# sqlglot's type names (DuckDB's VARCHAR, TEXT and STRING are TEXT) -> the cast
_CASTS: Final[dict[str, Callable[[Any], Any]]] = {
    "TEXT": _to_text,
    "VARCHAR": _to_text,
    "TINYINT": _to_integer(8),
    "SMALLINT": _to_integer(16),
    "INT": _to_integer(32),
    "BIGINT": _to_integer(64),
    "DOUBLE": _to_double,
    "DATE": _to_date,
    "BOOLEAN": _to_boolean,
}


def _least_greatest(pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    def choose(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]  # DuckDB's least/greatest ignore NULLs
        if not present:
            return None
        first = present[0]
        for other in present[1:]:
            _pair(first, other)  # refuse a mix DuckDB would cast
        if len({type(v) for v in present}) > 1:  # integers and doubles: DuckDB picks among doubles
            present = [float(v) for v in present]
        return pick(present)

    return choose


# ---------------------------------------------------------------------------------------------------------
# The compiler: a sqlglot tree to nested closures


def _strict(fn: Callable[..., Any], args: Sequence[Node]) -> Node:
    """A function that is NULL when any argument is NULL (most of DuckDB's scalar functions)."""
    if len(args) == 1:
        (a,) = args

        def call1(env: list[Any]) -> Any:
            x = a(env)
            return None if x is None else fn(x)

        return call1
    if len(args) == 2:
        a, b = args

        def call2(env: list[Any]) -> Any:
            x = a(env)
            if x is None:
                return None
            y = b(env)
            return None if y is None else fn(x, y)

        return call2

    def call(env: list[Any]) -> Any:
        values = []
        for arg in args:
            v = arg(env)
            if v is None:
                return None
            values.append(v)
        return fn(*values)

    return call


def _first_strict(fn: Callable[[Any, Any], Any], a: Node, b: Node) -> Node:
    """A function that is NULL when its first argument is (the second may be NULL)."""

    def call(env: list[Any]) -> Any:
        x = a(env)
        return None if x is None else fn(x, b(env))

    return call


# Functions whose result is NULL exactly when an argument is NULL: name -> (implementation, arities).
_STRICT: Final[dict[str, tuple[Callable[..., Any], tuple[int, ...]]]] = {
    "length": (_length, (1,)),
    "len": (_length, (1,)),
    "array_length": (lambda xs: len(_items(xs)), (1,)),
    "lower": (lambda s: _case_map(s, False), (1,)),
    "upper": (lambda s: _case_map(s, True), (1,)),
    "trim": (_trim, (1,)),
    "left": (_left, (2,)),
    "right": (_right, (2,)),
    "substr": (_substring, (2, 3)),
    "substring": (_substring, (2, 3)),
    "replace": (_replace, (3,)),
    "contains": (_contains, (2,)),
    "starts_with": (_starts_with, (2,)),
    "ends_with": (_ends_with, (2,)),
    "prefix": (_starts_with, (2,)),
    "suffix": (_ends_with, (2,)),
    "abs": (_abs, (1,)),
    "year": (_year, (1,)),
    "month": (_month, (1,)),
    "day": (_day, (1,)),
    "levenshtein": (lambda a, b: levenshtein(_text(a), _text(b)), (2,)),
    "damerau_levenshtein": (lambda a, b: damerau_levenshtein(_text(a), _text(b)), (2,)),
    "jaro_similarity": (lambda a, b: jaro_similarity(_text(a), _text(b)), (2,)),
    "jaro_winkler_similarity": (lambda a, b: jaro_winkler_similarity(_text(a), _text(b)), (2,)),
    "list_has_all": (_list_has_all, (2,)),
    "list_has_any": (_list_has_any, (2,)),
    "list_bool_and": (_list_bool(False), (1,)),
    "list_bool_or": (_list_bool(True), (1,)),
    "list_reverse": (_list_reverse, (1,)),
    "list_extract": (_extract, (2,)),
    "list_element": (_extract, (2,)),
}

# sqlglot's classes for DuckDB's functions (each checked to carry only the arguments listed) -> the name.
_CLASSES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "Length": ("length", ("this",)),
    "ArraySize": ("array_length", ("this",)),
    "Lower": ("lower", ("this",)),
    "Upper": ("upper", ("this",)),
    "Left": ("left", ("this", "expression")),
    "Right": ("right", ("this", "expression")),
    "Substring": ("substr", ("this", "start", "length")),
    "Replace": ("replace", ("this", "expression", "replacement")),
    "Contains": ("contains", ("this", "expression")),
    "StartsWith": ("starts_with", ("this", "expression")),
    "EndsWith": ("ends_with", ("this", "expression")),
    "Abs": ("abs", ("this",)),
    "Year": ("year", ("this",)),
    "Month": ("month", ("this",)),
    "Day": ("day", ("this",)),
    "Levenshtein": ("levenshtein", ("this", "expression")),
    "JarowinklerSimilarity": ("jaro_winkler_similarity", ("this", "expression")),
    "ArrayOverlaps": ("list_has_any", ("this", "expression")),
}


class _Compiler:
    """Compiles one fragment (or one macro body) into closures over a frame of slots.

    The frame is a list: the rows (``l``, ``r``; or the one row; or nothing for a macro), then one slot for
    each bound variable (a macro's parameters, each lambda's parameters), allocated here at compile time.
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows  # 2: a pair (l, r); 1: a row of bare columns; 0: a macro body (parameters only)
        self.size = rows

    def slot(self) -> int:
        self.size += 1
        return self.size - 1

    def compile(self, node: Any, scope: Mapping[str, int]) -> Node:
        from sqlglot import exp

        kind = type(node).__name__
        if isinstance(node, exp.Paren):
            return self.compile(node.this, scope)
        if isinstance(node, exp.Column | exp.Identifier):
            return self.column(node, scope)
        if isinstance(node, exp.Literal):
            return _constant(_literal(node))
        if isinstance(node, exp.Boolean):
            return _constant(bool(node.this))
        if isinstance(node, exp.Null):
            return _constant(None)
        if isinstance(node, exp.And | exp.Or):
            return _logic(isinstance(node, exp.And), self.compile(node.this, scope),
                          self.compile(node.expression, scope))  # fmt: skip
        if isinstance(node, exp.Not):
            return _not(self.compile(node.this, scope))
        if kind in _COMPARISONS:
            _plain_operands(node)
            return _comparison(_OPERATORS[kind], self.compile(node.this, scope), self.compile(node.expression, scope))
        if isinstance(node, exp.NullSafeEQ | exp.NullSafeNEQ):
            return _distinct(isinstance(node, exp.NullSafeNEQ), self.compile(node.this, scope),
                             self.compile(node.expression, scope))  # fmt: skip
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise Unsupported(f"IS {node.expression.sql('duckdb')}")
            operand = self.compile(node.this, scope)
            return lambda env: operand(env) is None
        if isinstance(node, exp.In):
            return self.in_list(node, scope)
        if isinstance(node, exp.Between):
            return self.between(node, scope)
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.IntDiv | exp.Mod | exp.DPipe):
            return self.binary(node, scope)
        if isinstance(node, exp.Neg):
            operand = self.compile(node.this, scope)
            return _strict(lambda x: -_number(x), [operand])
        if isinstance(node, exp.Case):
            return self.case(node, scope)
        if isinstance(node, exp.If):
            return self.case_of([(node.this, node.args.get("true"))], node.args.get("false"), scope)
        if isinstance(node, exp.Bracket):
            return self.bracket(node, scope)
        if isinstance(node, exp.Coalesce):
            return _coalesce([self.compile(a, scope) for a in [node.this, *node.expressions]])
        if isinstance(node, exp.Nullif):
            return _nullif(self.compile(node.this, scope), self.compile(node.expression, scope))
        if isinstance(node, exp.Least | exp.Greatest):
            args = [self.compile(a, scope) for a in [node.this, *node.expressions]]
            choose = _least_greatest(min if isinstance(node, exp.Least) else max)
            return lambda env: choose([a(env) for a in args])
        if type(node) is exp.Cast:
            return self.cast(node, scope)
        if isinstance(node, exp.Trim):
            self.only(node, ("this",))
            return _strict(_trim, [self.compile(node.this, scope)])
        if isinstance(node, exp.TimeToStr):
            self.only(node, ("this", "format"))
            fmt = node.args.get("format")
            if not (isinstance(fmt, exp.Literal) and fmt.is_string):
                raise Unsupported("strftime with a format that is not a literal")
            return _strict(_strftime_format(fmt.this), [self.compile(node.this, scope)])
        if isinstance(node, exp.ArraySort):
            # the default order only (ascending, NULLs last): sqlglot writes it as nulls_first=False
            nulls_first = node.args.get("nulls_first")
            if node.args.get("asc") is not None or not (isinstance(nulls_first, exp.Boolean) and not nulls_first.this):
                raise Unsupported(f"{node.sql('duckdb')[:60]!r}: only list_sort's default order is implemented")
            return _strict(_list_sort, [self.compile(node.this, scope)])
        if isinstance(node, exp.Transform | exp.ArrayFilter):
            return self.lambda_call(node, scope)
        if isinstance(node, exp.ArrayContains) or (isinstance(node, exp.Anonymous) and str(node.this).lower() in (
                "list_contains", "list_has")):  # fmt: skip
            args = [node.this, node.expression] if isinstance(node, exp.ArrayContains) else node.expressions
            if len(args) != 2 or (isinstance(node, exp.ArrayContains) and set(node.args) - {"this", "expression"}):
                raise Unsupported(f"{node.sql('duckdb')[:60]!r}: list_contains(list, value) wanted")
            return _list_contains(self.compile(args[0], scope), self.compile(args[1], scope))
        if kind in _CLASSES:
            name, allowed = _CLASSES[kind]
            self.only(node, allowed)
            return self.call(name, [node.args[k] for k in allowed if node.args.get(k) is not None], scope)
        if isinstance(node, exp.Anonymous):
            name = str(node.this).lower()
            if name in ("list_transform", "list_filter"):
                raise Unsupported(f"{name} as sqlglot did not read it")
            if name in _macros_source():
                return self.macro(name, node.expressions, scope)
            if name in ("list_bool_and", "list_bool_or") and [type(e) for e in node.expressions] == [exp.Transform]:
                return self.lambda_call(node.expressions[0], scope, aggregate=name == "list_bool_or")
            return self.call(name, node.expressions, scope)
        raise Unsupported(f"{kind.lower()} ({node.sql('duckdb')[:60]!r}) is not implemented")

    def cast(self, node: Any, scope: Mapping[str, int]) -> Node:
        """``x::TYPE`` to text, an integer type, DOUBLE, DATE or BOOLEAN, from the types DuckDB's rule is plain
        for (text to a number or a date, whose parsing rules are DuckDB's own, is refused when called)."""
        self.only(node, ("this", "to"))
        target = node.args["to"]
        kind = target.this.name
        if target.expressions or kind not in _CASTS:
            raise Unsupported(f"a cast to {target.sql('duckdb')}")
        return _strict(_CASTS[kind], [self.compile(node.this, scope)])

    def only(self, node: Any, allowed: Sequence[str]) -> None:
        """Refuse a node carrying arguments the evaluator does not read (ltrim's position, say)."""
        extra = [k for k, v in node.args.items() if v is not None and v is not False and k not in allowed]
        if extra:
            raise Unsupported(f"{node.sql('duckdb')[:60]!r}: arguments {extra} are not implemented")

    def column(self, node: Any, scope: Mapping[str, int]) -> Node:
        from sqlglot import exp

        name = node.name.lower()  # DuckDB's names are case-insensitive, quoted or not; the model input's are lower
        parts = [node.args.get(k) for k in ("catalog", "db", "table")] if isinstance(node, exp.Column) else []
        parts = [p for p in parts if p]
        if not parts and name in scope:
            index = scope[name]
            return lambda env: env[index]
        if self.rows == 2:
            side = parts[0].name.lower() if len(parts) == 1 and parts[0] is not None else None
            if side not in ("l", "r"):
                raise Unsupported(f"column {node.sql('duckdb')!r}: write l.<column> or r.<column>")
            index = 0 if side == "l" else 1
        else:
            if parts or self.rows == 0:
                raise Unsupported(f"column {node.sql('duckdb')!r} is not a bare column of the row")
            index = 0
        return lambda env: env[index][name]

    def binary(self, node: Any, scope: Mapping[str, int]) -> Node:
        from sqlglot import exp

        _plain_operands(node)
        for side in (node.this, node.expression):
            if isinstance(side, exp.Literal) and not side.is_string and not isinstance(_literal(side), int):
                # a DECIMAL literal: DuckDB computes in exact decimals, Python in doubles
                raise Unsupported(f"arithmetic on the decimal {side.sql('duckdb')}")
        ops: dict[type, Callable[[Any, Any], Any]] = {
            exp.Add: _arith(operator.add), exp.Sub: _arith(operator.sub), exp.Mul: _arith(operator.mul),
            exp.Div: _div, exp.IntDiv: _intdiv, exp.Mod: _mod, exp.DPipe: _concat,
        }  # fmt: skip
        if isinstance(node, exp.Div) and (node.args.get("typed") or node.args.get("safe")):
            raise Unsupported("a typed or safe division")
        return _strict(ops[type(node)], [self.compile(node.this, scope), self.compile(node.expression, scope)])

    def in_list(self, node: Any, scope: Mapping[str, int]) -> Node:
        self.only(node, ("this", "expressions"))
        operand = self.compile(node.this, scope)
        options = [self.compile(e, scope) for e in node.expressions]

        def within(env: list[Any]) -> Any:
            x = operand(env)
            if x is None:
                return None
            unknown = False
            for option in options:
                found = _EQ(x, option(env))
                if found:
                    return True
                unknown = unknown or found is None
            return None if unknown else False

        return within

    def between(self, node: Any, scope: Mapping[str, int]) -> Node:
        self.only(node, ("this", "low", "high"))
        x, low, high = (self.compile(node.args[k], scope) for k in ("this", "low", "high"))
        ge, le = _COMPARISONS["GTE"], _COMPARISONS["LTE"]
        return _logic(True, lambda env: ge(x(env), low(env)), lambda env: le(x(env), high(env)))

    def case(self, node: Any, scope: Mapping[str, int]) -> Node:
        from sqlglot import exp

        whens = [(w.this, w.args.get("true")) for w in node.args.get("ifs") or []]
        operand = node.this
        if operand is not None:  # CASE x WHEN v THEN ...: x = v
            whens = [(exp.EQ(this=operand.copy(), expression=v), then) for v, then in whens]
        return self.case_of(whens, node.args.get("default"), scope)

    def case_of(self, whens: Sequence[tuple[Any, Any]], default: Any, scope: Mapping[str, int]) -> Node:
        branches = [(self.compile(c, scope), self.compile(v, scope)) for c, v in whens]
        otherwise = self.compile(default, scope) if default is not None else _constant(None)

        def case(env: list[Any]) -> Any:
            for condition, value in branches:
                if condition(env) is True:
                    return value(env)
            return otherwise(env)

        return case

    def bracket(self, node: Any, scope: Mapping[str, int]) -> Node:
        from sqlglot import exp

        self.only(node, ("this", "expressions", "safe"))
        if len(node.expressions) != 1:
            raise Unsupported(f"{node.sql('duckdb')!r}: one index or slice wanted")
        # sqlglot stores an integer index 0-based (it subtracted DuckDB's offset of 1 while parsing); adding
        # it back as its own generator does gives the index that DuckDB reads
        index = exp.apply_index_offset(node.this, [node.expressions[0].copy()], 1, dialect="duckdb")[0]
        value = self.compile(node.this, scope)
        if isinstance(index, exp.Slice):
            self.only(index, ("this", "expression"))
            begin = self.compile(index.this, scope) if index.this is not None else _constant(_OPEN)
            end = self.compile(index.expression, scope) if index.expression is not None else _constant(_OPEN)
            return _strict(_slice, [value, begin, end])
        if isinstance(index, exp.Literal | exp.Neg) and isinstance(constant := _integer(index), int):
            return _extract_at(value, constant)  # x[1], x[-1]: the commonest, made cheap
        return _extract_by(value, self.compile(index, scope))

    def call(self, name: str, args: Sequence[Any], scope: Mapping[str, int]) -> Node:
        if name == "list_intersect" and len(args) == 2:
            xs, ys = (self.compile(a, scope) for a in args)
            return _first_strict(_list_intersect, xs, ys)
        if name not in _STRICT:
            raise Unsupported(f"function {name!r} is not implemented")
        fn, arities = _STRICT[name]
        if len(args) not in arities:
            raise Unsupported(f"{name} with {len(args)} arguments")
        return _strict(fn, [self.compile(a, scope) for a in args])

    def lambda_call(self, node: Any, scope: Mapping[str, int], aggregate: bool | None = None) -> Node:
        """``list_transform(xs, lambda x[, i]: ...)`` and ``list_filter``: i is the 1-based index.

        With ``aggregate`` (False: ``list_bool_and`` of the transform, True: ``list_bool_or``), the loop stops
        at the first element that decides it: the same answer, as the lambda's body is pure."""
        from sqlglot import exp

        self.only(node, ("this", "expression"))
        fn = node.expression
        if not isinstance(fn, exp.Lambda) or not 1 <= len(fn.expressions) <= 2:
            raise Unsupported(f"{node.sql('duckdb')[:60]!r}: a lambda of one or two parameters wanted")
        items = self.compile(node.this, scope)
        slots = [self.slot() for _ in fn.expressions]
        bound = {p.name.lower(): s for p, s in zip(fn.expressions, slots, strict=True)}
        body = self.compile(fn.this, {**scope, **bound})
        keep = isinstance(node, exp.ArrayFilter)
        x_slot = slots[0]
        i_slot = slots[1] if len(slots) == 2 else None
        if aggregate is not None:
            return _fused(aggregate, items, body, x_slot, i_slot)

        def apply(env: list[Any]) -> Any:
            xs = items(env)
            if xs is None:
                return None
            out = []
            for i, x in enumerate(_items(xs), 1):
                env[x_slot] = x
                if i_slot is not None:
                    env[i_slot] = i
                y = body(env)
                if not keep:
                    out.append(y)
                elif y is True:
                    out.append(x)
            return out

        return apply

    def macro(self, name: str, args: Sequence[Any], scope: Mapping[str, int]) -> Node:
        from sqlglot import exp

        from linkage.macros import TWINS

        params_of, _ = _macros_source()[name]
        if len(args) != len(params_of):
            raise Unsupported(f"macro {name} takes {len(params_of)} arguments, given {len(args)}")
        # DuckDB substitutes the arguments' text into the body: a variable of ours that a lambda of the body
        # (or of a macro it calls) binds too would be captured there, where binding values keeps it ours
        ours = {n.name.lower() for a in args for n in a.find_all(exp.Column, exp.Identifier)
                if n.name.lower() in scope and not (isinstance(n, exp.Column) and n.table)}  # fmt: skip
        if ours & _binders(name):
            raise Unsupported(f"macro {name}: its lambdas rebind {sorted(ours & _binders(name))} of the call")
        twin = TWINS.get(name)
        if twin is not None:  # the macro written in Python (linkage.macros): the same values, far fewer calls
            values = [self.compile(a, scope) for a in args]

            def call(env: list[Any]) -> Any:
                return twin(*[a(env) for a in values])

            return call
        body, params, size = _macro(name)
        compiled = [self.compile(a, scope) for a in args]
        pad = [None] * (size - params)

        def expand(env: list[Any]) -> Any:
            # the arguments are pure, so binding their values is the same as DuckDB's substitution
            frame = [a(env) for a in compiled]
            frame += pad
            return body(frame)

        return expand


def _fused(kind: bool, items: Node, body: Node, x_slot: int, i_slot: int | None) -> Node:
    """``list_bool_and`` (kind False) / ``list_bool_or`` (kind True) of a ``list_transform``, in one loop."""

    def aggregate(env: list[Any]) -> Any:
        xs = items(env)
        if xs is None:
            return None

        def results() -> Iterator[Any]:  # (lazy: the fold stops at the element that decides it)
            for i, x in enumerate(_items(xs), 1):
                env[x_slot] = x
                if i_slot is not None:
                    env[i_slot] = i
                yield body(env)

        return _folded(kind, results())

    return aggregate


def _plain_operands(node: Any) -> None:
    """Refuse an operator node carrying sqlglot flags the evaluator does not read."""
    extra = [k for k, v in node.args.items() if v and k not in ("this", "expression", "typed", "safe")]
    if extra:
        raise Unsupported(f"{node.sql('duckdb')[:60]!r}: {extra} not implemented")


@functools.cache
def _macros_source() -> dict[str, tuple[list[str], Any]]:
    """The macros of :data:`linkage.prepare.MACROS`: name -> (parameters, body tree)."""
    import sqlglot
    from sqlglot import exp

    from linkage.prepare import MACROS

    found: dict[str, tuple[list[str], Any]] = {}
    for statement in sqlglot.parse(MACROS, read="duckdb"):
        if not isinstance(statement, exp.Create) or str(statement.args.get("kind")).upper() != "MACRO":
            raise Unsupported("MACROS holds a statement that is not CREATE MACRO")
        signature = statement.this
        found[signature.this.name.lower()] = ([p.name.lower() for p in signature.expressions], statement.expression)
    return found


_COMPILING: set[str] = set()
_COMPILING_LOCK: Final = threading.RLock()  # the service may compile specs from two threads at once


@functools.cache
def _binders(name: str) -> frozenset[str]:
    """The names that the lambdas of a macro's body, and of the macros it calls, bind."""
    from sqlglot import exp

    _, tree = _macros_source()[name]
    found = {p.name.lower() for lam in tree.find_all(exp.Lambda) for p in lam.expressions}
    for call in tree.find_all(exp.Anonymous):
        callee = str(call.this).lower()
        if callee in _macros_source() and callee != name:
            found |= _binders(callee)
    return frozenset(found)


@functools.cache
def _macro(name: str) -> tuple[Node, int, int]:
    """A macro compiled once: (body over its own frame, number of parameters, frame size)."""

    params, tree = _macros_source()[name]
    with _COMPILING_LOCK:
        return _compile_macro(name, params, tree)


def _compile_macro(name: str, params: list[str], tree: Any) -> tuple[Node, int, int]:
    from sqlglot import exp

    if name in _COMPILING:
        raise Unsupported(f"macro {name} calls itself")
    _COMPILING.add(name)
    try:
        # a lambda inside the body that binds a parameter's name would capture the argument in DuckDB's
        # substitution; none of MACROS does, and one that did is refused rather than guessed
        for lam in tree.find_all(exp.Lambda):
            if {p.name.lower() for p in lam.expressions} & set(params):
                raise Unsupported(f"macro {name}: a lambda rebinds a parameter")
        compiler = _Compiler(rows=0)
        scope = {p: compiler.slot() for p in params}
        body = compiler.compile(tree, scope)
    finally:
        _COMPILING.discard(name)
    return body, len(params), compiler.size


def _literal(node: Any) -> Any:
    if node.is_string:
        return str(node.this)
    text = str(node.this)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _constant(value: Any) -> Node:
    return lambda env: value


def _logic(conjunction: bool, a: Node, b: Node) -> Node:
    """AND / OR in three-valued logic."""
    if conjunction:

        def both(env: list[Any]) -> Any:
            x = a(env)
            if x is False:
                return False
            y = b(env)
            if y is False:
                return False
            return None if x is None or y is None else True

        return both

    def either(env: list[Any]) -> Any:
        x = a(env)
        if x is True:
            return True
        y = b(env)
        if y is True:
            return True
        return None if x is None or y is None else False

    return either


def _not(a: Node) -> Node:
    def negate(env: list[Any]) -> Any:
        x = a(env)
        return None if x is None else not x

    return negate


def _distinct(negate: bool, a: Node, b: Node) -> Node:
    """IS [NOT] DISTINCT FROM: NULL equals NULL, never NULL."""

    def same(env: list[Any]) -> bool:
        x, y = a(env), b(env)
        equal = (x is None and y is None) or (x is not None and y is not None and _EQ(x, y) is True)
        return equal != negate

    return same


def _coalesce(args: Sequence[Node]) -> Node:
    def first(env: list[Any]) -> Any:
        for arg in args:
            v = arg(env)
            if v is not None:
                return v
        return None

    return first


def _nullif(a: Node, b: Node) -> Node:
    def nullif(env: list[Any]) -> Any:
        x = a(env)
        return None if x is not None and _EQ(x, b(env)) is True else x

    return nullif
