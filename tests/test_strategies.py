"""The any-resolution strategies as pure functions: hand-checked geometry, fake networks, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from dfnet import strategies
from dfnet.strategies import (
    STRATEGIES,
    Filled,
    Network,
    context_window,
    crop_windows,
    hole_boxes,
    hole_extent,
    hole_regions,
    merge_boxes,
    pad_amounts,
    reflect_pad,
    run_strategy,
    scaled_size,
    shrink_holes,
    strategy_options,
)

FILL = 0.8  # what the fake network paints into holes
FILL_U8 = 204  # round(0.8 * 255)


class FakeNet:
    """Fills holes with a constant colour and records every call's shape (a stand-in for DFNet)."""

    def __init__(self, multiple: int = 16, working_size: int = 32) -> None:
        self.calls: list[tuple[int, ...]] = []
        self.holes_seen: list[np.ndarray] = []
        self.multiple, self.working_size = multiple, working_size

    def run(self, images: np.ndarray, holes: np.ndarray, details: bool) -> Filled:
        m = self.multiple
        assert images.shape[1] % m == 0 and images.shape[2] % m == 0, images.shape
        self.calls.append(images.shape)
        self.holes_seen.append(holes.copy())
        result = np.where(holes[..., None], np.float32(FILL), images).astype(np.float32)
        if not details:
            return Filled(result)
        alpha = np.repeat(holes[..., None].astype(np.float32), 3, axis=3)
        return Filled(result, np.full_like(result, 0.5), alpha)

    @property
    def network(self) -> Network:
        return Network(self.run, self.multiple, self.working_size)


def random_case(seed: int, height: int, width: int, ratio: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8), rng.random((1, height, width)) < ratio


# ---------------------------------------------------------------------------------------------
# Geometry, by hand
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "expected"),
    [(256, (0, 0)), (300, (106, 106)), (517, (125, 126)), (1, (127, 128)), (512, (0, 0))],
)
def test_pad_amounts(size, expected):
    assert pad_amounts(size, 256) == expected


def test_reflect_pad_tiny_images():
    one = np.full((1, 1, 1, 3), 7, dtype=np.uint8)
    assert np.all(reflect_pad(one, (127, 128), (127, 128)) == 7)
    small = np.arange(7 * 5).reshape(1, 7, 5)
    padded = reflect_pad(small, pad_amounts(7, 256), pad_amounts(5, 256))
    top, left = pad_amounts(7, 256)[0], pad_amounts(5, 256)[0]
    assert padded.shape == (1, 256, 256)
    assert np.array_equal(padded[0, top : top + 7, left : left + 5], small[0])
    assert np.array_equal(padded[0, top - 1, left : left + 5], small[0, 1])  # reflect skips the edge row
    assert np.array_equal(padded[0, top + 7, left : left + 5], small[0, 5])


def test_scaled_size():
    assert scaled_size(1000, 600, 512) == (512, 307)
    assert scaled_size(600, 1000, 512) == (307, 512)
    assert scaled_size(300, 200, 512) == (300, 200)  # never enlarged
    assert scaled_size(5000, 3, 512) == (512, 1)  # never zero


def test_shrink_holes_keeps_single_pixel_holes():
    hole = np.zeros((1, 100, 60), dtype=bool)
    hole[0, 51, 33] = True
    small = shrink_holes(hole, 10, 6)
    assert small.sum() == 1 and small[0, 5, 3]


def test_hole_boxes_are_8_connected():
    hole = np.zeros((10, 10), dtype=bool)
    hole[1, 1] = hole[2, 2] = True  # diagonal neighbours: one region
    hole[6:8, 5:9] = True
    assert sorted(hole_boxes(hole)) == [(1, 3, 1, 3), (6, 8, 5, 9)]


def test_hole_regions_label_only_the_holes_extent():
    """A large mask with two small regions: boxes in picture coordinates, labels over the box around the holes,
    and the pixels of chosen regions for a window that reaches past that box."""
    hole = np.zeros((400, 600), dtype=bool)
    hole[100:110, 200:220] = True
    hole[150:152, 300:303] = True
    assert hole_extent(hole) == (100, 152, 200, 303)
    assert hole_extent(np.zeros((5, 5), bool)) is None
    regions = hole_regions(hole)
    assert regions.boxes == [(100, 110, 200, 220), (150, 152, 300, 303)]
    assert regions.labels.shape == (52, 103)
    window = (90, 160, 190, 310)
    first, both = regions.pixels_of([1], window), regions.pixels_of([1, 2], window)
    np.testing.assert_array_equal(first, hole[90:160, 190:310] & (np.arange(400)[90:160, None] < 120))
    np.testing.assert_array_equal(both, hole[90:160, 190:310])
    assert not regions.pixels_of([2], (0, 50, 0, 50)).any()  # a window beside the extent
    assert hole_regions(np.zeros((5, 5), bool)).boxes == []


