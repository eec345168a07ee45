"""`dfnet eval` end to end on images the tests make: pairing, bins, reports, baselines and DFNet."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from dfnet.cli import main
from dfnet.evaluation import (
    CSV_FIELDS,
    EvaluationError,
    MaskEntry,
    PairPlan,
    fit_square,
    list_images,
    load_eval_image,
    load_mask_set,
    markdown_table,
    read_markdown_table,
)
from dfnet.texture_metrics import per_image_detail, per_image_swd

SIZE = 32
# Hole rectangles at 32x32 and the bins their ratios fall in (None: outside the paper's bins).
MASK_RECTS = {
    "a_small": ((4, 10), (4, 12), 0),  # 6 x 8 = 48 px = 4.7 %
    "b_medium": ((8, 20), (6, 16), 1),  # 12 x 10 = 120 px = 11.7 %
    "c_large": ((2, 30), (3, 15), 3),  # 28 x 12 = 336 px = 32.8 %
    "d_huge": ((0, 32), (0, 20), None),  # 640 px = 62.5 %
    "e_empty": ((0, 0), (0, 0), None),
}


def _picture(seed: int, width: int = SIZE, height: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 7, y * 5, (x + y) * 3], axis=2) + rng.integers(0, 40, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _mask(rect: tuple) -> np.ndarray:
    (y0, y1), (x0, x1), _ = rect
    hole = np.zeros((SIZE, SIZE), np.uint8)
    hole[y0:y1, x0:x1] = 255
    return hole


@pytest.fixture
def dataset(tmp_path: Path) -> dict[str, Path]:
    """Five 32x32 images (one in a sub-folder), the masks of MASK_RECTS and an index.csv of three of them."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    (images / "sub").mkdir(parents=True)
    masks.mkdir()
    for i, name in enumerate(["b.png", "a.png", "sub/c.png", "d.jpg", "e.png"]):
        Image.fromarray(_picture(i)).save(images / name, quality=95)
    for name, rect in MASK_RECTS.items():
        Image.fromarray(_mask(rect)).save(masks / f"{name}.png")
    rows = ["file,hole_ratio,bin"] + [f"masks/{n}.png,0,0" for n in ("b_medium", "a_small", "c_large")]
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")  # paths are relative to the index
    return {"images": images, "masks": masks, "out": tmp_path / "report"}


def _eval(data: dict[str, Path], *extra: str) -> int:
    args = ["eval", "--images", str(data["images"]), "--masks", str(data["masks"]), "--out", str(data["out"])]
    return main([*args, "--size", str(SIZE), "--workers", "0", "--quiet", "--batch-size", "2", *extra])


# ---------------------------------------------------------------------------------------------
# Inputs and pairing
# ---------------------------------------------------------------------------------------------
def test_images_are_sorted_by_relative_path(dataset):
    names = [p.relative_to(dataset["images"]).as_posix() for p in list_images(dataset["images"])]
    assert names == ["a.png", "b.png", "d.jpg", "e.png", "sub/c.png"]


def test_fit_square_resizes_the_short_side_and_crops_the_centre():
    picture = np.zeros((40, 80, 3), np.uint8)
    picture[:, 20:60] = 255  # the centre square of the 40x80 picture is white
    fitted = np.asarray(fit_square(Image.fromarray(picture), 20, Image.Resampling.NEAREST))
    assert fitted.shape == (20, 20, 3) and (fitted == 255).all()
    same = Image.fromarray(_picture(0))
    assert fit_square(same, SIZE, Image.Resampling.BICUBIC) is same


def test_masks_get_their_measured_ratio_and_bin(dataset):
    entries = {e.path.stem: e for e in load_mask_set(dataset["masks"], SIZE)}
    assert set(entries) == set(MASK_RECTS)
    for name, rect in MASK_RECTS.items():
        (y0, y1), (x0, x1), expected_bin = rect
        assert entries[name].hole_ratio == pytest.approx((y1 - y0) * (x1 - x0) / SIZE**2)
        assert entries[name].bin == expected_bin


