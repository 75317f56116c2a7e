"""Risk indicators per identity (linkage/risk.py), and `linkage history` showing them.

The store is ingested from a small CSV through the real ingest (so phones, addresses, NIKs and decisions are
normalised as in production); the membership a link run writes is filled by SQL to describe each case.
Indicators are asked for as of ``TODAY``, with the default window of 180 days. Identities:

    R  refused at Kalianda, postponed at Liwa, issued at Metro, refused undated at Kotabumi,
       refused again after TODAY; offices 235+ days apart                        -> two earlier refusals
    O  Metro, Liwa exactly 180 days later, Liwa 182 days after Metro             -> several offices: O1, O2
    P  Metro, Liwa 200 days later                                                -> nothing (200 with window 200)
    N  two valid NIKs (one on two records), and an invalid third                 -> several NIKs
    M  one valid NIK written two ways, and an invalid second                     -> nothing
    C  one valid NIK: agrees; its sex contradicts; its date contradicts; an invalid NIK that contradicts;
       no sex and no date                                                        -> NIK contradicts: C2, C3
    S  a phone X and Y carry too; another that W carries twice and the unlinked U1  -> shared phone (2 others)
    X, Y  S's phone                                                              -> shared phone each
    W  S's second phone, on two records                                          -> nothing (one other identity)
    T  a household (village, RT, RW) that Z and V share under other streets      -> shared household
    Z, V  T's household                                                          -> shared household each
    Q  T's street and RT/RW in another village                                   -> nothing
    U1 stored, never linked
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkage import cli, risk
from linkage.cli import app
from linkage.config import Config
from linkage.errors import InputError
from linkage.history import history
from linkage.pipeline import ingest
from linkage.risk import KINDS, SHARED_WITH, Indicator, indicators
from linkage.store import Store

runner = CliRunner()

TODAY = dt.date(2025, 1, 1)
RUN = "20240101T000000-00000001"
ID = {name: f"ID-{digit * 16}" for name, digit in zip("ROPNMCSXYWTZVQ", "123456789abcde", strict=True)}

COLUMNS = ("record_id", "full_name", "office", "application_date", "decision", "decision_reason", "nik", "sex",
           "birth_date", "birth_place", "phone", "address")  # fmt: skip
ROWS = [
    # record_id, full_name, office, application_date, decision, reason, nik, sex, birth_date, birth_place,
    # phone, address; then the identity (None: never linked)
    ("R1", "Siti Aminah", "Kalianda", "2024-01-10", "ditolak", "tujuan tidak jelas", "", "P", "", "", "", "", "R"),
    ("R2", "Siti Aminah", "Metro", "2024-09-01", "diterbitkan", "", "", "P", "", "", "", "", "R"),
    ("R3", "Siti Aminah", "Metro", "2025-06-01", "ditolak", "dokumen palsu", "", "P", "", "", "", "", "R"),
    ("R4", "Siti Aminah", "Liwa", "2023-05-01", "ditunda", "kurang dokumen", "", "P", "", "", "", "", "R"),
    ("R5", "Siti Aminah", "Kotabumi", "", "ditolak", "sponsor fiktif", "", "P", "", "", "", "", "R"),
    ("O1", "Joko Susilo", "Metro", "2024-01-01", "", "", "", "", "", "", "", "", "O"),
    ("O2", "Joko Susilo", "Liwa", "2024-06-29", "", "", "", "", "", "", "", "", "O"),
    ("O3", "Joko Susilo", "Liwa", "2024-07-01", "", "", "", "", "", "", "", "", "O"),
    ("P1", "Dewi Lestari", "Metro", "2024-01-01", "", "", "", "", "", "", "", "", "P"),
    ("P2", "Dewi Lestari", "Liwa", "2024-07-19", "", "", "", "", "", "", "", "", "P"),
    ("N1", "Rahmat Hidayat", "", "", "", "", "1871014508900001", "", "", "", "", "", "N"),
    ("N2", "Rahmat Hidayat", "", "", "", "", "1871014508900001", "", "", "", "", "", "N"),
    ("N3", "Rahmat Hidayat", "", "", "", "", "1871011505880003", "", "", "", "", "", "N"),
    ("N4", "Rahmat Hidayat", "", "", "", "", "1871014508900000", "", "", "", "", "", "N"),
    ("M1", "Nur Hayati", "", "", "", "", "1871010302910002", "", "", "", "", "", "M"),
    ("M2", "Nur Hayati", "", "", "", "", "1871 0103 0291 0002", "", "", "", "", "", "M"),
    ("M3", "Nur Hayati", "", "", "", "", "1871010302910000", "", "", "", "", "", "M"),
    ("C1", "Ani Wulandari", "", "", "", "", "1871015206920004", "P", "1992-06-12", "Metro", "", "", "C"),
    ("C2", "Ani Wulandari", "", "", "", "", "1871015206920004", "L", "1992-06-12", "Metro", "", "", "C"),
    ("C3", "Ani Wulandari", "", "", "", "", "1871015206920004", "P", "1993-06-12", "Metro", "", "", "C"),
    ("C4", "Ani Wulandari", "", "", "", "", "1871015206920000", "L", "1980-01-01", "Metro", "", "", "C"),
    ("C5", "Ani Wulandari", "", "", "", "", "1871015206920004", "", "", "", "", "", "C"),
    ("S1", "Agus Setiawan", "", "", "", "", "", "", "", "", "0812-3456-7890", "", "S"),
    ("S2", "Agus Setiawan", "", "", "", "", "", "", "", "", "+62 812 3456 7890", "", "S"),
    ("S3", "Agus Setiawan", "", "", "", "", "", "", "", "", "0813-1111-2222", "", "S"),
    ("X1", "Budi Santoso", "", "", "", "", "", "", "", "", "0812 3456 7890", "", "X"),
    ("Y1", "Eko Prasetyo", "", "", "", "", "", "", "", "", "0812-3456-7890", "", "Y"),
    ("W1", "Sri Rahayu", "", "", "", "", "", "", "", "", "0813-1111-2222", "", "W"),
    ("W2", "Sri Rahayu", "", "", "", "", "", "", "", "", "081311112222", "", "W"),
    ("T1", "Wahyu Hidayat", "", "", "", "", "", "", "", "", "", "Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa", "T"),
    ("Z1", "Yuni Astuti", "", "", "", "", "", "", "", "", "", "Gg. Mawar RT 3 RW 5 Kelurahan Palapa", "Z"),
    ("V1", "Dedi Kurniawan", "", "", "", "", "", "", "", "", "", "Jl. Melati 9 RT 003/RW 005 Kel. Palapa", "V"),
    ("Q1", "Rina Marlina", "", "", "", "", "", "", "", "", "", "Jl. Kartini No. 5 RT 003/RW 005 Kel. Sukarame", "Q"),
    ("U1", "Hendra Gunawan", "", "", "", "", "", "", "", "", "0813-1111-2222", "", None),
]


def csv_text(rows: list[tuple[str | None, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row[: len(COLUMNS)] for row in rows)
    return out.getvalue()


def make_store(folder: Path, rows: list[tuple[str | None, ...]] = ROWS) -> Path:
    """Ingest ``rows`` for real, then write the membership and identities a link run would."""
    source = folder / "applications.csv"
    source.write_text(csv_text(rows), encoding="utf-8")
    path = folder / "s.duckdb"
    report = ingest([source], Config(), db=path, today=dt.date(2026, 11, 28))
    assert report.accepted == len(rows)
    with Store(path) as store:
        for row in rows:
            identity = None if row[-1] is None else ID[row[-1]]
            store.sql("INSERT INTO membership VALUES (?, NULL, ?, ?)", [row[0], identity, RUN])
        for identity in sorted(set(ID.values())):
            store.sql("INSERT INTO identities VALUES (?, ?, NULL, NULL)", [identity, RUN])
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("risk"))


@pytest.fixture
def store(db: Path):
    with Store(db, read_only=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def found(db: Path) -> dict[str, list[Indicator]]:
    with Store(db, read_only=True) as opened:
        return indicators(opened, list(ID.values()), today=TODAY)


def kinds(found: dict[str, list[Indicator]], name: str) -> list[tuple[str, list[str]]]:
    return [(i.kind, i.evidence["records"]) for i in found[ID[name]]]


# ------------------------------------------------------------------------------------------------ the kinds


def test_the_kinds_are_exactly_the_five_behaviours() -> None:
    """No kind reads who the applicant is (age, sex, religion, ethnicity, region of origin)."""
    assert KINDS == ("earlier_refusal", "several_offices", "several_niks", "nik_contradicts", "shared_contact")
    assert Indicator.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_every_identity_asked_for_is_answered_in_one_pass(found: dict[str, list[Indicator]]) -> None:
    assert sorted(found) == sorted(ID.values())
    assert {i.kind for indicators_ in found.values() for i in indicators_} == set(KINDS)
    nothing = [name for name in ID if not found[ID[name]]]
    assert nothing == ["P", "M", "W", "Q"]


def test_an_unknown_or_empty_ask_has_no_indicators(store: Store) -> None:
    assert indicators(store, []) == {}
    assert indicators(store, ["ID-ffffffffffffffff", ID["P"], ID["P"]], today=TODAY) == {
        "ID-ffffffffffffffff": [],
        ID["P"]: [],
    }


def test_the_answer_does_not_depend_on_how_the_keys_are_chunked(
    store: Store, found: dict[str, list[Indicator]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys go to the store 50 at a time (an index answers that many), all at once from 1,000 keys; one at a
    time, or all at once, gives the same answer."""
    monkeypatch.setattr(risk, "_CHUNK", 1)
    assert indicators(store, list(ID.values())[::-1], today=TODAY) == found
    monkeypatch.setattr(risk, "_SCAN_FROM", 2)
    assert indicators(store, list(ID.values()), today=TODAY) == found


