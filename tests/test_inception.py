"""dfnet.inception: the FID InceptionV3's layout, its input scaling by hand, and its weight file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from dfnet.inception import (
    FEATURE_DIM,
    FID_INPUT_SIZE,
    FID_WEIGHTS_NAME,
    BasicConv,
    FIDInceptionV3,
    FIDWeightsError,
    check_fid_state_dict,
    load_fid_inception,
)

# The published InceptionV3 (Szegedy et al. 2016, Table 1; the FID port keeps it): the output of every named
# stage for a 299x299 input, as (channels, side).
PUBLISHED_GRID = {
    "Conv2d_1a_3x3": (32, 149),
    "Conv2d_2a_3x3": (32, 147),
    "Conv2d_2b_3x3": (64, 147),
    "Conv2d_3b_1x1": (80, 73),
    "Conv2d_4a_3x3": (192, 71),
    "Mixed_5b": (256, 35),
    "Mixed_5c": (288, 35),
    "Mixed_5d": (288, 35),
    "Mixed_6a": (768, 17),
    "Mixed_6b": (768, 17),
    "Mixed_6c": (768, 17),
    "Mixed_6d": (768, 17),
    "Mixed_6e": (768, 17),
    "Mixed_7a": (1280, 8),
    "Mixed_7b": (2048, 8),
    "Mixed_7c": (2048, 8),
}


@pytest.fixture(scope="module")
def network() -> FIDInceptionV3:
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_every_stage_has_the_published_width_and_grid_at_299(network: FIDInceptionV3) -> None:
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module: nn.Module, _args: tuple, out: torch.Tensor) -> None:
            shapes[name] = tuple(out.shape)

        return hook

    handles = [getattr(network, name).register_forward_hook(record(name)) for name in PUBLISHED_GRID]
    try:
        with torch.inference_mode():
            features = network(torch.rand(1, 3, FID_INPUT_SIZE, FID_INPUT_SIZE))
    finally:
        for handle in handles:
            handle.remove()
    assert shapes == {name: (1, c, side, side) for name, (c, side) in PUBLISHED_GRID.items()}
    assert features.shape == (1, FEATURE_DIM) and network.fc.out_features == 1008


def test_the_stem_convolutions_have_the_published_strides_and_padding(network: FIDInceptionV3) -> None:
    stem = {
        "Conv2d_1a_3x3": ((3, 3), (2, 2), (0, 0)),
        "Conv2d_2a_3x3": ((3, 3), (1, 1), (0, 0)),
        "Conv2d_2b_3x3": ((3, 3), (1, 1), (1, 1)),
        "Conv2d_3b_1x1": ((1, 1), (1, 1), (0, 0)),
        "Conv2d_4a_3x3": ((3, 3), (1, 1), (0, 0)),
    }
    for name, (kernel, stride, padding) in stem.items():
        conv = getattr(network, name).conv
        assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == (kernel, stride, padding, None), (
            name
        )


def test_basic_conv_is_conv_then_batchnorm_with_eps_1e_3_then_relu() -> None:
    unit = BasicConv(1, 1, 1).eval()
    with torch.no_grad():
        unit.conv.weight.fill_(1.5)
        unit.bn.running_mean.fill_(1.0)
        unit.bn.running_var.fill_(0.999)  # + eps 1e-3 = 1: the normalised value is exactly x * 1.5 - 1
        unit.bn.weight.fill_(2.0)
        unit.bn.bias.fill_(-0.5)
        out = unit(torch.tensor([[[[2.0, 0.0]]]]))
    # 2 -> 2 * (3 - 1) - 0.5 = 3.5; 0 -> 2 * (0 - 1) - 0.5 = -2.5, cut to 0 by the ReLU
    torch.testing.assert_close(out, torch.tensor([[[[3.5, 0.0]]]]), rtol=0, atol=1e-6)


def test_preprocessing_by_hand_bilinear_without_align_corners() -> None:
    # Two columns, 0 and 1, stretched to 299: output column i samples x = (i + 0.5) * 2 / 299 - 0.5,
    # clamped at the edges, then [0, 1] -> [-1, 1].
    ramp = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 2, 2)
    out = FIDInceptionV3.preprocess(ramp)
    assert out.shape == (1, 3, FID_INPUT_SIZE, FID_INPUT_SIZE)
    row = out[0, 0, 0]
    assert row[0].item() == -1.0 and row[74].item() == -1.0  # x < 0: the first column's value
    assert row[149].item() == pytest.approx(0.0, abs=1e-6)  # x = 0.5: halfway
    assert row[75].item() == pytest.approx(2 * (75.5 * 2 / 299 - 0.5) - 1, abs=1e-6)  # -0.98997
    assert row[298].item() == 1.0
    assert torch.equal(out[0, :, 0], out[0, :, 298])  # every row the same


def test_preprocessing_of_uint8_and_of_images_already_at_299() -> None:
    grey = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
    assert FIDInceptionV3.preprocess(grey)[0, 0, 0, 0].item() == pytest.approx(128 / 255 * 2 - 1, abs=1e-6)
    image = torch.rand(2, 3, FID_INPUT_SIZE, FID_INPUT_SIZE)
    assert torch.equal(FIDInceptionV3.preprocess(image), image * 2 - 1)  # no resampling at the input size


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (3, 32, 32), (1, 4, 32, 32)])
def test_images_of_another_shape_are_refused_in_one_line(network: FIDInceptionV3, shape) -> None:
    with pytest.raises(ValueError) as info:
        network(torch.rand(shape))
    assert str(info.value) == f"images must have shape (N, 3, H, W), got {shape}"


def _random_published_state(network: FIDInceptionV3, seed: int) -> dict[str, torch.Tensor]:
    """Random weights under the network's (= the published file's) key names, positive running variances."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in network.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        random = torch.rand(value.shape, generator=generator)
        state[key] = random + 0.5 if key.endswith("running_var") else (random - 0.5) * 0.1
    return state