def test_context_window_by_hand():
    assert context_window((100, 110, 100, 140), (1000, 1000), 2.0, 64) == (65, 145, 80, 160)
    assert context_window((0, 10, 0, 10), (100, 100), 2.0, 64) == (0, 64, 0, 64)  # shifted into the image
    assert context_window((90, 100, 95, 100), (100, 100), 2.0, 64) == (36, 100, 36, 100)
    assert context_window((0, 5, 0, 5), (30, 200), 2.0, 64) == (0, 30, 0, 64)  # clipped to a short side


def test_merge_boxes_by_hand():
    boxes = [(0, 10, 0, 10), (5, 15, 5, 15), (20, 30, 20, 30), (9, 21, 0, 1)]
    assert sorted(merge_boxes(boxes)) == [(0, 21, 0, 15), (20, 30, 20, 30)]
    # touching is not overlapping; a union that grows into a box already kept is merged too
    assert sorted(merge_boxes([(0, 5, 0, 5), (5, 9, 0, 5)])) == [(0, 5, 0, 5), (5, 9, 0, 5)]
    assert merge_boxes([(0, 2, 8, 10), (0, 2, 0, 2), (0, 2, 1, 9)]) == [(0, 2, 0, 10)]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(1, 60),
    width=st.integers(1, 60),
    context=st.floats(1.0, 3.0),
    min_window=st.integers(1, 40),
)
def test_crop_windows_properties(seed, height, width, context, min_window):
    """Windows lie in the image, never overlap, and each hole region lies wholly inside one window."""
    hole = np.random.default_rng(seed).random((height, width)) < 0.03
    windows = crop_windows(hole, context, min_window)
    cover = np.zeros((height, width), dtype=int)
    owner = np.full((height, width), -1)
    for k, (y0, y1, x0, x1) in enumerate(windows):
        assert 0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width
        cover[y0:y1, x0:x1] += 1
        owner[y0:y1, x0:x1] = k
    assert cover.max(initial=0) <= 1
    labels, count = ndimage.label(hole, structure=np.ones((3, 3), dtype=bool))
    for region in range(1, count + 1):
        owners = np.unique(owner[labels == region])
        assert len(owners) == 1 and owners[0] >= 0


# ---------------------------------------------------------------------------------------------
# Strategies with a fake network
# ---------------------------------------------------------------------------------------------
def test_original_pads_to_the_multiple_and_reflects_the_hole():
    net = FakeNet(multiple=256)
    images, holes = random_case(0, 300, 517, ratio=0.0)
    holes[0, 0:5, 100:110] = True  # touches the top border
    done = run_strategy("original", images, holes, net.network)
    assert net.calls == [(1, 512, 768, 3)]
    top, left = pad_amounts(300, 256)[0], pad_amounts(517, 256)[0]
    seen = net.holes_seen[0][0]
    assert seen[top : top + 5, left + 100 : left + 110].all()
    assert seen[top - 4 : top, left + 100 : left + 110].all()  # mirrored into the padding
    assert not seen[top - 5, left + 100 : left + 110].any()
    assert np.all(done.result[holes] == FILL_U8)
    assert np.array_equal(done.result[~holes], images[~holes])


def test_resize_shrinks_to_max_side_and_fills_only_holes():
    net = FakeNet(multiple=16)
    images, holes = random_case(1, 100, 60, ratio=0.0)
    holes[0, 40:70, 20:40] = True
    done = run_strategy("resize", images, holes, net.network, max_side=32, feather=0)
    assert net.calls == [(1, 32, 32, 3)]  # 32x19, padded to 32x32
    assert np.array_equal(done.result[~holes], images[~holes])
    inner = np.zeros_like(holes)
    inner[0, 48:62, 26:34] = True  # far enough from the border that only filled small pixels contribute
    assert np.all(done.result[inner] == FILL_U8)


