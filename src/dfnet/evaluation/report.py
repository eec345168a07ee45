"""The report: per-bin rows, and its JSON, CSV and Markdown (the paper's Table 1) forms, which parse back."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dfnet.baselines import InpaintMethod
from dfnet.evaluation.inputs import RESIZE_WORDS, EvaluationError
from dfnet.files import atomic_write_text
from dfnet.masks import HOLE_RATIO_BINS, bin_label
from dfnet.metrics import MetricTotals

REPORT_FORMAT = "dfnet-eval"
REPORT_VERSION = 1
ALL_BINS = "all"
COMPARISON_NAME = "table.md"


def bin_row(key: int | str, totals: MetricTotals) -> dict:
    """One bin's entry of a report: bounds, label, pair count and every metric."""
    low, high = HOLE_RATIO_BINS[key] if key != ALL_BINS else (0.0, HOLE_RATIO_BINS[-1][1])
    return {
        "bin": key,
        "label": _label(key),
        "low": low,
        "high": high,
        "count": totals.count,
        **totals.compute(),
    }


def bin_rows(totals: dict) -> list[dict]:
    """Every bin's row; with a single paper bin, 'all' is that bin and is not computed twice (FID is costly)."""
    rows = {key: bin_row(key, total) for key, total in totals.items() if key != ALL_BINS}
    if len(rows) == 1:
        (only,) = rows.values()
        rows[ALL_BINS] = {
            **only,
            "bin": ALL_BINS,
            "label": _label(ALL_BINS),
            "low": 0.0,
            "high": HOLE_RATIO_BINS[-1][1],
        }
    else:
        rows[ALL_BINS] = bin_row(ALL_BINS, totals[ALL_BINS])
    return list(rows.values())


def build_report(method: InpaintMethod, settings: dict, totals: dict, seconds: float) -> dict:
    """The JSON-ready report: method, settings and per-bin metrics (raw values, L1/BPE in [0, 1])."""
    from dfnet import __version__

    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "dfnet_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "method": method.describe(),
        "settings": settings,
        "bins": bin_rows(totals),
    }


@dataclass(frozen=True)
class MetricColumn:
    """How a metric is shown in the Markdown table."""

    key: str
    title: str
    scale: float
    decimals: int


COLUMNS = (
    MetricColumn("l1", "L1×100", 100.0, 2),
    MetricColumn("bpe", "BPE×100", 100.0, 2),
    MetricColumn("fid", "FID", 1.0, 2),
    MetricColumn("psnr", "PSNR", 1.0, 2),
    MetricColumn("ssim", "SSIM", 1.0, 4),
    MetricColumn("lpips", "LPIPS", 1.0, 4),
    MetricColumn("grad_ratio", "GradRatio", 1.0, 3),
    MetricColumn("detail", "Detail", 1.0, 3),
    MetricColumn("swd", "SWD×1000", 1000.0, 2),
)
MISSING = "–"
CSV_FIELDS = ("method", "bin", "label", "low", "high", "count", *(c.key for c in COLUMNS))


def write_report(report: dict, paths: dict[str, Path]) -> None:
    """Write one method's report as CSV, Markdown and JSON, each atomically; the JSON, written last,
    marks the method as finished."""
    atomic_write_text(paths["csv"], csv_text([report]))
    atomic_write_text(paths["md"], markdown_table([report]))
    atomic_write_text(paths["json"], json.dumps(_json_safe(report), indent=2) + "\n")