def test_mask_index_lists_files_in_its_order(dataset):
    index = dataset["masks"].parent / "index.csv"
    entries = load_mask_set(index, SIZE)
    assert [e.path.stem for e in entries] == ["b_medium", "a_small", "c_large"]
    assert [e.bin for e in entries] == [1, 0, 3]  # measured at the evaluation size, not read from the file
    folder = dataset["masks"].parent / "indexed"
    folder.mkdir()
    (folder / "index.csv").write_text(index.read_text().replace("masks/", "../masks/"))
    (folder / "stray.png").write_bytes((dataset["masks"] / "d_huge.png").read_bytes())
    assert [e.path.stem for e in load_mask_set(folder, SIZE)] == ["b_medium", "a_small", "c_large"]


def test_masks_are_resized_with_the_images(dataset):
    # a 64x64 mask with the same rectangle scaled by 2 measures the same ratio at 32x32
    Image.fromarray(np.kron(_mask(MASK_RECTS["b_medium"]), np.ones((2, 2), np.uint8))).save(
        dataset["masks"] / "f_big.png"
    )
    entries = {e.path.stem: e for e in load_mask_set(dataset["masks"], SIZE)}
    assert entries["f_big"].hole_ratio == entries["b_medium"].hole_ratio


def _entries(*bins) -> list[MaskEntry]:
    return [MaskEntry(Path(f"m{i}.png"), 0.0, b) for i, b in enumerate(bins)]


def test_cycle_pairing_assigns_mask_i_mod_m_to_image_i_skipping_unusable_masks():
    plan = PairPlan(5, _entries(0, None, 2, 1), "cycle")
    assert list(plan) == [(0, 0), (1, 2), (2, 3), (3, 0), (4, 2)]


def test_every_bin_pairing_shows_every_image_in_every_bin():
    plan = PairPlan(3, _entries(1, 0, 1, None, 0, 1), "every-bin")
    assert plan.bins == [0, 1]
    # bin 0 masks: 1, 4; bin 1 masks: 0, 2, 5; image i takes the (i mod M_b)-th mask of each bin
    assert list(plan) == [(0, 1), (0, 0), (1, 4), (1, 2), (2, 1), (2, 5)]


def test_all_pairing_is_every_image_with_every_usable_mask():
    plan = PairPlan(2, _entries(0, None, 4), "all")
    assert list(plan) == [(0, 0), (0, 2), (1, 0), (1, 2)]
    with pytest.raises(IndexError):
        plan[4]


def test_pairing_needs_usable_masks_and_a_known_mode():
    with pytest.raises(EvaluationError, match="bins"):
        PairPlan(3, _entries(None, None))
    with pytest.raises(EvaluationError, match="pairing"):
        PairPlan(3, _entries(0), "random")


# ---------------------------------------------------------------------------------------------
# End to end through the CLI
# ---------------------------------------------------------------------------------------------
def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _rows(report: dict) -> dict:
    return {row["bin"]: row for row in report["bins"]}