def test_resize_leaves_small_images_alone():
    net = FakeNet(multiple=16)
    images, holes = random_case(2, 20, 30)
    done = run_strategy("resize", images, holes, net.network, max_side=64)
    assert net.calls == [(1, 32, 32, 3)]
    assert np.all(done.result[holes] == FILL_U8)


def test_resize_fills_a_one_pixel_hole():
    net = FakeNet(multiple=16)
    images = np.zeros((1, 200, 120, 3), dtype=np.uint8)
    holes = np.zeros((1, 200, 120), dtype=bool)
    holes[0, 101, 57] = True
    done = run_strategy("resize", images, holes, net.network, max_side=20, feather=0)
    assert done.result[0, 101, 57].min() > 0  # the hole survived the shrink and got fill
    assert np.count_nonzero(done.result) == 3


def seam_step(result: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute difference across the hole border (hole pixel vs its known 4-neighbours)."""
    img = result.astype(float)
    steps = []
    for axis in (0, 1):
        for shift in (1, -1):
            known_next = np.roll(~hole, shift, axis=axis)
            border = hole & known_next
            steps.append(np.abs(img[border] - np.roll(img, shift, axis=axis)[border]).mean())
    return float(np.mean(steps))


def test_feather_reduces_the_colour_step_of_a_rescaled_fill():
    net = FakeNet(multiple=16)
    images = np.full((1, 256, 256, 3), 51, dtype=np.uint8)
    holes = np.zeros((1, 256, 256), dtype=bool)
    holes[0, 80:180, 60:200] = True
    hard = run_strategy("resize", images, holes, net.network, max_side=32, feather=0)
    soft = run_strategy("resize", images, holes, net.network, max_side=32, feather=24)
    assert seam_step(soft.result[0], holes[0]) < 0.5 * seam_step(hard.result[0], holes[0])
    assert np.array_equal(soft.result[~holes], images[~holes])
    assert np.all(soft.result[0, 125:135, 125:135] == FILL_U8)  # deep inside the hole: untouched fill


def test_crop_runs_one_window_per_distant_hole_never_the_whole_image():
    net = FakeNet(multiple=16, working_size=64)
    images, holes = random_case(3, 400, 600, ratio=0.0)
    holes[0, 20:30, 20:26] = True
    holes[0, 300:340, 500:580] = True
    done = run_strategy("crop", images, holes, net.network)
    # first window 64x64 at native size; the second 160x160 (2 x 80) shrunk to 64x64
    assert net.calls == [(1, 64, 64, 3), (1, 64, 64, 3)]
    assert np.array_equal(done.result[~holes], images[~holes])
    assert np.all(done.result[0, 20:30, 20:26] == FILL_U8)


def test_crop_merges_overlapping_windows():
    net = FakeNet(multiple=16, working_size=64)
    images, holes = random_case(4, 300, 300, ratio=0.0)
    holes[0, 100:110, 100:110] = True
    holes[0, 100:110, 150:160] = True  # its 64-px window overlaps the first one's
    run_strategy("crop", images, holes, net.network, max_side=1000)
    assert len(net.calls) == 1
    assert net.holes_seen[0][0].sum() == 200  # both holes in the one window, at native size


def test_crop_details_outside_windows():
    net = FakeNet(multiple=16, working_size=32)
    images, holes = random_case(5, 200, 200, ratio=0.0)
    holes[0, 10:14, 10:14] = True
    done = run_strategy("crop", images, holes, net.network, details=True)
    assert np.array_equal(done.raw[0, 100:, 100:], images[0, 100:, 100:])  # outside: the input
    assert np.all(done.alpha[0, 100:, 100:] == 0)
    assert np.all(done.raw[0, :32, :32] == 128)  # inside the window: the network's raw (0.5)
    assert np.all(done.alpha[0][holes[0]] == 255)


def test_auto_switches_at_the_trigger():
    small, large = FakeNet(multiple=16, working_size=32), FakeNet(multiple=16, working_size=32)
    images, holes = random_case(6, 100, 120, ratio=0.0)
    holes[0, 50:55, 50:55] = True
    run_strategy("auto", images, holes, small.network, trigger=120)
    run_strategy("auto", images, holes, large.network, trigger=119)
    assert small.calls == [(1, 112, 128, 3)]  # original: the whole image, padded
    assert large.calls == [(1, 32, 32, 3)]  # crop: one window


def test_empty_masks_skip_the_network():
    net = FakeNet()
    images, _ = random_case(7, 20, 20)
    holes = np.zeros((2, 20, 20), dtype=bool)
    holes[1, 5, 5] = True
    images = np.concatenate([images, images])
    done = run_strategy("original", images, holes, net.network, details=True)
    assert [c[0] for c in net.calls] == [1]  # only the image with a hole
    assert np.array_equal(done.result[0], images[0]) and np.all(done.alpha[0] == 0)
    assert done.result[1, 5, 5, 0] == FILL_U8


def test_batches_go_through_the_network_together():
    net = FakeNet()
    images, holes = random_case(8, 40, 40)
    run_strategy("original", np.repeat(images, 3, axis=0), np.repeat(holes, 3, axis=0), net.network)
    assert net.calls == [(3, 48, 48, 3)]


def test_option_errors_name_the_valid_options():
    images, holes = random_case(9, 8, 8)
    with pytest.raises(ValueError, match="no option 'max_sid'.*max_side, feather"):
        run_strategy("resize", images, holes, FakeNet().network, max_sid=3)
    with pytest.raises(ValueError, match="unknown strategy 'tile'"):
        run_strategy("tile", images, holes, FakeNet().network)
    with pytest.raises(ValueError, match="context must be a number in 1..1,000,000, got 0.5"):
        run_strategy("crop", images, holes, FakeNet().network, context=0.5)
    assert strategy_options("auto") == ["trigger", "context", "min_window", "max_side", "feather"]
    assert set(STRATEGIES) == {"auto", "original", "resize", "crop"}


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    ratio=st.floats(0.0, 0.6),
    strategy=st.sampled_from(sorted(STRATEGIES)),
)
def test_known_pixels_and_shape_kept_with_fake_net(seed, height, width, ratio, strategy):
    images, holes = random_case(seed, height, width, ratio)
    options = {"original": {}, "resize": {"max_side": 24}, "crop": {"min_window": 8}, "auto": {"trigger": 32}}
    done = run_strategy(strategy, images, holes, FakeNet().network, details=True, **options[strategy])
    for array in (done.result, done.raw, done.alpha):
        assert array.shape == images.shape and array.dtype == np.uint8
    assert np.array_equal(done.result[~holes], images[~holes])


@pytest.fixture(scope="module")
def tiny_network():
    """A width-1/8, four-layer DFNet (sides: multiples of 16) behind the Network interface."""
    import torch

    from dfnet.inference import Inpainter
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(0)
    config = DFNetConfig(encoder_kernels=(7, 5, 5, 3), fusion_layers=(0, 1, 2, 3), width=0.125)
    network = Inpainter(DFNet(config), device="cpu", precision="fp32", working_size=32).network()
    assert network.size_multiple == 16
    return network


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    strategy=st.sampled_from(sorted(STRATEGIES)),
)
def test_known_pixels_and_shape_kept_with_tiny_model(tiny_network, seed, height, width, strategy):
    images, holes = random_case(seed, height, width, 0.3)
    options = {"original": {}, "resize": {"max_side": 16}, "crop": {"min_window": 8}, "auto": {"trigger": 24}}
    done = run_strategy(strategy, images, holes, tiny_network, **options[strategy])
    assert done.result.shape == images.shape
    assert np.array_equal(done.result[~holes], images[~holes])


def test_match_seam_works_in_windows_with_the_whole_picture_values():
    rng = np.random.default_rng(5)
    image = rng.random((300, 420, 3)).astype(np.float32)
    fill = np.clip(image + 0.3 * rng.random((300, 420, 3)).astype(np.float32), 0, 1)
    hole = np.zeros((300, 420), bool)
    hole[0:30, 10:50] = True  # on the image's edge
    hole[100:160, 200:215] = True
    hole[130:140, 215:290] = True  # joins the previous one: one region
    hole[250:300, 380:420] = True  # in the corner
    hole[40:44, 300:305] = True
    band = 6
    windows = strategies.seam_windows(hole, band)
    assert len(windows) == 4  # the regions near (0, 10) and (40, 300) stay apart; all others are separate
    assert sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in windows) < hole.size / 2
    windowed = strategies.match_seam(image, fill, hole, band)
    whole = strategies.seam_shift(image, fill, hole, band).astype(np.float32)  # as the caller stores it
    assert np.array_equal(windowed[hole], whole[hole])  # the same values as over the whole picture
    assert np.array_equal(windowed[~hole], fill[~hole])  # known pixels: the fill as given
    assert np.abs(windowed - fill)[hole].max() > 0.05  # and it did shift the fill
