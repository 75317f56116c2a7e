"""Write one benchmark's section of ``benchmarks/RESULTS.md``, leaving the other sections alone."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEAD = (
    "# Benchmark results\n\n"
    "Each section is written by the script named in it; figures are measured, never edited by hand.\n"
)


def write_section(key: str, title: str, command: str, body: str) -> None:
    """Replace (or add) the section marked ``key`` with a title, the exact command, a date and the body."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEAD
    block = (
        f"<!-- {key} -->\n## {title}\n\nCommand: {command}\n\nMeasured {dt.date.today().isoformat()}.\n\n"
        f"{body}\n<!-- /{key} -->\n"
    )
    pattern = re.compile(rf"<!-- {key} -->.*?<!-- /{key} -->\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text, encoding="utf-8")
