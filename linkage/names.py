"""Indonesian person names: titles, degrees, patronyms, old spellings and a phonetic key.

Pure functions of strings, following ``shared/domain/indonesia.md`` §1.3–1.6. The rules run as
stages in a fixed order (:data:`STEPS`):

A. clean-up and parse (A1 Unicode/case/apostrophes, A2 comma-separated degrees, A3 punctuation,
   A4 leading titles, A5 trailing degrees, A6 bin/binti patronym, A7 Batak ``br``/``boru``,
   A8 Balinese ``I``/``Ni`` gender markers);
B. a whole-token lexicon of variant families (Muhammad/Moch./Muh., Achmad, Abd., St., Jusuf, ...),
   applied before and after C;
C. pre-1972 spelling to EYD (oe→u, dj→j, tj→c, sj→sy, initial nj→ny, ch→kh, j→y only in
   old-spelling tokens, final -ie→-i), with the over-merge pitfalls of §1.5 handled by
   exception lists;
D. an aggressive per-token matching key (kh→h, sy→s, aspirated h dropped, f/v→p, doubled letters
   collapsed, y→i, final h dropped) that feeds blocking and comparison features only and is never
   shown to people.

Single letters are initials and stay initials: ``M. Rizki`` keeps ``M``, never expanded into
``MUHAMMAD`` (the matching stage treats an initial as *compatible* with a token, not equal to it).

>>> n = normalise_name("H. Moch. Rizki Ramadhan, S.Pd. binti Soekardi")
>>> n.canonical, n.titles, n.degrees, n.patronym
('MUHAMMAD RIZKI RAMADAN', ('H',), ('SPD',), 'SUKARDI')
>>> n.keys
('MUHAMAD', 'RIZKI', 'RAMADAN')
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final, NamedTuple

__all__ = ["STEPS", "NameParts", "name_key", "normalise_name", "token_key"]

STEPS: Final = ("clean", "titles", "degrees", "patronym", "particles", "gender_marker", "lexicon", "eyd")


class NameParts(NamedTuple):
    """A normalised name.

    ``canonical`` is the display-safe form (stages A–C), ``tokens`` its ordered tokens, ``concat`` the
    space-free form (``NUR HAYATI`` and ``NURHAYATI`` agree there), ``keys`` the aggressive per-token
    matching keys (stage D), ``titles``/``degrees``/``patronym``/``gender_marker`` what was split off.
    """

    canonical: str
    tokens: tuple[str, ...]
    concat: str
    keys: tuple[str, ...]
    titles: tuple[str, ...]
    degrees: tuple[str, ...]
    patronym: str | None
    gender_marker: str | None


EMPTY: Final = NameParts("", (), "", (), (), (), None, None)

# --- A. clean-up -----------------------------------------------------------------------------

_APOSTROPHES: Final = dict.fromkeys(map(ord, "'`´‘’ʼʻ"), None)
_NOT_LETTER_OR_DOT: Final = re.compile(r"[^A-Z.\s]+")
_DOTS: Final = re.compile(r"\.+")

# Religious, professional and noble titles written before the name (§1.3), as compact tokens.
_TITLES: Final = frozenset(
    """
    H HJ HAJI HAJAH HAJJAH KH KYAI KIAI UST USTADZ USTADZAH USTAZ USTAZAH TGK TEUKU CUT DR DRG DRS DRA
    IR PROF R RD RA RM RAY RADEN MAS AJENG AYU GUSTI COKORDA TJOKORDA DATUK DT SUTAN PUTI TUAN NY NYONYA
    SDR SDRI BPK IBU TN HAJ
    """.split()
)
# Titles that are only titles when another title precedes them ("Raden Mas", "Ida Ayu").
_TITLE_SECOND_ONLY: Final = frozenset({"MAS", "AJENG", "AYU"})
# Two-token titles (§1.3 nobility): popped as a pair.
_TITLE_PAIRS: Final = frozenset({("IDA", "BAGUS"), ("IDA", "AYU"), ("ANAK", "AGUNG"), ("K", "H"), ("A", "A")})

# Academic degrees (§1.3), compact (dots and spaces removed).
_DEGREES: Final = frozenset(
    """
    SE SH SPD SPDI SKOM ST SSOS SAG SSI SPSI SKED SKM SKEP SFARM SIP SIKOM SHUM SS SEI SGZ SPT STP SKH
    SHI SSY STR STRPAR SPDSD SAP SSN SDS MM MPD MKOM MSI MH MT MAG MKES MHUM MTI MAK MFARM MTR MSC MBA
    MA PHD LLM BSC BA AP AM AMD AMDKEP AMDKEB AMDKOM AMDFARM AMDAK AMK AMKEB AMPD SPOG SPPD SPA SPB SPM
    SPJP SPKK SPTHT SPAN SPRAD SPS SPKJ
    """.split()
)
# Degrees that may close a name without a comma or a dot ("BUDI SE"). Short codes that could be a
# real token or an initial pair ("MA", "AM", "AP", "BA") are only taken when written with dots.
_DEGREES_BARE: Final = _DEGREES - {"MA", "AM", "AP", "BA", "SS", "MT", "MH", "SAP", "AMK"}

_PATRONYM: Final = frozenset({"BIN", "BINTI", "BT", "BTE", "BINTE"})
_BATAK_PARTICLES: Final = frozenset({"BR", "BORU"})
_BALINESE_MARKERS: Final = frozenset({"I", "NI"})
# Birth-order and caste tokens that make a leading I/NI a Balinese gender marker (§1.2, rule A8).
_BALINESE_NEXT: Final = frozenset(
    """
    WAYAN PUTU GEDE LUH MADE KADEK NENGAH NYOMAN KOMANG KETUT NJOMAN IDA GUSTI DEWA DESAK ANAK COKORDA
    TJOKORDA NGURAH KOMPIANG
    """.split()
)

# --- B. lexicon of variant families (§1.4 B) -----------------------------------------------------

_LEXICON_FAMILIES: Final = {
    "MUHAMMAD": (
        "MUHAMAD MUHAMMED MUHAMED MOHAMMAD MOHAMAD MOHAMMED MOHAMED MOCHAMMAD MOCHAMAD MUCHAMMAD "
        "MUCHAMAD MUKHAMMAD MUKHAMAD MOEHAMMAD MOEHAMAD MOECHAMMAD MOECHAMAD MOHAMAAD MOHAMAT MOHAMMAT "
        "MUHAMAT MUHAMMADD MUHHAMAD MOH MOCH MOHD MUH MHD MUCH MOECH MUHD MOHAMAD MOCHAMED MUKHAMAT"
    ),
    "AHMAD": "ACHMAD AKHMAD AHMED ACHMED AHMAT ACHMAT AKHMED AHMAD AHMMAD",
    "ABDUL": "ABD ABDOEL ABDOL",
    "NUR": "NOOR NOER NUUR NOUR",
    "SITI": "SITTI",
    "YUSUF": "JUSUF JOESOEF YOESOEF YUSUP JUSUP YUSOF YUSOEF JOESUF",
    "RAHMAT": "RACHMAT RAKHMAT",
    "RAMADAN": "RAMADHAN ROMADHON ROMADON RAMADLAN",
}
_LEXICON: Final = {v: canon for canon, variants in _LEXICON_FAMILIES.items() for v in variants.split()}

# --- C. old spelling to EYD (§1.4 C, pitfalls §1.5) ----------------------------------------------

_OLD_MARKERS: Final = ("OE", "DJ", "TJ", "SJ")
_J_TO_Y: Final = re.compile(r"(?<![DTSN])J")
# oe→u misfires on Western names (§1.5).
_OE_EXCEPTIONS: Final = frozenset({"NOEL", "JOEL", "ZOE", "JOE", "CHLOE", "NOEMI", "JOEY", "ROEL"})
# ch stays ch in Western names; in these Indonesian ones it was a plain c (Chandra = Candra).
_CH_KEEP: Final = frozenset(
    """
    CHRISTIAN CHRISTINA CHRISTINE CHRISTOPHER CHRIS MICHAEL MICHELLE RICHARD CHARLES CHARLIE RACHEL
    CHELSEA CHINTYA CYNTHIA CHRISTY CHRISTIANTO MICHAELA ENOCH JOSHUA CHARLOTTE CHANDLER
    """.split()
)
_CH_TO_C: Final = {
    "CHANDRA": "CANDRA", "CHITRA": "CITRA", "CHANDRI": "CANDRI", "CHINDY": "CINDY", "CHINTA": "CINTA",
    "CHAHYA": "CAHYA", "CHAHYO": "CAHYO",
}

# --- D. aggressive matching key (§1.4 D) ------------------------------------------------------

_KEY_SUBS: Final = (
    ("KH", "H"),
    ("SY", "S"),
    ("DZ", "Z"),
    ("TS", "S"),
    ("PH", "P"),
    ("Q", "K"),
    ("X", "KS"),
    ("AE", "AI"),
)
_ASPIRATED_H: Final = re.compile(r"(?<=[BDGT])H")
_F_V: Final = str.maketrans("FV", "PP")
_DOUBLES: Final = re.compile(r"(.)\1+")
_Y_AFTER_CONSONANT: Final = re.compile(r"(?<=[^AEIOUY])Y")


def _is_old_spelling(token: str) -> bool:
    return token.startswith("NJ") or any(m in token for m in _OLD_MARKERS)


def _eyd(token: str) -> str:
    """Stage C: one token from pre-1972 spelling to EYD; a token in EYD already is returned as is.

    >>> [_eyd(t) for t in ("SOEKARNO", "DJOKO", "TJAHJO", "SOEJONO", "NJOMAN", "SANJAYA", "ACHMAD")]
    ['SUKARNO', 'JOKO', 'CAHYO', 'SUYONO', 'NYOMAN', 'SANJAYA', 'AKHMAD']
    """
    if token in _CH_TO_C:
        return _CH_TO_C[token]
    if _is_old_spelling(token) and token not in _OE_EXCEPTIONS:
        token = _J_TO_Y.sub("Y", token)  # C1, only in tokens with another old marker
        token = token.replace("OE", "U").replace("DJ", "J").replace("TJ", "C").replace("SJ", "SY")
        if token.startswith("NJ"):
            token = "NY" + token[2:]  # C6, word-initial only (Sanjaya, Panji stay)
    if "CH" in token and token not in _CH_KEEP:
        token = token.replace("CH", "KH")  # C7
    if len(token) > 3 and token.endswith("IE"):
        token = token[:-1]  # C8 Dutch-style ending: HABIBIE → HABIBI
    return token


def token_key(token: str) -> str:
    """Stage D: the aggressive matching key of one canonical token (for blocking and features only).

    >>> [token_key(t) for t in ("AKHMAD", "AISYAH", "RAMADHAN", "SOPYAN", "MUHAMMAD", "ZAENAL", "LUH")]
    ['AHMAD', 'AISA', 'RAMADAN', 'SOPIAN', 'MUHAMAD', 'ZAINAL', 'LUH']
    >>> token_key("SAPUTRA") != token_key("SAPUTRI")
    True
    """
    key = token
    for old, new in _KEY_SUBS:
        if old in key:
            key = key.replace(old, new)
    key = _ASPIRATED_H.sub("", key)
    key = key.translate(_F_V)
    key = _DOUBLES.sub(r"\1", key)
    if key.endswith("Y"):
        key = key[:-1] + "I"
    key = _Y_AFTER_CONSONANT.sub("I", key)
    if len(key) > 3 and key.endswith("H") and key[-2] in "AEIOU":
        key = key[:-1]  # D7, skipped for short tokens so LUH stays LUH
    return key


def _clean(raw: str) -> str:
    """Stage A1: Unicode to plain upper-case ASCII letters, dots, commas and spaces."""
    if not raw.isascii():
        text = unicodedata.normalize("NFKD", raw)
        raw = "".join(ch for ch in text if not unicodedata.combining(ch))
    return raw.translate(_APOSTROPHES).upper()


def _split_tokens(segment: str) -> list[tuple[str, bool]]:
    """Stage A3: (compact token, written-with-a-dot) pairs; other punctuation and digits split tokens."""
    out: list[tuple[str, bool]] = []
    for word in _NOT_LETTER_OR_DOT.sub(" ", segment).split():
        parts = [p for p in _DOTS.split(word) if p]
        dotted = "." in word
        if len(parts) > 1 and "".join(parts) in _DEGREES:
            out.append(("".join(parts), True))  # S.Pd. stays one degree token
            continue
        for i, part in enumerate(parts):
            out.append((part, dotted and (i < len(parts) - 1 or word.endswith("."))))
    return out


def _pop_degrees(tokens: list[tuple[str, bool]], degrees: list[str]) -> None:
    """Stage A5: trailing degree tokens, kept only while at least one name token remains."""
    while len(tokens) > 1:
        token, dotted = tokens[-1]
        if token in _DEGREES_BARE or (dotted and token in _DEGREES):
            degrees.insert(0, token)
            tokens.pop()
        else:
            break


def _pop_titles(tokens: list[str], titles: list[str]) -> str | None:
    """Stages A4 and A8: leading titles and the Balinese gender marker; returns the marker."""
    marker = None
    while len(tokens) > 1:
        first, second = tokens[0], tokens[1]
        if first in _BALINESE_MARKERS and marker is None and second in _BALINESE_NEXT:
            marker = first
            tokens.pop(0)
        elif (first, second) in _TITLE_PAIRS and len(tokens) > 2:
            titles.append(f"{first} {second}")
            del tokens[:2]
        elif first in _TITLES and (first not in _TITLE_SECOND_ONLY or titles):
            titles.append(first)
            tokens.pop(0)
        else:
            break
    return marker


@functools.lru_cache(maxsize=262_144)
def _canonical_token(token: str) -> str:
    """Stages B and C on one token. Cached: a few thousand tokens make up most names."""
    token = _LEXICON.get(token, token)
    eyd = _eyd(token)
    return _LEXICON.get(eyd, eyd)


_token_key_cached: Final = functools.lru_cache(maxsize=262_144)(lambda token: token_key(token))


def _canonical_tokens(tokens: list[str]) -> list[str]:
    """Stages B and C on each token; ``ST`` becomes SITI only as the first of several tokens."""
    out = [_canonical_token(token) for token in tokens]
    if len(tokens) > 1 and tokens[0] == "ST":
        out[0] = "SITI"
    return out


def normalise_name(raw: str | None) -> NameParts:
    """Normalise one person's name (stages A–D); total on any input, never raises.

    Args:
        raw: the name as written, e.g. ``"Hj. Siti Fatimah binti Abdullah"``; ``None`` gives an
            empty result.

    Returns:
        The canonical display form, ordered tokens, space-free form, per-token keys, and the titles,
        degrees, patronym and Balinese gender marker that were split off.

    >>> normalise_name("Rosmawati br. Sinaga").canonical
    'ROSMAWATI SINAGA'
    >>> n = normalise_name("Ni Luh Putu Ayu")
    >>> n.gender_marker, n.canonical
    ('NI', 'LUH PUTU AYU')
    >>> normalise_name("M. Rizki").tokens
    ('M', 'RIZKI')
    """
    if not raw or not raw.strip():
        return EMPTY
    text = _clean(raw)
    segments = text.split(",")
    tokens = _split_tokens(segments[0])
    degrees: list[str] = []
    for segment in segments[1:]:
        seg_tokens = _split_tokens(segment)
        compact = "".join(t for t, _ in seg_tokens)
        if compact in _DEGREES:
            degrees.append(compact)  # "S. Pd." written with a space
            continue
        for token, dotted in seg_tokens:
            # After a comma a degree code is a degree; anything else is a name token, as in a
            # surname-first extract ("SUKARNO, AHMAD"), so every token is kept.
            if token in _DEGREES:
                degrees.append(token)
            else:
                tokens.append((token, dotted))
    _pop_degrees(tokens, degrees)
    words = [t for t, _ in tokens]

    patronym = None
    for i, word in enumerate(words):
        if word in _PATRONYM and 0 < i < len(words) - 1:
            patronym = " ".join(_canonical_tokens(words[i + 1 :]))
            words = words[:i]
            break
    words = [w for i, w in enumerate(words) if not (w in _BATAK_PARTICLES and 0 < i < len(words) - 1)]

    titles: list[str] = []
    marker = _pop_titles(words, titles)
    canon = _canonical_tokens(words)
    keys = tuple(_token_key_cached(t) for t in canon)
    return NameParts(
        canonical=" ".join(canon),
        tokens=tuple(canon),
        concat="".join(canon),
        keys=keys,
        titles=tuple(titles),
        degrees=tuple(degrees),
        patronym=patronym or None,
        gender_marker=marker,
    )


def name_key(parts: NameParts) -> str:
    """The space-free matching key: per-token keys joined, order kept (for blocking and golden tests).

    >>> name_key(normalise_name("Nur Hayati")) == name_key(normalise_name("Nurhayati"))
    True
    """
    return token_key("".join(parts.keys)) if parts.keys else ""