def test_telea_and_ns_end_to_end_with_saved_composites(dataset):
    assert _eval(dataset, "--method", "telea", "--save-images") == 0
    assert _eval(dataset, "--method", "ns", "--pairing", "every-bin") == 0
    telea, ns = _load(dataset["out"] / "telea.json"), _load(dataset["out"] / "ns.json")

    # cycle: sorted images a, b, d, e, sub/c get the usable masks a_small, b_medium, c_large in turn
    assert {k: r["count"] for k, r in _rows(telea).items()} == {0: 2, 1: 2, 3: 1, "all": 5}
    assert telea["settings"]["masks_outside_bins"] == 2
    assert telea["settings"]["fid"].startswith("FID skipped")
    assert {k: r["count"] for k, r in _rows(ns).items()} == {0: 5, 1: 5, 3: 5, "all": 15}

    # the report's L1 and PSNR equal what the saved composites give, and known pixels are untouched
    images = list_images(dataset["images"])
    masks = [m for m in load_mask_set(dataset["masks"], SIZE) if m.bin is not None]
    composites = sorted((dataset["out"] / "telea" / "results").glob("*.png"))
    assert len(composites) == 5 and len(list((dataset["out"] / "telea" / "grids").glob("*.png"))) == 5
    l1_by_bin: dict = {}
    gradients_by_bin: dict = {}  # bin -> [summed hole gradient of results, of truths]
    texture_by_bin: dict = {}  # bin -> per-image (detail, swd)
    for k, path in enumerate(composites):
        truth = np.asarray(Image.open(images[k]).convert("RGB")).astype(np.float64) / 255
        result = np.asarray(Image.open(path)).astype(np.float64) / 255
        hole = np.asarray(Image.open(masks[k % 3].path)) > 127
        assert np.array_equal(result[~hole], truth[~hole])
        assert not np.array_equal(result[hole], truth[hole])
        b = masks[k % 3].bin
        l1_by_bin.setdefault(b, []).append(np.abs(result - truth).mean())
        sums = gradients_by_bin.setdefault(b, [0.0, 0.0])
        sums[0] += _hole_gradient_sum(result, hole)
        sums[1] += _hole_gradient_sum(truth, hole)
        as_batch = [torch.from_numpy(x).permute(2, 0, 1)[None].float() for x in (result, truth)]
        hole_batch = torch.from_numpy(hole)[None, None]
        texture_by_bin.setdefault(b, []).append(
            [per_image_detail(*as_batch, hole_batch).item(), per_image_swd(*as_batch, hole_batch).item()]
        )
    for b, values in l1_by_bin.items():
        assert _rows(telea)[b]["l1"] == pytest.approx(np.mean(values), abs=1e-6)
        assert _rows(telea)[b]["grad_ratio"] == pytest.approx(gradients_by_bin[b][0] / gradients_by_bin[b][1])
        detail, swd = np.mean(texture_by_bin[b], axis=0)
        assert _rows(telea)[b]["detail"] == pytest.approx(detail, abs=1e-5)
        assert _rows(telea)[b]["swd"] == pytest.approx(swd, abs=1e-6)
    grid = np.asarray(Image.open(dataset["out"] / "telea" / "grids" / composites[0].name))
    assert grid.shape == (SIZE, 3 * SIZE, 3)

    # the comparison table holds both methods and parses back to the JSON numbers
    table = read_markdown_table((dataset["out"] / "table.md").read_text())
    assert set(table) == {"telea", "ns"}
    for report in (telea, ns):
        _assert_table_matches(table[report["method"]["name"]], report)


def _hole_gradient_sum(rgb: np.ndarray, hole: np.ndarray) -> float:
    """Sum over hole pixels of the BT.601 luma's forward-difference gradient magnitude (0 past the edge)."""
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    dx, dy = np.zeros_like(luma), np.zeros_like(luma)
    dx[:, :-1], dy[:-1] = np.diff(luma, axis=1), np.diff(luma, axis=0)
    return float(np.hypot(dx, dy)[hole].sum())


def _assert_table_matches(parsed: dict, report: dict) -> None:
    """Every cell equals the JSON value to the printed precision (missing values stay missing)."""
    decimals = {"l1": 2, "bpe": 2, "fid": 2, "psnr": 2, "ssim": 4, "lpips": 4, "grad_ratio": 3, "detail": 3}
    decimals["swd"] = 2
    scale = {"l1": 100, "bpe": 100, "swd": 1000}
    checked = 0
    for row in report["bins"]:
        for key, places in decimals.items():
            if (key, row["label"]) not in parsed:
                assert key == "lpips"  # the LPIPS columns only appear when some report has LPIPS
                continue
            value, shown = row[key], parsed[(key, row["label"])]
            if value is None:
                assert shown is None
            else:
                unit = 10.0**-places / scale.get(key, 1)
                assert shown == pytest.approx(value, abs=unit / 2 + 1e-12)
            checked += 1
    assert checked >= 8 * len(report["bins"])


@pytest.mark.skipif(not hasattr(cv2, "xphoto"), reason="needs opencv-contrib (cv2.xphoto)")
def test_texture_synthesising_baselines_end_to_end_with_texture_columns(dataset):
    for method in ("shiftmap", "fsr-fast"):
        assert _eval(dataset, "--method", method, "--limit", "3") == 0
    text = (dataset["out"] / "table.md").read_text()
    header = text.splitlines()[2]
    for title in ("GradRatio [0%, 10%)", "Detail all", "SWD×1000 all"):
        assert title in header
    table = read_markdown_table(text)
    assert set(table) == {"shiftmap", "fsr-fast"}
    for name in table:
        report = _load(dataset["out"] / f"{name}.json")
        assert report["method"]["algorithm"].startswith("cv2.xphoto.inpaint")
        _assert_table_matches(table[name], report)
        assert all(row["detail"] >= 0 and row["swd"] >= 0 and row["grad_ratio"] > 0 for row in report["bins"])
    csv_header = (dataset["out"] / "shiftmap.csv").read_text().splitlines()[0]
    assert csv_header == ",".join(CSV_FIELDS) and csv_header.endswith("lpips,grad_ratio,detail,swd")