def test_bad_arguments_are_input_errors(store: Store) -> None:
    with pytest.raises(InputError, match="window_days"):
        indicators(store, [ID["R"]], window_days=-1)
    with pytest.raises(InputError, match=r"'rejectd'.*did you mean 'rejected'"):
        indicators(store, [ID["R"]], refusals=("rejectd",))


# ---------------------------------------------------------------------------------------- earlier refusals


def test_each_refusal_on_or_before_today_is_an_indicator_with_its_office_date_and_reason(
    found: dict[str, list[Indicator]],
) -> None:
    refusals = found[ID["R"]]
    assert [(i.kind, i.evidence["records"]) for i in refusals] == [
        ("earlier_refusal", ["R1"]),  # dated first
        ("earlier_refusal", ["R5"]),  # undated: on record all the same
    ]  # R3 was lodged after TODAY; R4 was postponed, not refused; nothing else of R's fires
    first = refusals[0]
    assert first.evidence == {
        "records": ["R1"],
        "office": "Kalianda",
        "date": "2024-01-10",
        "decision": "rejected",
        "reason": "tujuan tidak jelas",
    }
    assert first.summary == "rejected at Kalianda on 2024-01-10: tujuan tidak jelas"
    assert refusals[1].summary == "rejected at Kotabumi, undated: sponsor fiktif"