def test_a_weight_file_with_random_weights_round_trips(tmp_path: Path, network: FIDInceptionV3) -> None:
    state = _random_published_state(network, seed=1)
    path = tmp_path / "fid.pth"
    torch.save(state, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # another file name: no checksum warning
        loaded = load_fid_inception(path)
    assert not loaded.training
    for key, value in loaded.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, state[key]), key
    with torch.inference_mode():  # the loaded running statistics are the ones used
        stem = loaded.Conv2d_1a_3x3
        x = torch.rand(1, 3, 9, 9)
        bn = stem.bn
        expected = torch.relu(
            (stem.conv(x) - bn.running_mean.view(1, -1, 1, 1))
            / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + 1e-3)
            * bn.weight.view(1, -1, 1, 1)
            + bn.bias.view(1, -1, 1, 1)
        )
        torch.testing.assert_close(stem(x), expected, rtol=1e-5, atol=1e-6)


def test_the_published_file_name_with_other_bytes_warns_that_fid_is_not_comparable(
    tmp_path: Path, network: FIDInceptionV3
) -> None:
    path = tmp_path / FID_WEIGHTS_NAME
    torch.save(_random_published_state(network, seed=2), path)
    with pytest.warns(UserWarning, match="SHA-256 differs from the published file"):
        load_fid_inception(path)


def test_a_weight_of_the_wrong_shape_is_named(network: FIDInceptionV3) -> None:
    state = dict(network.state_dict())
    state["fc.weight"] = torch.zeros(1000, FEATURE_DIM)  # the model-zoo InceptionV3's 1000 classes
    with pytest.raises(FIDWeightsError) as info:
        check_fid_state_dict(network, state, "zoo.pth")
    assert (
        str(info.value) == "zoo.pth: not the FID Inception weights (1 wrong shape for keys, e.g. fc.weight)"
    )


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(FIDWeightsError, match=r"list.pth: not a state dict$"):
        load_fid_inception(tmp_path / "list.pth")


def test_every_batchnorm_uses_eps_1e_3_and_the_network_has_no_dropout(network: FIDInceptionV3) -> None:
    norms = [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 94 and {m.eps for m in norms} == {1e-3}
    assert not any(isinstance(m, nn.Dropout) for m in network.modules())
