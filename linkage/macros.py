"""The SQL macros of :data:`linkage.prepare.MACROS` written in Python, as DuckDB evaluates them.

The evaluator (:mod:`linkage.evaluator`) can run a macro's body as it runs any fragment, node by node; the
name comparison's macros then cost most of a pair's scoring (about 85 µs of 145 on random pairs). These
twins compute the same values directly, with DuckDB's three-valued logic: ``None`` is SQL's NULL, ``OR``
is true when any side is, ``list_bool_and``/``list_bool_or`` aggregate over a list ignoring NULLs (NULL
when nothing is left), ``list_contains`` of a NULL is NULL unless the list is empty, ``x[i]`` out of range
is NULL for a list and ``''`` for a string. ``tests/test_macros.py`` holds each twin to DuckDB's macro on
random lists of tokens, NULLs and empty lists among them, and to the evaluator's own reading of its body.

A macro of MACROS without a twin here is still evaluated from its SQL; a twin whose macro changed is
caught by those tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["TWINS", "first_letter", "name_typo", "names_abbreviated", "names_explained_by", "names_typo_within",
           "token_in"]  # fmt: skip


def _extract(xs: Any, i: int) -> Any:
    """``xs[i]`` (1-based, negative from the end) of a list or a string, as DuckDB's array_extract."""
    if xs is None:
        return None
    n = len(xs)
    if 0 < i <= n:
        return xs[i - 1]
    if i < 0 and -i <= n:
        return xs[n + i]
    return "" if isinstance(xs, str) else None


def _contains(xs: Sequence[Any] | None, x: Any) -> bool | None:
    """``list_contains(xs, x)``: NULL for a NULL list, and for a NULL value unless the list is empty."""
    if xs is None:
        return None
    if x is None:
        return None if len(xs) else False
    return x in xs


def first_letter(k: str | None) -> str | None:
    """``replace(k[1], 'J', 'Y')``: the letter a key's initial is written with."""
    first = _extract(k, 1)
    return None if first is None else first.replace("J", "Y")


def names_abbreviated(ak: Any, ai: Any, bk: Any, bi: Any, bf: Any) -> bool | None:
    """Every full token of a is one of b's keys or abbreviated to one of b's initials, and b's first letters
    hold every initial of a."""
    if ak is None:
        tokens: bool | None = None
    else:
        tokens = _all(_abbreviated(x, bk, bi) for x in ak if x is not None and len(x) > 1)
    if tokens is False:
        return False
    has_all = None if bf is None or ai is None else all(y is None or y in bf for y in ai)
    return _and(tokens, has_all)


def _abbreviated(x: str, bk: Any, bi: Any) -> bool | None:
    """``list_contains(bk, x) OR list_contains(bi, first_letter(x))``."""
    found = _contains(bk, x)
    return True if found is True else _or(found, _contains(bi, first_letter(x)))


def name_typo(x: str | None, y: str | None, nx: int | None, ny: int | None) -> bool:
    """One edit between two tokens of at least three letters that keeps the first or the last letter, where
    one of them is rare (seen at most 3 times, or 20 times less often than the other)."""
    from linkage.evaluator import damerau_levenshtein

    if x is None or y is None or len(x) < 3 or abs(len(x) - len(y)) > 1:
        return False
    if not (x[0] == y[0] or x[-1] == y[-1]):  # len(y) >= 2 here: both have a first and a last letter
        return False
    counts = [n for n in (nx, ny) if n is not None]  # least/greatest ignore NULLs
    if not counts:
        return False
    low, high = min(counts), max(counts)
    if not (low <= 3 or high >= 20 * low):
        return False
    return damerau_levenshtein(x, y) == 1


def token_in(ak: Any, aw: Any, an: Any, i: int | None, bk: Any, bw: Any, bn: Any) -> bool | None:
    """Token i of a (its key ``ak[i]``, as written ``aw[i]``, its count ``an[i]``) matches b: its key is one
    of b's keys, or it is a typo of one of b's tokens, as written or as keys."""
    if i is None:
        key = word = count = None
    else:
        key, word, count = _extract(ak, i), _extract(aw, i), _extract(an, i)
    found = _contains(bk, key)
    if found is True:
        return True
    if bw is None:
        return _or(found, None)
    typo: bool | None = None
    for j, y in enumerate(bw, 1):
        n_y = _extract(bn, j)
        if name_typo(word, y, count, n_y) or name_typo(key, _extract(bk, j), count, n_y):
            return True
        typo = False
    return _or(found, typo)


def names_typo_within(ak: Any, aw: Any, an: Any, bk: Any, bw: Any, bn: Any) -> bool | None:
    """Every token of a matches b (:func:`token_in`)."""
    if ak is None:
        return None
    return _all(token_in(ak, aw, an, i, bk, bw, bn) for i in range(1, len(ak) + 1))


def names_explained_by(ak: Any, aw: Any, an: Any, bk: Any, bw: Any, bn: Any, bf: Any, bj: Any) -> bool | None:
    """Every token of a matches b, is an initial of one of b's tokens (bf: b's first letters), is two
    adjacent tokens of b written together (bj), or is written together with its neighbour in b."""
    if ak is None:
        return None
    n = len(ak)

    def explained(x: Any, i: int) -> bool | None:
        found = _contains(bj, x)
        if found is True:
            return True
        initial = _and(None if x is None else len(x) == 1, lambda: _contains(bf, x))
        if initial is True:
            return True
        found = _or(found, initial)
        within = token_in(ak, aw, an, i, bk, bw, bn)
        if within is True:
            return True
        found = _or(found, within)
        if i < n:
            after = ak[i]  # ak[i + 1], 1-based
            joined = _contains(bk, None if x is None or after is None else x + after)
            if joined is True:
                return True
            found = _or(found, joined)
        if i > 1:
            before = ak[i - 2]  # ak[i - 1], 1-based
            joined = _contains(bk, None if x is None or before is None else before + x)
            if joined is True:
                return True
            found = _or(found, joined)
        return found

    return _all(explained(x, i) for i, x in enumerate(ak, 1))


# ------------------------------------------------------------------------------------ three-valued logic


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _and(a: bool | None, b: bool | Callable[[], bool | None] | None) -> bool | None:
    """``a AND b``; a callable ``b`` is computed only when ``a`` does not decide."""
    if a is False:
        return False
    other = b() if callable(b) else b
    if other is False:
        return False
    if a is None or other is None:
        return None
    return True


def _all(values: Any) -> bool | None:
    """``list_bool_and``: false at the first false, NULLs ignored, NULL when nothing is left."""
    found = False
    for value in values:
        if value is False:
            return False
        if value is True:
            found = True
    return True if found else None


TWINS: Final[dict[str, Callable[..., Any]]] = {
    "first_letter": first_letter,
    "names_abbreviated": names_abbreviated,
    "name_typo": name_typo,
    "token_in": token_in,
    "names_typo_within": names_typo_within,
    "names_explained_by": names_explained_by,
}
"""Macro name → its Python twin, called with the arguments' values."""