def test_refusals_and_today_are_the_callers(store: Store) -> None:
    later = indicators(store, [ID["R"]], today=dt.date(2025, 6, 1), refusals=("rejected", "postponed"))[ID["R"]]
    assert [i.evidence["records"] for i in later] == [["R4"], ["R1"], ["R3"], ["R5"]]
    default = indicators(store, [ID["R"]])[ID["R"]]  # the machine's date: after 2025-06-01
    assert [i.evidence["records"] for i in default] == [["R1"], ["R3"], ["R5"]]


# ------------------------------------------------------------------------------------------ several offices


def test_offices_180_days_apart_are_within_the_window_and_182_are_not(found: dict[str, list[Indicator]]) -> None:
    (window,) = found[ID["O"]]
    assert window.kind == "several_offices"
    assert window.evidence == {
        "records": ["O1", "O2"],
        "offices": ["Liwa", "Metro"],
        "span_days": 180,
        "first": "2024-01-01",
        "last": "2024-06-29",
    }
    assert window.summary == "2 applications at 2 offices (Liwa, Metro) within 180 days, 2024-01-01 to 2024-06-29"


def test_two_offices_200_days_apart_are_not_within_180(store: Store, found: dict[str, list[Indicator]]) -> None:
    assert found[ID["P"]] == []
    wider = indicators(store, [ID["P"]], today=TODAY, window_days=200)[ID["P"]]
    assert [(i.kind, i.evidence["records"], i.evidence["span_days"]) for i in wider] == [
        ("several_offices", ["P1", "P2"], 200)
    ]
    # R's applications are 235 days and more apart: a window wide enough joins them, none after TODAY
    year = indicators(store, [ID["R"]], today=TODAY, window_days=365)[ID["R"]]
    assert [i.evidence["records"] for i in year if i.kind == "several_offices"] == [["R4", "R1"]]