def _json_safe(value):
    """NaN/inf become None so the JSON is standard."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_reports(paths: Iterable[str | os.PathLike], skip_others: bool = False) -> list[dict]:
    """Load report JSON files; other files are refused with a one-line error (or skipped if asked)."""
    reports = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            report, problem = None, f"{path}: not a readable report ({type(err).__name__})"
        else:
            problem = f"{path}: not a dfnet evaluation report"
        if isinstance(report, dict) and report.get("format") == REPORT_FORMAT:
            reports.append(report)
        elif not skip_others:
            raise EvaluationError(problem)
    return reports


def _bin_keys(reports: Sequence[dict]) -> list:
    """Bins present in any report, paper bins in order, then 'all'."""
    keys = {row["bin"] for report in reports for row in report["bins"]}
    return sorted(k for k in keys if k != ALL_BINS) + ([ALL_BINS] if ALL_BINS in keys else [])


def _label(key) -> str:
    return ALL_BINS if key == ALL_BINS else bin_label(key)


def _columns(reports: Sequence[dict]) -> list[MetricColumn]:
    """Every metric column except LPIPS, which appears only when some report has it."""
    has_lpips = any(row.get("lpips") is not None for r in reports for row in r["bins"])
    return [c for c in COLUMNS if c.key != "lpips" or has_lpips]


def _cell(value: float | None, column: MetricColumn) -> str:
    return MISSING if value is None else f"{value * column.scale:.{column.decimals}f}"


def markdown_table(reports: Sequence[dict]) -> str:
    """Methods as rows, each metric's bins as column groups (the paper's Table 1), then pair counts."""
    bins, columns = _bin_keys(reports), _columns(reports)
    header = ["Method", *(f"{c.title} {_label(b)}" for c in columns for b in bins)]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for report in reports:
        by_bin = {row["bin"]: row for row in report["bins"]}
        cells = [_cell(by_bin.get(b, {}).get(c.key), c) for c in columns for b in bins]
        lines.append("| " + " | ".join([report["method"]["name"], *cells]) + " |")
    counts = [
        "| Method | " + " | ".join(f"pairs {_label(b)}" for b in bins) + " |",
        "|---" + "|---:" * len(bins) + "|",
    ]
    for report in reports:
        by_bin = {row["bin"]: row for row in report["bins"]}
        counts.append(
            "| "
            + " | ".join([report["method"]["name"], *(str(by_bin.get(b, {}).get("count", 0)) for b in bins)])
            + " |"
        )
    return "\n".join([_protocol_line(reports), "", *lines, "", *counts, "", *_notes(reports)]) + "\n"


def _protocol_line(reports: Sequence[dict]) -> str:
    """The table's header line: evaluation size, resize mode and BPE band width (every value seen)."""

    def values(describe) -> str:
        return " / ".join(sorted({describe(r["settings"]) for r in reports}))

    sizes = values(lambda s: f"{s['size']}×{s['size']}")
    # reports written before the resize choice existed were all short side + centre crop
    resizes = values(lambda s: RESIZE_WORDS.get(s.get("resize", "resize_crop"), str(s.get("resize"))))
    bands = values(lambda s: f"{s['bpe_band']} px")
    return f"Images at {sizes}, {resizes}; BPE band {bands}."


def _notes(reports: Sequence[dict]) -> list[str]:
    """One line per report: the protocol it was run with, and why a metric is missing."""
    lines = []
    for report in reports:
        s = report["settings"]
        skipped = [v for k in ("fid", "lpips") if isinstance(v := s.get(k), str)]
        lines.append(
            f"- {report['method']['name']}: {s['num_pairs']} pairs, {s['num_images']} images from {s['images']}, "
            f"{s['num_masks']} masks from {s['masks']}{' (inverted: white = known)' if s.get('invert_mask') else ''}, "
            f"{s['size']}×{s['size']} {s.get('resize', 'resize_crop')}, pairing {s['pairing']}, "
            f"BPE band {s['bpe_band']} px" + "".join(f"; {note}" for note in skipped) + _skip_note(s)
        )
    return lines


def _skip_note(settings: dict) -> str:
    """'; 2 pairs skipped (unreadable images), 1 unreadable mask' or '' when nothing was skipped."""
    pairs, masks = settings.get("pairs_skipped", 0), len(settings.get("skipped_masks", []))
    parts = [f"{pairs} pairs skipped (unreadable images)"] if pairs else []
    parts += [f"{masks} unreadable masks left out"] if masks else []
    return "".join(f"; {part}" for part in parts)


def read_markdown_table(text: str) -> dict[str, dict[tuple[str, str], float | None]]:
    """Parse the metric table of :func:`markdown_table` back: method -> {(metric key, bin label): value}.

    Values are unscaled to the JSON's units (L1 and BPE divided by 100).
    """
    by_title = {c.title: c for c in COLUMNS}
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    keys = []
    for title in header[1:]:
        metric, label = title.split(" ", 1)
        keys.append((by_title[metric], label))
    table: dict[str, dict[tuple[str, str], float | None]] = {}
    for line in rows[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == "Method":  # the counts table starts
            break
        table[cells[0]] = {
            (column.key, label): None if cell == MISSING else float(cell) / column.scale
            for (column, label), cell in zip(keys, cells[1:], strict=True)
        }
    return table


def csv_text(reports: Sequence[dict]) -> str:
    """One row per method and bin with the raw values (L1 and BPE in [0, 1]) and the pair count."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        for row in report["bins"]:
            writer.writerow({"method": report["method"]["name"], **{k: row.get(k) for k in CSV_FIELDS[1:]}})
    return buffer.getvalue()


def write_comparison(reports: Sequence[dict], path: str | os.PathLike) -> None:
    """Write one Markdown table comparing all ``reports`` (atomically); nothing when there are none."""
    if reports:
        atomic_write_text(path, markdown_table(reports))
