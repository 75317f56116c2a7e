"""The built wheel carries the default model spec and settings: a wheel install needs no checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from linkage.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_configs_and_finds_the_default_spec(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("linkage", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=source, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("linkage-*.whl")
    unpacked = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(unpacked)
    shipped = {p.name for p in (ROOT / "configs").glob("*.toml")}
    assert {f"linkage/configs/{name}" for name in shipped} <= names
    # Import the unpacked wheel, not the checkout: the default spec must resolve inside it.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import linkage.spec as m; "
        "print(m.DEFAULT_SPEC); print(m.load_spec().threshold)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(unpacked)], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.split()
    assert Path(out[0]) == unpacked / "linkage" / "configs" / "model.toml"
    assert float(out[1]) == load_spec(ROOT / "configs" / "model.toml").threshold