# ---------------------------------------------------------------------------------------------------- NIKs


def test_two_valid_niks_are_an_indicator_that_names_records_not_niks(found: dict[str, list[Indicator]]) -> None:
    (niks,) = found[ID["N"]]
    assert niks.kind == "several_niks"
    assert niks.evidence == {"niks": 2, "records_by_nik": [["N1", "N2"], ["N3"]], "records": ["N1", "N2", "N3"]}
    assert niks.summary == "2 different valid NIKs across 3 applications"
    assert not re.search(r"\d{6}", json.dumps(niks.evidence) + niks.summary)  # no NIK, nor part of one


def test_one_nik_written_two_ways_beside_an_invalid_one_is_not(found: dict[str, list[Indicator]]) -> None:
    assert found[ID["M"]] == []


def test_a_valid_nik_that_contradicts_its_records_date_or_sex(found: dict[str, list[Indicator]]) -> None:
    (contradicts,) = found[ID["C"]]
    assert contradicts.kind == "nik_contradicts"
    # C1 agrees, C4's NIK is not valid, C5 states neither date nor sex: none of them
    assert contradicts.evidence == {"records": ["C2", "C3"], "birth_date": ["C3"], "sex": ["C2"]}
    assert contradicts.summary == "2 applications whose NIK encodes another birth date and sex than the record states"


# ------------------------------------------------------------------------------------------ shared contacts


def test_a_phone_shared_with_two_other_identities(found: dict[str, list[Indicator]]) -> None:
    assert SHARED_WITH == 2
    (shared,) = found[ID["S"]]  # S3's phone: W's (twice) and the unlinked U1's only
    assert shared.kind == "shared_contact"
    assert shared.evidence == {
        "contact": "phone",
        "records": ["S1", "S2"],  # the number written two ways
        "other_identities": 2,
        "other_records": 2,
        "other_record_ids": ["X1", "Y1"],
    }
    assert shared.summary == "phone number shared with 2 other identities (2 applications)"
    assert "812" not in json.dumps(shared.evidence) + shared.summary
    assert kinds(found, "X") == [("shared_contact", ["X1"])] and kinds(found, "Y") == [("shared_contact", ["Y1"])]


def test_a_phone_shared_with_one_other_identity_is_not(found: dict[str, list[Indicator]]) -> None:
    assert found[ID["W"]] == []  # S3 is one other identity, however many records; U1 is linked to none