def test_eval_compare_merges_reports_into_one_table(dataset, tmp_path, capsys):
    assert _eval(dataset, "--method", "telea", "--limit", "3") == 0
    assert _eval(dataset, "--method", "ns", "--limit", "3") == 0
    out = tmp_path / "compare.md"
    reports = [dataset["out"] / "ns.json", dataset["out"] / "telea.json"]
    assert main(["eval-compare", *map(str, reports), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.splitlines()[0] == "Images at 32×32, short side resized + centre crop; BPE band 3 px."
    assert text.splitlines()[4].startswith("| ns |") and text.splitlines()[5].startswith("| telea |")
    table = read_markdown_table(text)
    for path in reports:
        report = _load(path)
        _assert_table_matches(table[report["method"]["name"]], report)
    assert main(["eval-compare", str(reports[0])]) == 0
    assert "| ns |" in capsys.readouterr().out
    (tmp_path / "other.json").write_text("{}")
    assert main(["eval-compare", str(tmp_path / "other.json")]) == 1


def test_existing_reports_are_skipped_unless_forced(dataset):
    assert _eval(dataset, "--method", "telea", "--limit", "2") == 0
    first = (dataset["out"] / "telea.json").read_text()
    assert _eval(dataset, "--method", "telea") == 0  # skipped: still the 2-pair report
    assert (dataset["out"] / "telea.json").read_text() == first
    assert _eval(dataset, "--method", "telea", "--force") == 0
    assert _load(dataset["out"] / "telea.json")["settings"]["num_pairs"] == 5
    assert _eval(dataset, "--method", "ns", "--name", "ns-radius3", "--limit", "1") == 0
    assert _load(dataset["out"] / "ns-radius3.json")["method"]["algorithm"] == "cv2.inpaint ns"


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


def test_eval_reports_user_errors_in_one_line(dataset, capsys):
    assert _eval(dataset, "--method", "dfnet") == 1
    assert "needs --model" in capsys.readouterr().err
    empty = dataset["out"].parent / "no_masks"
    empty.mkdir()
    Image.fromarray(_mask(MASK_RECTS["d_huge"])).save(empty / "huge.png")
    assert main(["eval", "--images", str(dataset["images"]), "--masks", str(empty), "--out", str(dataset["out"]),
                 "--method", "telea", "--size", str(SIZE), "--quiet", "--workers", "0"]) == 1  # fmt: skip
    assert "no mask has a hole ratio" in capsys.readouterr().err
    assert (
        _eval(dataset, "--method", "telea", "--fid-weights", str(dataset["out"].parent / "absent.pth")) == 1
    )
    assert "--fid-weights " in (err := capsys.readouterr().err) and "absent.pth: no such file" in err


# ---------------------------------------------------------------------------------------------
# DFNet and FID in the loop
# ---------------------------------------------------------------------------------------------
def test_dfnet_method_end_to_end(tmp_path, tiny_model):
    from dfnet.checkpoint import save_model

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(2):
        Image.fromarray(_picture(i, 300, 256)).save(images / f"{i}.png")  # 300x256: resized + cropped
    hole = np.zeros((256, 256), np.uint8)
    hole[60:120, 40:160] = 255  # 11 %
    Image.fromarray(hole).save(masks / "m.png")
    save_model(tiny_model, tmp_path / "tiny.safetensors")
    data = {"images": images, "masks": masks, "out": tmp_path / "out"}
    args = ["eval", "--images", str(images), "--masks", str(masks), "--out", str(data["out"]), "--quiet"]
    common = ["--workers", "0", "--device", "cpu", "--save-images", "1"]
    assert main([*args, *common, "--method", "dfnet", "--model", str(tmp_path / "tiny.safetensors"), "--size", "256",
                 "--name", "tiny"]) == 0  # fmt: skip
    report = _load(data["out"] / "tiny.json")
    assert report["method"]["config"]["width"] == 0.125
    assert {k: r["count"] for k, r in _rows(report).items()} == {1: 2, "all": 2}
    assert 0 < _rows(report)[1]["l1"] < 0.11  # errors only inside an 11 % hole
    result = np.asarray(Image.open(next((data["out"] / "tiny" / "results").glob("*.png"))))
    truth = np.asarray(Image.open(images / "0.png"))[:, 22:278]  # centre crop of the 300-wide picture
    assert np.array_equal(result[hole == 0], truth[hole == 0])
    assert main([*args, *common, "--method", "dfnet", "--model", str(tmp_path / "tiny.safetensors"),
                 "--size", "200"]) == 1  # fmt: skip


@pytest.mark.slow
def test_fid_is_computed_with_a_given_weight_file(dataset, tmp_path):
    from dfnet.inception import FIDInceptionV3

    torch.manual_seed(0)
    weights = tmp_path / "inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    (dataset["masks"] / "one.csv").write_text(
        "file\na_small.png\n"
    )  # one bin: FID of 2048-d features is costly
    dataset = {**dataset, "masks": dataset["masks"] / "one.csv"}
    assert _eval(dataset, "--method", "telea", "--fid-weights", str(weights)) == 0
    report = _load(dataset["out"] / "telea.json")
    assert report["settings"]["fid"]["weights"] == str(weights)
    rows = _rows(report)
    assert rows[0]["count"] == 5 and rows[0]["fid"] > 0 and rows["all"]["fid"] == rows[0]["fid"]
    assert "–" not in (dataset["out"] / "telea.md").read_text().splitlines()[2]


def test_invert_mask_and_stretch_resize(dataset, tmp_path):
    # the same rectangles saved white = known, at 64x32: stretched to 32x32 they are the originals
    known = tmp_path / "known_masks"
    known.mkdir()
    for name, rect in MASK_RECTS.items():
        wide = np.repeat(_mask(rect), 2, axis=1)
        Image.fromarray(255 - wide).save(known / f"{name}.png")
    plain = {e.path.stem: e for e in load_mask_set(dataset["masks"], SIZE)}
    inverted = {e.path.stem: e for e in load_mask_set(known, SIZE, resize="resize", invert=True)}
    assert {k: (e.hole_ratio, e.bin) for k, e in inverted.items()} == {
        k: (e.hole_ratio, e.bin) for k, e in plain.items()
    }
    wrong = {e.path.stem: e.bin for e in load_mask_set(known, SIZE, resize="resize")}
    assert wrong["a_small"] is None and wrong["e_empty"] is None  # 95 % and 100 % "hole": dropped
    # a 64x32 image is stretched, not cropped: its right half lands in columns 16-31
    stretch_dir = tmp_path / "wide"
    stretch_dir.mkdir()
    wide_image = np.zeros((32, 64, 3), np.uint8)
    wide_image[:, 32:] = 200
    Image.fromarray(wide_image).save(stretch_dir / "w.png")
    loaded = load_eval_image(stretch_dir / "w.png", SIZE, "resize")
    assert loaded.shape == (SIZE, SIZE, 3) and loaded[:, :15].max() == 0 and loaded[:, 17:].min() == 200
    assert load_eval_image(stretch_dir / "w.png", SIZE)[:, :, 0].tolist() == [[0] * 16 + [200] * 16] * 32
    data = {**dataset, "masks": known}
    assert _eval(data, "--method", "telea", "--invert-mask", "--resize", "resize") == 0
    report = _load(dataset["out"] / "telea.json")
    assert report["settings"]["resize"] == "resize" and report["settings"]["invert_mask"] is True
    assert {k: r["count"] for k, r in _rows(report).items()} == {0: 2, 1: 2, 3: 1, "all": 5}
    text = (dataset["out"] / "table.md").read_text()
    assert text.splitlines()[0] == "Images at 32×32, stretched (aspect not kept); BPE band 3 px."
    assert "(inverted: white = known), 32×32 resize" in text
