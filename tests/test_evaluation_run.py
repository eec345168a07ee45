"""`dfnet eval` end to end: baselines, DFNet, FID, reruns, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evaluation_data import (
    MASK_RECTS,
    SIZE,
    assert_table_matches,
    load_report,
    mask_picture,
    picture,
    rows_by_bin,
    run_eval,
)
from PIL import Image

from dfnet.cli import main
from dfnet.evaluation import (
    CSV_FIELDS,
    list_images,
    load_eval_image,
    load_mask_set,
    read_markdown_table,
)
from dfnet.texture_metrics import per_image_detail, per_image_swd


def test_telea_and_ns_end_to_end_with_saved_composites(dataset):
    assert run_eval(dataset, "--method", "telea", "--save-images") == 0
    assert run_eval(dataset, "--method", "ns", "--pairing", "every-bin") == 0
    telea, ns = load_report(dataset["out"] / "telea.json"), load_report(dataset["out"] / "ns.json")

    # cycle: sorted images a, b, d, e, sub/c get the usable masks a_small, b_medium, c_large in turn
    assert {k: r["count"] for k, r in rows_by_bin(telea).items()} == {0: 2, 1: 2, 3: 1, "all": 5}
    assert telea["settings"]["masks_outside_bins"] == 2
    assert telea["settings"]["fid"].startswith("FID skipped")
    assert {k: r["count"] for k, r in rows_by_bin(ns).items()} == {0: 5, 1: 5, 3: 5, "all": 15}

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
        assert rows_by_bin(telea)[b]["l1"] == pytest.approx(np.mean(values), abs=1e-6)
        assert rows_by_bin(telea)[b]["grad_ratio"] == pytest.approx(
            gradients_by_bin[b][0] / gradients_by_bin[b][1]
        )
        detail, swd = np.mean(texture_by_bin[b], axis=0)
        assert rows_by_bin(telea)[b]["detail"] == pytest.approx(detail, abs=1e-5)
        assert rows_by_bin(telea)[b]["swd"] == pytest.approx(swd, abs=1e-6)
    grid = np.asarray(Image.open(dataset["out"] / "telea" / "grids" / composites[0].name))
    assert grid.shape == (SIZE, 3 * SIZE, 3)

    # the comparison table holds both methods and parses back to the JSON numbers
    table = read_markdown_table((dataset["out"] / "table.md").read_text())
    assert set(table) == {"telea", "ns"}
    for report in (telea, ns):
        assert_table_matches(table[report["method"]["name"]], report)


def _hole_gradient_sum(rgb: np.ndarray, hole: np.ndarray) -> float:
    """Sum over hole pixels of the BT.601 luma's forward-difference gradient magnitude (0 past the edge)."""
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    dx, dy = np.zeros_like(luma), np.zeros_like(luma)
    dx[:, :-1], dy[:-1] = np.diff(luma, axis=1), np.diff(luma, axis=0)
    return float(np.hypot(dx, dy)[hole].sum())


def test_texture_synthesising_baselines_end_to_end_with_texture_columns(dataset):
    for method in ("shiftmap", "fsr-fast"):
        assert run_eval(dataset, "--method", method, "--limit", "3") == 0
    text = (dataset["out"] / "table.md").read_text()
    header = text.splitlines()[2]
    for title in ("GradRatio [0%, 10%)", "Detail all", "SWD×1000 all"):
        assert title in header
    table = read_markdown_table(text)
    assert set(table) == {"shiftmap", "fsr-fast"}
    for name in table:
        report = load_report(dataset["out"] / f"{name}.json")
        assert report["method"]["algorithm"].startswith("cv2.xphoto.inpaint")
        assert_table_matches(table[name], report)
        assert all(row["detail"] >= 0 and row["swd"] >= 0 and row["grad_ratio"] > 0 for row in report["bins"])
    csv_header = (dataset["out"] / "shiftmap.csv").read_text().splitlines()[0]
    assert csv_header == ",".join(CSV_FIELDS) and csv_header.endswith("lpips,grad_ratio,detail,swd")