def test_a_household_is_village_rt_and_rw_whatever_the_street(found: dict[str, list[Indicator]]) -> None:
    (shared,) = found[ID["T"]]
    assert shared.evidence == {
        "contact": "household",
        "records": ["T1"],
        "other_identities": 2,
        "other_records": 2,
        "other_record_ids": ["V1", "Z1"],  # Q1: the same street, RT and RW in another village
    }
    assert shared.summary == "household address (village, RT and RW) shared with 2 other identities (2 applications)"
    assert found[ID["Q"]] == []


def test_records_of_the_identities_asked_for_count_as_others_too(store: Store) -> None:
    """Asked alone or with the identities it shares with, an identity has the same indicators."""
    alone = indicators(store, [ID["X"]], today=TODAY)
    together = indicators(store, [ID["X"], ID["S"], ID["Y"]], today=TODAY)
    assert alone[ID["X"]] == together[ID["X"]] and len(alone[ID["X"]]) == 1


# ---------------------------------------------------------------- nothing from who the applicant is


def _as_someone_else(row: tuple[str | None, ...]) -> tuple[str | None, ...]:
    """The row of an applicant of another sex, born five years later in another province (the NIK to match)."""
    values = dict(zip((*COLUMNS, "identity"), row, strict=True))
    values["sex"] = {"L": "P", "P": "L"}.get(values["sex"] or "", values["sex"])
    if values["birth_date"]:
        born = dt.date.fromisoformat(values["birth_date"])
        values["birth_date"] = born.replace(year=born.year + 5).isoformat()
    values["birth_place"] = "Jakarta" if values["birth_place"] else ""
    digits = (values["nik"] or "").replace(" ", "")
    if digits:
        day = int(digits[6:8])
        day = day - 40 if day > 40 else day + 40  # the other sex
        values["nik"] = f"317401{day:02d}{digits[8:10]}{int(digits[10:12]) + 5:02d}{digits[12:]}"
    return tuple(values.values())


def test_no_indicator_changes_with_sex_age_or_region_of_origin(
    tmp_path: Path, found: dict[str, list[Indicator]]
) -> None:
    others = [_as_someone_else(row) for row in ROWS]
    assert others != ROWS
    with Store(make_store(tmp_path, others), read_only=True) as store:
        assert indicators(store, list(ID.values()), today=TODAY) == found


# ----------------------------------------------------------------------------------------------- history


def test_history_carries_the_identitys_indicators(store: Store, found: dict[str, list[Indicator]]) -> None:
    shown = history(store, "R2")["indicators"]
    # as of the machine's date, after R3 was lodged
    assert [(i["kind"], i["evidence"]["records"]) for i in shown] == [
        ("earlier_refusal", ["R1"]),
        ("earlier_refusal", ["R3"]),
        ("earlier_refusal", ["R5"]),
    ]
    assert shown[0] == {"kind": "earlier_refusal", "summary": found[ID["R"]][0].summary,
                        "evidence": found[ID["R"]][0].evidence}  # fmt: skip
    assert history(store, "U1")["indicators"] == []  # not linked: no identity to reckon


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.console, "_width", 240)


