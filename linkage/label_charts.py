"""Charts of the estimates from labels (issue 14 §2): threshold selection, and precision against recall.

Both are plain SVG drawn here, with no script and no library: the estimates page inlines them and
``linkage evaluate --labels --out DIR`` writes them as pages (``labels_threshold.html``, ``labels_pr.html``) that
open offline. Each estimate is drawn with its 95 % interval as an error bar. They carry figures only: no record
id, name or other value of an application.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from linkage.errors import InputError
from linkage.estimate import DRAWS, Estimate, Interval, estimate
from linkage.store import Store

__all__ = ["FILES", "THRESHOLDS", "estimates_at", "pr_chart", "threshold_chart", "write_charts"]

THRESHOLDS: Final = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
"""The thresholds the threshold-selection chart estimates at."""
FILES: Final = ("labels_threshold.html", "labels_pr.html")
"""The files :func:`write_charts` writes: the threshold chart, then precision against recall."""

_WIDTH, _HEIGHT, _PAD, _TOP = 640, 360, 48, 64  # _TOP: room for the title and the legend
_SERIES: Final = (("precision", "#1d4ed8"), ("recall", "#b45309"), ("F1", "#15803d"))


def estimates_at(
    store: Store, thresholds: Sequence[float] = THRESHOLDS, *, sample_id: str | None = None, draws: int = DRAWS
) -> list[Estimate]:
    """The estimates of one sample at each threshold (clusters re-made from the stored pairs at each).

    Raises:
        InputError: as :func:`linkage.estimate.estimate` (no sample or no labels, an unknown sample).
    """
    return [estimate(store, threshold=t, sample_id=sample_id, draws=draws) for t in thresholds]


def _figures(found: Estimate) -> dict[str, Interval]:
    return {"precision": found.pairwise_precision, "recall": found.pairwise_recall, "F1": found.pairwise_f1}


def _frame(title: str, x_label: str, y_label: str, x_ticks: Sequence[float], body: str) -> str:
    """An SVG of the plot area ``[0, 1]`` high, with its axes, ticks, labels and title around ``body``."""
    top, left, bottom, right = _TOP, _PAD + 8, _HEIGHT - _PAD, _WIDTH - 16
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" '
        f'height="{_HEIGHT}" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{left}" y="20" font-size="14" font-weight="600">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#444"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for tick in x_ticks:
        parts.append(f'<text x="{_x_of(tick, x_ticks):.1f}" y="{bottom + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{_HEIGHT - 8}" text-anchor="middle">{html.escape(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {(top + bottom) / 2}) rotate(-90)" text-anchor="middle">'
                 f"{html.escape(y_label)}</text>")  # fmt: skip
    parts.append(body)
    parts.append("</svg>")
    return "".join(parts)


def _y(value: float) -> float:
    return _HEIGHT - _PAD - value * (_HEIGHT - _PAD - _TOP)


def _x_of(value: float, span: Sequence[float]) -> float:
    low, high = min(span), max(span)
    left, right = _PAD + 8, _WIDTH - 16
    share = 0.5 if high == low else (value - low) / (high - low)
    return left + 12 + share * (right - left - 24)


def _bar(x: float, low: float, high: float, colour: str) -> str:
    """A vertical error bar from ``low`` to ``high`` at ``x``, with caps."""
    y1, y2 = _y(low), _y(high)
    return (f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'
            f'<line x1="{x - 3:.1f}" y1="{y1:.1f}" x2="{x + 3:.1f}" y2="{y1:.1f}" stroke="{colour}"/>'
            f'<line x1="{x - 3:.1f}" y1="{y2:.1f}" x2="{x + 3:.1f}" y2="{y2:.1f}" stroke="{colour}"/>')  # fmt: skip


def threshold_chart(estimates: Sequence[Estimate]) -> str:
    """Estimated precision, recall and F1 against the threshold, each with its 95 % interval (SVG)."""
    ordered = sorted(estimates, key=lambda e: e.threshold)
    ticks = [e.threshold for e in ordered]
    body = []
    for i, (name, colour) in enumerate(_SERIES):
        shift = (i - 1) * 4  # the three series side by side at a threshold, so that their bars do not overlap
        points = [(_x_of(e.threshold, ticks) + shift, _figures(e)[name]) for e in ordered]
        path = " ".join(f"{x:.1f},{_y(v.estimate):.1f}" for x, v in points)
        body.append(f'<g class="series" data-series="{name}"><polyline points="{path}" fill="none" '
                    f'stroke="{colour}" stroke-width="2"/>')  # fmt: skip
        for x, v in points:
            body.append(_bar(x, v.low, v.high, colour))
            body.append(f'<circle cx="{x:.1f}" cy="{_y(v.estimate):.1f}" r="3" fill="{colour}">'
                        f"<title>{name} {v.estimate:.3f} ({v.low:.3f} – {v.high:.3f})</title></circle>")  # fmt: skip
        body.append("</g>")
        body.append(f'<text x="{_PAD + 8 + 90 * i}" y="42" fill="{colour}">■ {name}</text>')
    return _frame("Estimated precision, recall and F1 by threshold (95 % intervals)", "threshold", "estimate",
                  ticks, "".join(body))  # fmt: skip


def pr_chart(estimates: Sequence[Estimate]) -> str:
    """Estimated precision against recall, one point per threshold, both intervals as error bars (SVG)."""
    ordered = sorted(estimates, key=lambda e: e.threshold)
    ticks = (0.0, 0.25, 0.5, 0.75, 1.0)
    colour, body = "#1d4ed8", []
    points = [(_x_of(e.pairwise_recall.estimate, ticks), e) for e in ordered]
    body.append('<polyline points="' + " ".join(f"{x:.1f},{_y(e.pairwise_precision.estimate):.1f}" for x, e in points)
                + f'" fill="none" stroke="{colour}" stroke-opacity="0.4"/>')  # fmt: skip
    for x, e in points:
        p, r = e.pairwise_precision, e.pairwise_recall
        y = _y(p.estimate)
        body.append(_bar(x, p.low, p.high, colour))
        x1, x2 = _x_of(r.low, ticks), _x_of(r.high, ticks)
        body.append(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{colour}"/>')
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>threshold {e.threshold:g}: '
                    f"precision {p.estimate:.3f} ({p.low:.3f} – {p.high:.3f}), recall {r.estimate:.3f} "
                    f"({r.low:.3f} – {r.high:.3f})</title></circle>")  # fmt: skip
        body.append(f'<text x="{x + 5:.1f}" y="{y - 5:.1f}" font-size="10">{e.threshold:g}</text>')
    return _frame("Estimated precision against recall, by threshold (95 % intervals)", "recall", "precision",
                  ticks, "".join(body))  # fmt: skip


def _page(title: str, svg: str, found: Sequence[Estimate]) -> str:
    sample = found[0].sample_id if found else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>Sample {html.escape(sample)}; "
            f"{html.escape(found[0].method) if found else ''}</p>{svg}</body></html>")  # fmt: skip


def write_charts(estimates: Sequence[Estimate], folder: Path) -> tuple[Path, Path]:
    """Write the two charts as pages that open offline (:data:`FILES` in ``folder``); return their paths.

    Raises:
        InputError: no estimates to draw.
    """
    if not estimates:
        raise InputError("no estimates to chart: give at least one threshold")
    folder.mkdir(parents=True, exist_ok=True)
    threshold_path, pr_path = (folder / name for name in FILES)
    threshold_path.write_text(_page("Threshold selection from labels", threshold_chart(estimates), estimates),
                              encoding="utf-8")  # fmt: skip
    pr_path.write_text(_page("Precision and recall from labels", pr_chart(estimates), estimates), encoding="utf-8")
    return threshold_path, pr_path
