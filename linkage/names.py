"""Indonesian person names: titles, degrees, patronyms, old spellings and a phonetic key.

Pure functions of strings, following ``shared/domain/indonesia.md`` §1.3–1.6. The rules run as
stages in a fixed order (:data:`STEPS`):

1. ``clean`` (A1–A3): Unicode, case and apostrophes; comma segments that are degree codes go to
   ``degrees``; other punctuation and digits split tokens.
2. ``lexicon`` and ``eyd`` (B, C): every token through the whole-token lexicon of variant families
   (Muhammad/Moch./Muh., Achmad, Abd., Jusuf, ...) and from pre-1972 spelling to EYD (oe→u,
   dj→j, tj→c, sj→sy, nj→ny, ch→kh or h, j→y only in old-spelling tokens, final -ie→-i), with the
   over-merge pitfalls of §1.5 handled by exception lists. Tokens are made canonical *before* the
   parse below, so old-spelling titles (``Hadji``, ``Tjoet``) are recognised and normalising a
   canonical form again changes nothing.
3. ``particles``, ``degrees``, ``titles``, ``gender_marker``, ``patronym`` (A7, A5, A4, A8, A6):
   Batak ``br``/``boru``, trailing degrees, leading titles, the Balinese ``I``/``Ni`` marker,
   then the ``bin``/``binti`` patronym (and any degree that stood before it).

Each token's aggressive matching key (D: kh→h, sy→s, aspirated h dropped, f/v→p, doubled letters
collapsed, y→i, final h dropped) feeds blocking and comparison features only and is never shown to
people.

Decisions worth knowing:

* Single letters are initials and stay initials: ``M. Rizki`` keeps ``M``, never expanded into
  ``MUHAMMAD`` (the matching stage treats an initial as *compatible* with a token, not equal to it).
* Token order is kept as written, including surname-first extracts (``"Sukarno, Ahmad"`` gives
  ``SUKARNO AHMAD``): Indonesian names have no given/family split, and airline or MRZ extracts
  (``SUKARNO/AHMAD``) split at arbitrary places, so names are compared order-insensitively on
  their token keys rather than reordered here.
* Titles are kept as short codes (``Haji``→``H``, ``Hajjah``→``HJ``, ``Raden``/``Rd.``→``R``,
  ``K.H.``→``KH``) so that two records can compare them as weak evidence.

>>> n = normalise_name("H. Moch. Rizki Ramadhan, S.Pd. bin Soekardi")
>>> n.canonical, n.titles, n.degrees, n.patronym
('MUHAMMAD RIZKI RAMADAN', ('H',), ('SPD',), 'SUKARDI')
>>> n.keys
('MUHAMAD', 'RIZKI', 'RAMADAN')
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final, Literal, NamedTuple

__all__ = ["STEPS", "NameParts", "name_key", "normalise_name", "token_key"]

# The order the stages run in (see the module docstring).
STEPS: Final = ("clean", "lexicon", "eyd", "particles", "degrees", "titles", "gender_marker", "patronym")


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

# Apostrophes and the Arabic ayn/hamza marks of transliterations (Ma'ruf, Maʿruf, Ja‘far) join
# the letters around them rather than splitting the token.
_APOSTROPHES: Final = dict.fromkeys(map(ord, "'`´‘’‛ʼʻʽʾʿʹ′＇"), None)
_NOT_LETTER_OR_DOT: Final = re.compile(r"[^A-Z.]+")
_DOTS: Final = re.compile(r"\.+")
_NOT_LETTER: Final = re.compile(r"[^A-Z]+")

# The sets below hold canonical (EYD) spellings: tokens go through stages B and C before the parse.

# Religious, professional and noble titles written before the name (§1.3), as compact tokens.
_TITLES: Final = frozenset(
    """
    H HJ HAJI HAJAH HAJJAH KH KYAI KIAI UST USTADZ USTADZAH USTAZ USTAZAH TGK TEUKU CUT DR DRG DRS DRA
    IR PROF R RD RA RM RAY RADEN MAS AJENG AYU GUSTI COKORDA DATUK DT SUTAN PUTI TUAN NY NYONYA
    SDR SDRI BPK IBU TN HAJ
    """.split()
)
# One code per title, so that "Haji" and "H." (or "Raden" and "R.") compare equal as evidence.
_TITLE_CODES: Final = {
    "HAJI": "H",
    "HAJ": "H",
    "HAJAH": "HJ",
    "HAJJAH": "HJ",
    "KIAI": "KYAI",
    "RADEN": "R",
    "RD": "R",
    "USTADZ": "UST",
    "USTAZ": "UST",
    "USTAZAH": "USTADZAH",
    "NYONYA": "NY",
    "DATUK": "DT",
}
# Titles that are only titles when another title precedes them ("Raden Mas", "Ida Ayu").
_TITLE_SECOND_ONLY: Final = frozenset({"MAS", "AJENG", "AYU"})
# Two-token titles (§1.3 nobility): popped as a pair, recorded under one code.
_TITLE_PAIRS: Final = {
    ("IDA", "BAGUS"): "IDA BAGUS",
    ("IDA", "AYU"): "IDA AYU",
    ("ANAK", "AGUNG"): "ANAK AGUNG",
    ("A", "A"): "ANAK AGUNG",
    ("K", "H"): "KH",
}

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
# real token or an initial pair ("MA", "AM", "AP", "BA") are only taken when written with dots, or
# when an unambiguous degree comes before them ("DEWI SARTIKA SH MH").
_DEGREES_BARE: Final = _DEGREES - {"MA", "AM", "AP", "BA", "SS", "MT", "MH", "SAP", "AMK"}

_PATRONYM: Final = frozenset({"BIN", "BINTI", "BT", "BTE", "BINTE"})
_BATAK_PARTICLES: Final = frozenset({"BR", "BORU"})
_BALINESE_MARKERS: Final = frozenset({"I", "NI"})
# The initials of the birth-order names (Wayan, Putu, Gede, Luh, Made, Kadek, Komang, Ketut, Nengah, Nyoman):
# NI K. INDAH is NI KETUT INDAH cut short, and the marker goes as it does there.
_BIRTH_ORDER_INITIALS: Final = frozenset("WPGLMKN")
# Birth-order and caste tokens that make a leading I/NI a Balinese gender marker (§1.2, rule A8).
_BALINESE_NEXT: Final = frozenset(
    """
    WAYAN PUTU GEDE LUH MADE KADEK NENGAH NYOMAN KOMANG KETUT IDA GUSTI DEWA DESAK ANAK COKORDA NGURAH
    KOMPIANG
    """.split()
)

# --- B. lexicon of variant families (§1.4 B) -----------------------------------------------------

_LEXICON_FAMILIES: Final = {
    "MUHAMMAD": (
        "MUHAMAD MUHAMMED MUHAMED MOHAMMAD MOHAMAD MOHAMMED MOHAMED MOCHAMMAD MOCHAMAD MUCHAMMAD "
        "MUCHAMAD MUKHAMMAD MUKHAMAD MOEHAMMAD MOEHAMAD MOECHAMMAD MOECHAMAD MOHAMAAD MOHAMAT MOHAMMAT "
        "MUHAMAT MUHAMMAT MUHAMMADD MUHHAMAD MOH MOCH MOHD MUH MHD MUCH MOECH MUHD MOCHAMED MUKHAMAT"
    ),
    "AHMAD": "ACHMAD AKHMAD AHMED ACHMED AHMAT ACHMAT AKHMED AHMMAD",
    "ABDUL": "ABD ABDOEL ABDOL",
    "NUR": "NOOR NOER NUUR NOUR",
    "SITI": "SITTI",
    # j = y in these old spellings, but the token has no other old marker for rule C1 to see (§1.5).
    "YUSUF": "JUSUF JOESOEF YOESOEF YUSUP JUSUP YUSOF YUSOEF JOESUF",
    "YAHYA": "JAHJA JAHYA YAHJA",
    "YUNUS": "JUNUS JOENOES YOENOES",
    "HIDAYAT": "HIDAJAT",
    "RAHMAT": "RACHMAT RAKHMAT",
    "RAMADAN": "RAMADHAN ROMADHON ROMADON RAMADLAN",
}
_LEXICON: Final = {v: canon for canon, variants in _LEXICON_FAMILIES.items() for v in variants.split()}

# --- C. old spelling to EYD (§1.4 C, pitfalls §1.5) ----------------------------------------------

# C1 j→y. In a token with an old marker, every j outside dj/tj/sj is an old j (nj included: old
# "Soenjoto" is EYD "Sunyoto", while EYD n+j was written ndj, "Sandjaja"); in a token whose only
# marker is an initial nj, a later n+j is left alone (§1.5).
_J_TO_Y: Final = re.compile(r"(?<![DTS])J")
_J_TO_Y_NOT_NJ: Final = re.compile(r"(?<![DTSN])J")
# oe→u misfires on Western names (§1.5).
_OE_EXCEPTIONS: Final = frozenset({"NOEL", "JOEL", "ZOE", "JOE", "CHLOE", "NOEMI", "JOEY", "ROEL", "PHOEBE"})
# ch stays ch in Western and Chinese names; in these Indonesian ones it was a plain c (Chandra = Candra).
_CH_KEEP: Final = frozenset(
    """
    CHRISTIAN CHRISTINA CHRISTINE CHRISTOPHER CHRIS MICHAEL MICHELLE RICHARD CHARLES CHARLIE RACHEL
    CHELSEA CHINTYA CYNTHIA CHRISTY CHRISTIANTO MICHAELA ENOCH CHARLOTTE CHANDLER NICHOLAS RICHARDO
    CHEN CHENG CHANG CHONG CHUA
    """.split()
)
_CH_TO_C: Final = {
    "CHANDRA": "CANDRA",
    "CHITRA": "CITRA",
    "CHANDRI": "CANDRI",
    "CHINDY": "CINDY",
    "CHINTA": "CINTA",
    "CHAHYA": "CAHYA",
    "CHAHYO": "CAHYO",
}
# C7 (issue 12 §5). The EYD table maps the letter ch to kh (§1.1), but in Arabic names the old ch spelt
# two letters, and today's spelling writes them apart: kha as kh (Chairul→KHAIRUL, Chadidjah→KHADIJAH),
# ha as h (Rachman→RAHMAN, Machmud→MAHMUD, Ichsan→IHSAN, Machfud→MAHFUD), as it does the h of Malay and
# Javanese words (Bacharuddin→BAHARUDDIN). We list the kha stems and let every other ch become h,
# not the reverse: kha roots in names are a short closed set (khair, khadijah, khalid, khalil,
# khatimah, khatib, fakhr, ikhlas, ikhwan, mukhlis, mukhtar, bukhari, zulaikha, syaikh), while ha
# words are open-ended (Rahm-, Mahm-, Muham-, Hasan, Husn, Hamid, Halim, Ihsan, Fahmi, Zahra, ...).
# A kha word missing here costs only its display form (it shows with h): the matching key is the same
# either way, because rule D1 turns kh into h. A kh already written stays kh (Ikhsan, Makhfud).
# Each stem is written as the old spelling has it; only the CH inside it becomes KH.
_KHA_STEMS: Final = (
    "CHAIR CHOIR CHAER CHADIJ CHODIJ CHALID CHOLID CHALIL CHOLIL CHALIF CHOLIF CHALIS CHOLIS CHATIM "
    "CHOTIM CHATIB CHOTIB CHIDIR CHAMIS FACHR ICHLAS ICHWAN MUCHLIS MUCHLAS MUCHTAR BUCHAR BUCHOR "
    "ZULAICH SYAICH SYECH ^ACHIR"
).split()
_KHA: Final = re.compile("|".join(_KHA_STEMS))

# --- D. aggressive matching key (§1.4 D) ------------------------------------------------------

_KEY_SUBS: Final = (
    ("KH", "H"),
    ("DZ", "Z"),
    ("TS", "S"),
    ("PH", "P"),
    ("Q", "K"),
    ("X", "KS"),
    ("AE", "AI"),
)
# D2 sy→s only where sy is the digraph, before a vowel (Aisyah); in Dessy or Sylvia the y is a vowel.
_SY_DIGRAPH: Final = re.compile(r"SY(?=[AEIOU])")
_ASPIRATED_H: Final = re.compile(r"(?<=[BDGT])H")
_F_V: Final = str.maketrans("FV", "PP")
_INITIAL: Final = {"F": "P", "V": "P", "Q": "K", "J": "Y"}
_DOUBLES: Final = re.compile(r"(.)\1+")
_Y_AFTER_CONSONANT: Final = re.compile(r"(?<=[^AEIOUY])Y")
# Arabic sun-letter assimilation: Abdul Rahman is also written Abdurrahman, Abdul Salam Abdussalam.
_ABDUL_ASSIMILATED: Final = re.compile(r"ABDUL(?=[DLNRSTZ])")


def _eyd(token: str) -> str:
    """Stage C: one token from pre-1972 spelling to EYD; a token in EYD already is returned as is.

    >>> [_eyd(t) for t in ("SOEKARNO", "DJOKO", "TJAHJO", "SOEJONO", "NJOMAN", "SANJAYA", "ACHMAD")]
    ['SUKARNO', 'JOKO', 'CAHYO', 'SUYONO', 'NYOMAN', 'SANJAYA', 'AHMAD']
    >>> [_eyd(t) for t in ("RACHMAN", "MACHMUD", "CHAIRUL", "CHADIDJAH", "FACHRUL", "ICHSAN")]
    ['RAHMAN', 'MAHMUD', 'KHAIRUL', 'KHADIJAH', 'FAKHRUL', 'IHSAN']
    >>> [_eyd(t) for t in ("SOENJOTO", "SANDJAJA", "NOEL", "CHANDRA", "CHRISTIAN", "HABIBIE")]
    ['SUNYOTO', 'SANJAYA', 'NOEL', 'CANDRA', 'CHRISTIAN', 'HABIBI']
    """
    if token in _CH_TO_C:
        return _CH_TO_C[token]
    if token not in _OE_EXCEPTIONS:
        if "OE" in token or "DJ" in token or "TJ" in token or "SJ" in token:  # C0
            token = _J_TO_Y.sub("Y", token)  # C1 and C6
            token = token.replace("OE", "U").replace("DJ", "J").replace("TJ", "C").replace("SJ", "SY")
        elif token.startswith("NJ"):  # C0: initial nj is an old marker too
            token = "NY" + _J_TO_Y_NOT_NJ.sub("Y", token[2:])  # C6 then C1
    if "CH" in token and token not in _CH_KEEP:
        # C7: kh in the kha stems, h elsewhere (see _KHA_STEMS)
        token = _KHA.sub(lambda m: m[0].replace("CH", "KH"), token).replace("CH", "H")
    if len(token) > 3 and token.endswith("IE"):
        token = token[:-1]  # C8 Dutch-style ending: HABIBIE → HABIBI
    return token


def token_key(token: str) -> str:
    """Stage D: the aggressive matching key of one canonical token (for blocking and features only).

    Args:
        token: one canonical token (upper-case ASCII letters), e.g. from :attr:`NameParts.tokens`.

    Returns:
        The key; distinct names can share one (Fina/Pina, rule D4), so never merge on it alone.

    >>> [token_key(t) for t in ("AKHMAD", "AISYAH", "RAMADHAN", "SOPYAN", "MUHAMMAD", "ZAENAL", "LUH")]
    ['AHMAD', 'AISA', 'RAMADAN', 'SOPIAN', 'MUHAMAD', 'ZAINAL', 'LUH']
    >>> token_key("SAPUTRA") != token_key("SAPUTRI"), token_key("DESSY")
    (True, 'DESI')
    >>> [token_key(t) for t in ("Y", "J", "F", "M")]  # initials: the first letter of the keys they stand for
    ['Y', 'Y', 'P', 'M']
    """
    if len(token) == 1:
        # An initial stands for the first letter of a token's key: F and V are P there (D4), Q is K, and an
        # old-spelling J is today's Y (§1.1: Jusuf/Yusuf); D6 would make a Y the vowel I.
        return _INITIAL.get(token, token)
    key = token
    for old, new in _KEY_SUBS:
        if old in key:
            key = key.replace(old, new)
    if "SY" in key:
        key = _SY_DIGRAPH.sub("S", key)
    if "H" in key:
        key = _ASPIRATED_H.sub("", key)
    key = key.translate(_F_V)
    key = _DOUBLES.sub(r"\1", key)
    if "Y" in key:
        if key.endswith("Y"):
            key = key[:-1] + "I"
        key = _Y_AFTER_CONSONANT.sub("I", key)
    if len(key) > 3 and key.endswith("H") and key[-2] in "AEIOU":
        key = key[:-1]  # D7, skipped for short tokens so LUH stays LUH
    return key


def _clean(raw: str) -> str:
    """Stage A1: upper case, with accents and apostrophes removed (other punctuation goes in A3)."""
    if not raw.isascii():
        # Apostrophes go before NFKD too: it turns ´ into a space and an accent, splitting the token.
        text = unicodedata.normalize("NFKD", raw.translate(_APOSTROPHES))
        raw = "".join(ch for ch in text if not unicodedata.combining(ch))
    return raw.translate(_APOSTROPHES).upper()


def _split_tokens(segment: str, words: list[str], dots: list[bool]) -> None:
    """Stage A3: append each compact token to ``words`` and whether it was written with a dot to
    ``dots``; other punctuation and digits split tokens."""
    if segment.replace(" ", "").isalpha() and segment.isascii():
        words += segment.split()  # the common case: letters and spaces only
        dots += [False] * (len(words) - len(dots))
        return
    for word in _NOT_LETTER_OR_DOT.sub(" ", segment).split():
        if "." not in word:
            words.append(word)
            dots.append(False)
            continue
        parts = [p for p in _DOTS.split(word) if p]
        if len(parts) > 1:
            joined = "".join(parts)
            if joined in _DEGREES or joined in _TITLES:
                words.append(joined)  # S.Pd. stays one degree token, R.A. one title
                dots.append(True)
                continue
        for i, part in enumerate(parts):
            words.append(part)
            dots.append(i < len(parts) - 1 or word.endswith("."))


@functools.lru_cache(maxsize=262_144)
def _canonical_token(token: str) -> str:
    """Stages B and C on one token, repeated to a fixed point. Cached: a few thousand tokens make up
    most names.

    Repeating makes the result stable (``DDJ``→``DJ``→``J``). It ends: every change by stage C
    shortens the token or removes a J or a CH, and the lexicon's canonical forms are fixed points.

    >>> _canonical_token("MOCH"), _canonical_token("HADJI"), _canonical_token("DDJ")
    ('MUHAMMAD', 'HAJI', 'J')
    """
    while True:
        token_b = _LEXICON.get(token, token)
        eyd = _eyd(token_b)
        out = _LEXICON.get(eyd, eyd)
        if out == token:
            return out
        token = out


_token_key_cached: Final = functools.lru_cache(maxsize=262_144)(lambda token: token_key(token))


def _pop_degrees(words: list[str], dots: list[bool], degrees: list[str]) -> None:
    """Stage A5: the trailing run of degree codes, keeping at least one name token.

    A bare ambiguous code (``MA``, ``MH``) is a degree only when written with dots or after an
    unambiguous degree in the same run, so ``BUDI MA`` keeps ``MA`` but ``DEWI SH MH`` drops both.
    """
    start = len(words)
    while start > 1 and words[start - 1] in _DEGREES:
        start -= 1
    for i in range(start, len(words)):
        if dots[i] or words[i] in _DEGREES_BARE:
            degrees[:0] = words[i:]
            del words[i:], dots[i:]
            return


def _pop_titles(tokens: list[str], titles: list[str]) -> str | None:
    """Stages A4 and A8: leading titles and the Balinese gender marker; returns the marker."""
    marker = None
    while len(tokens) > 1:
        first, second = tokens[0], tokens[1]
        if first in _BALINESE_MARKERS and (second in _BALINESE_NEXT or second in _BIRTH_ORDER_INITIALS):
            marker = marker or first  # a second marker ("I Gusti Ni Luh") goes too, so reruns agree
            del tokens[0]
        elif (first, second) in _TITLE_PAIRS and len(tokens) > 2:
            titles.append(_TITLE_PAIRS[first, second])
            del tokens[:2]
        elif first in _TITLES and (first not in _TITLE_SECOND_ONLY or titles):
            titles.append(_TITLE_CODES.get(first, first))
            del tokens[0]
        else:
            break
    return marker


def _siti(tokens: list[str]) -> list[str]:
    """Lexicon B, positional: ``ST`` is SITI only as the first of several tokens (a final ST is a degree)."""
    if len(tokens) > 1 and tokens[0] == "ST":
        tokens[0] = "SITI"
    return tokens


def normalise_name(raw: str | None, *, rules: Literal["indonesian", "latin"] = "indonesian") -> NameParts:
    """Normalise one person's name (stages A–D); total on any input, never raises.

    Args:
        raw: the name as written, e.g. ``"Hj. Siti Fatimah binti Abdullah"``; ``None`` gives an
            empty result.
        rules: ``"latin"`` keeps only the clean-up (A1, A3) and collapses doubled letters in the
            key, for other countries' names, where Indonesian rules misfire (Mitchell is not an old
            spelling of "Mithell").

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
    >>> n = normalise_name("Hadji Achmad Djunaedi SE MM bin Ramli")
    >>> n.canonical, n.titles, n.degrees, n.patronym
    ('AHMAD JUNAEDI', ('H',), ('SE', 'MM'), 'RAMLI')
    """
    if not raw or raw.isspace():
        return EMPTY
    if rules == "latin":
        return _latin(raw)
    text = _clean(raw)
    segments = text.split(",")
    words: list[str] = []
    dots: list[bool] = []
    _split_tokens(segments[0], words, dots)
    degrees: list[str] = []
    for segment in segments[1:]:
        seg_words: list[str] = []
        seg_dots: list[bool] = []
        _split_tokens(segment, seg_words, seg_dots)
        compact = "".join(seg_words)
        if compact in _DEGREES:
            degrees.append(compact)  # "S. Pd." written with a space
            continue
        for word, dotted in zip(seg_words, seg_dots, strict=True):
            # After a comma a degree code is a degree; anything else is a name token, as in a
            # surname-first extract ("SUKARNO, AHMAD"), kept in the written order.
            if word in _DEGREES:
                degrees.append(word)
            else:
                words.append(word)
                dots.append(dotted)
    words = [_canonical_token(w) for w in words]
    if not _BATAK_PARTICLES.isdisjoint(words):
        # A7 first: dropping an inner particle can bring a degree to the end ("... BR SE") or an
        # I/NI next to a birth-order token, and the stages below must see the final neighbours.
        for i in range(len(words) - 2, 0, -1):
            if words[i] in _BATAK_PARTICLES:
                del words[i], dots[i]
    _pop_degrees(words, dots, degrees)

    titles: list[str] = []
    marker = _pop_titles(words, titles)
    del dots[: len(dots) - len(words)]

    patronym = None
    if not _PATRONYM.isdisjoint(words):
        for i in range(1, len(words) - 1):
            if words[i] in _PATRONYM:
                father = words[i + 1 :]
                _pop_titles(father, [])  # "binti H. Sukardi": the father's titles are not hers
                patronym = " ".join(_siti(father))
                del words[i:], dots[i:]
                _pop_degrees(words, dots, degrees)  # "AHMAD SE BIN UMAR"
                break

    canon = tuple(_siti(words))
    return NameParts(
        " ".join(canon),
        canon,
        "".join(canon),
        tuple([_token_key_cached(t) for t in canon]),
        tuple(titles),
        tuple(degrees),
        patronym or None,
        marker,
    )


def _latin(raw: str) -> NameParts:
    """Clean-up only: upper-case ASCII letter tokens; the key collapses doubled letters.

    >>> _latin("Mitchell  O'Neill").canonical, _latin("Mitchell  O'Neill").keys
    ('MITCHELL ONEILL', ('MITCHEL', 'ONEIL'))
    """
    tokens = tuple(_NOT_LETTER.sub(" ", _clean(raw)).split())
    return NameParts(
        " ".join(tokens), tokens, "".join(tokens), tuple(_DOUBLES.sub(r"\1", t) for t in tokens), (), (), None, None
    )


def name_key(parts: NameParts) -> str:
    """The space-free matching key: per-token keys joined, order kept (for blocking and golden tests).

    Joining lets ``NUR HAYATI`` meet ``NURHAYATI``; ``ABDUL`` before a sun letter is assimilated as in
    Arabic, so ``ABDUL RAHMAN`` meets ``ABDURRAHMAN`` (§1.5, concatenation).

    Args:
        parts: a result of :func:`normalise_name`.

    Returns:
        The key, or ``""`` for a name with no tokens.

    >>> name_key(normalise_name("Nur Hayati")) == name_key(normalise_name("Nurhayati"))
    True
    >>> name_key(normalise_name("Abd. Rachman")), name_key(normalise_name("Abdurrahman"))
    ('ABDURAHMAN', 'ABDURAHMAN')
    """
    if not parts.keys:
        return ""
    joined = "".join(parts.keys)
    if "ABDUL" in joined:
        joined = _ABDUL_ASSIMILATED.sub("ABDU", joined)
    # The tokens are keyed already; joining can only put two equal letters side by side. (Re-keying the
    # whole string cost a quarter of the name rules' time and only changed cross-token letter pairs.)
    return _DOUBLES.sub(r"\1", joined)