def test_history_command_shows_indicators_as_a_table_and_in_json(db: Path, wide: None) -> None:
    result = runner.invoke(app, ["history", "--db", str(db), "S1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["indicators"] == [
        {
            "kind": "shared_contact",
            "summary": "phone number shared with 2 other identities (2 applications)",
            "evidence": {
                "contact": "phone",
                "records": ["S1", "S2"],
                "other_identities": 2,
                "other_records": 2,
                "other_record_ids": ["X1", "Y1"],
            },
        }
    ]
    shown = runner.invoke(app, ["history", "--db", str(db), "O3"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "Risk indicators" in text and "several_offices" in text and "within 180 days" in text
    quiet = runner.invoke(app, ["history", "--db", str(db), "P1"])
    assert quiet.exit_code == 0 and "Risk indicators" not in quiet.output


# ------------------------------------------------------------------------------- after a real link run


def test_indicators_after_a_real_link_run_match_a_pandas_reckoning(tmp_path: Path) -> None:
    """Differential: every identity `linkage link` makes of 3,000 sample applications, against pandas."""
    import pandas as pd

    from tests.test_trace import linked_sample

    db = linked_sample(tmp_path)
    with Store(db, read_only=True) as store:
        apps = store.df(
            """SELECT m.identity_id, n.record_id, n.office, n.application_date, n.decision, n.nik, n.phone,
                      n.address_village, n.address_rt, n.address_rw,
                      n.nik IS NOT NULL AND (NOT n.nik_dob_agrees OR NOT n.nik_sex_agrees) AS contradicts
               FROM membership m JOIN applications_normalised n USING (record_id)"""
        )
        found = indicators(store, sorted(apps.identity_id.unique()), today=TODAY)
    assert len(found) == apps.identity_id.nunique()
    got = {kind: set() for kind in KINDS}
    for identity, listed in found.items():
        for i in listed:
            if i.kind == "several_offices":
                window = apps[apps.record_id.isin(i.evidence["records"])]
                assert (window.identity_id == identity).all() and window.office.nunique() >= 2
                assert (window.application_date.max() - window.application_date.min()).days <= 180
                got[i.kind].add(identity)
            elif i.kind == "shared_contact":
                got[i.kind].add((identity, i.evidence["contact"], i.evidence["other_identities"]))
            else:
                got[i.kind].add((identity, tuple(i.evidence["records"])))
    dated = pd.to_datetime(apps.application_date)
    refused = apps[(apps.decision == "rejected") & (dated.isna() | (dated <= pd.Timestamp(TODAY)))]
    assert got["earlier_refusal"] == set(zip(refused.identity_id, ((r,) for r in refused.record_id), strict=True))
    niks = apps.dropna(subset=["nik"]).groupby("identity_id")
    several = {i: g for i, g in niks if g.nik.nunique() > 1}
    assert got["several_niks"] == {(i, tuple(sorted(g.record_id))) for i, g in several.items()}
    contradicting = apps[apps.contradicts.fillna(False).astype(bool)].groupby("identity_id").record_id
    assert got["nik_contradicts"] == {(i, tuple(sorted(rs))) for i, rs in contradicting}
    # several offices: an identity has a window exactly when two of its applications at two offices are 180
    # days apart or less (the greedy windows start at each such pair's first application or earlier)
    on_time = apps.dropna(subset=["office", "application_date"])
    on_time = on_time[pd.to_datetime(on_time.application_date) <= pd.Timestamp(TODAY)]
    pairs = on_time.merge(on_time, on="identity_id")
    gap = (pd.to_datetime(pairs.application_date_y) - pd.to_datetime(pairs.application_date_x)).dt.days
    close = pairs[(pairs.office_x != pairs.office_y) & gap.between(0, 180)]
    assert got["several_offices"] == set(close.identity_id)
    # shared contacts: phones and households against every other identity
    keyed = pd.concat([
        apps.dropna(subset=["phone"]).assign(contact="phone", value=lambda f: f.phone),
        apps.dropna(subset=["address_village", "address_rt", "address_rw"]).assign(
            contact="household", value=lambda f: f.address_village + "|" + f.address_rt + "|" + f.address_rw
        ),
    ])  # fmt: skip
    holders = keyed.groupby(["contact", "value"]).identity_id.nunique().rename("holders").reset_index()
    shared = keyed.merge(holders, on=["contact", "value"])
    shared = shared[shared.holders - 1 >= SHARED_WITH]
    expected = set(zip(shared.identity_id, shared.contact, shared.holders - 1, strict=True))
    assert got["shared_contact"] == expected
    assert all(got.values()), "the sample holds every kind (168, 30, 6, 132 and 46): the test must be able to fail"