def test_existing_reports_are_skipped_unless_forced(dataset):
    assert run_eval(dataset, "--method", "telea", "--limit", "2") == 0
    first = (dataset["out"] / "telea.json").read_text()
    assert run_eval(dataset, "--method", "telea") == 0  # skipped: still the 2-pair report
    assert (dataset["out"] / "telea.json").read_text() == first
    assert run_eval(dataset, "--method", "telea", "--force") == 0
    assert load_report(dataset["out"] / "telea.json")["settings"]["num_pairs"] == 5
    assert run_eval(dataset, "--method", "ns", "--name", "ns-radius3", "--limit", "1") == 0
    assert load_report(dataset["out"] / "ns-radius3.json")["method"]["algorithm"] == "cv2.inpaint ns"


def test_eval_reports_user_errors_in_one_line(dataset, capsys):
    assert run_eval(dataset, "--method", "dfnet") == 1
    assert "needs --model" in capsys.readouterr().err
    empty = dataset["out"].parent / "no_masks"
    empty.mkdir()
    Image.fromarray(mask_picture(MASK_RECTS["d_huge"])).save(empty / "huge.png")
    assert main(["eval", "--images", str(dataset["images"]), "--masks", str(empty), "--out", str(dataset["out"]),
                 "--method", "telea", "--size", str(SIZE), "--quiet", "--workers", "0"]) == 1  # fmt: skip
    assert "no mask has a hole ratio" in capsys.readouterr().err
    assert (
        run_eval(dataset, "--method", "telea", "--fid-weights", str(dataset["out"].parent / "absent.pth"))
        == 1
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
        Image.fromarray(picture(i, 300, 256)).save(images / f"{i}.png")  # 300x256: resized + cropped
    hole = np.zeros((256, 256), np.uint8)
    hole[60:120, 40:160] = 255  # 11 %
    Image.fromarray(hole).save(masks / "m.png")
    save_model(tiny_model, tmp_path / "tiny.safetensors")
    data = {"images": images, "masks": masks, "out": tmp_path / "out"}
    args = ["eval", "--images", str(images), "--masks", str(masks), "--out", str(data["out"]), "--quiet"]
    common = ["--workers", "0", "--device", "cpu", "--save-images", "1"]
    assert main([*args, *common, "--method", "dfnet", "--model", str(tmp_path / "tiny.safetensors"), "--size", "256",
                 "--name", "tiny"]) == 0  # fmt: skip
    report = load_report(data["out"] / "tiny.json")
    assert report["method"]["config"]["width"] == 0.125
    assert {k: r["count"] for k, r in rows_by_bin(report).items()} == {1: 2, "all": 2}
    assert 0 < rows_by_bin(report)[1]["l1"] < 0.11  # errors only inside an 11 % hole
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
    assert run_eval(dataset, "--method", "telea", "--fid-weights", str(weights)) == 0
    report = load_report(dataset["out"] / "telea.json")
    assert report["settings"]["fid"]["weights"] == str(weights)
    rows = rows_by_bin(report)
    assert rows[0]["count"] == 5 and rows[0]["fid"] > 0 and rows["all"]["fid"] == rows[0]["fid"]
    assert "–" not in (dataset["out"] / "telea.md").read_text().splitlines()[2]


def test_invert_mask_and_stretch_resize(dataset, tmp_path):
    # the same rectangles saved white = known, at 64x32: stretched to 32x32 they are the originals
    known = tmp_path / "known_masks"
    known.mkdir()
    for name, rect in MASK_RECTS.items():
        wide = np.repeat(mask_picture(rect), 2, axis=1)
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
    assert run_eval(data, "--method", "telea", "--invert-mask", "--resize", "resize") == 0
    report = load_report(dataset["out"] / "telea.json")
    assert report["settings"]["resize"] == "resize" and report["settings"]["invert_mask"] is True
    assert {k: r["count"] for k, r in rows_by_bin(report).items()} == {0: 2, 1: 2, 3: 1, "all": 5}
    text = (dataset["out"] / "table.md").read_text()
    assert text.splitlines()[0] == "Images at 32×32, stretched (aspect not kept); BPE band 3 px."
    assert "(inverted: white = known), 32×32 resize" in text
