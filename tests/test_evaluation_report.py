"""Report formats: the Table-1 Markdown layout, parsing it back, eval-compare."""

from __future__ import annotations

import pytest
from evaluation_data import (
    assert_table_matches,
    load_report,
    run_eval,
)

from dfnet.cli import main
from dfnet.evaluation import (
    markdown_table,
    read_markdown_table,
)


def test_eval_compare_merges_reports_into_one_table(dataset, tmp_path, capsys):
    assert run_eval(dataset, "--method", "telea", "--limit", "3") == 0
    assert run_eval(dataset, "--method", "ns", "--limit", "3") == 0
    out = tmp_path / "compare.md"
    reports = [dataset["out"] / "ns.json", dataset["out"] / "telea.json"]
    assert main(["eval-compare", *map(str, reports), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.splitlines()[0] == "Images at 32×32, short side resized + centre crop; BPE band 3 px."
    assert text.splitlines()[4].startswith("| ns |") and text.splitlines()[5].startswith("| telea |")
    table = read_markdown_table(text)
    for path in reports:
        report = load_report(path)
        assert_table_matches(table[report["method"]["name"]], report)
    assert main(["eval-compare", str(reports[0])]) == 0
    assert "| ns |" in capsys.readouterr().out
    (tmp_path / "other.json").write_text("{}")
    assert main(["eval-compare", str(tmp_path / "other.json")]) == 1


def test_markdown_table_layout_and_missing_values():
    def report(name: str, lpips: float | None) -> dict:
        rows = [
            {"bin": 0, "label": "[0%, 10%)", "count": 3, "l1": 0.0123, "bpe": 0.00456, "fid": None,
             "psnr": 31.234, "ssim": 0.91234, "lpips": lpips},
            {"bin": "all", "label": "all", "count": 3, "l1": 0.0123, "bpe": 0.00456, "fid": 12.345,
             "psnr": 31.234, "ssim": 0.91234, "lpips": lpips},
        ]  # fmt: skip
        if lpips is not None:  # a newer report: with the texture measures
            rows = [{**row, "grad_ratio": 0.4567, "detail": 0.1234, "swd": 0.01234} for row in rows]
        settings = {"num_pairs": 3, "num_images": 3, "images": "i", "num_masks": 1, "masks": "m", "size": 32,
                    "pairing": "cycle", "bpe_band": 3, "fid": "FID skipped: no weights"}  # fmt: skip
        return {"method": {"name": name}, "settings": settings, "bins": rows}

    text = markdown_table([report("x", None), report("y", 0.25)])
    header = text.splitlines()[2]
    assert header.startswith("| Method | L1×100 [0%, 10%) | L1×100 all | BPE×100 [0%, 10%) |")
    assert "LPIPS all" in header
    assert text.splitlines()[4].startswith("| x | 1.23 | 1.23 | 0.46 | 0.46 | – | 12.35 | 31.23 |")
    assert header.endswith(
        "| GradRatio [0%, 10%) | GradRatio all | Detail [0%, 10%) | Detail all | SWD×1000 [0%, 10%) | SWD×1000 all |"
    )
    assert text.splitlines()[4].endswith("| – | – | – | – | – | – |")  # an older report without them
    assert text.splitlines()[5].endswith("| 0.457 | 0.457 | 0.123 | 0.123 | 12.34 | 12.34 |")
    parsed = read_markdown_table(text)
    assert parsed["x"][("lpips", "all")] is None and parsed["y"][("lpips", "all")] == 0.25
    assert parsed["x"][("l1", "[0%, 10%)")] == pytest.approx(0.0123)
    assert "FID skipped: no weights" in text
    assert "LPIPS" not in markdown_table([report("x", None)]).splitlines()[2]
