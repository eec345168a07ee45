"""dfnet.vgg: torchvision's VGG16 ``features`` rebuilt layer by layer, its weight files and its input scaling."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dfnet.vgg import (
    DEFAULT_LAYERS,
    POOL_INDICES,
    VGG16Features,
    VGGWeightsError,
    read_vgg16_state,
    torch_hub_checkpoint_dir,
)

# torchvision.models.vgg16().features, written out: index -> (in, out) of each 3x3 convolution; every
# convolution is followed by a ReLU at the next index, and the five 2x2 max-pools sit at 4, 9, 16, 23, 30.
PUBLISHED_CONVS = {
    0: (3, 64),
    2: (64, 64),
    5: (64, 128),
    7: (128, 128),
    10: (128, 256),
    12: (256, 256),
    14: (256, 256),
    17: (256, 512),
    19: (512, 512),
    21: (512, 512),
    24: (512, 512),
    26: (512, 512),
    28: (512, 512),
}
PUBLISHED_POOLS = (4, 9, 16, 23, 30)
VGG16_FEATURE_PARAMETERS = 14_714_688  # 138,357,544 in all minus the classifier's 123,642,856


def test_the_full_network_is_torchvision_vgg16_features_layer_for_layer() -> None:
    features = VGG16Features(["pool5"]).features
    assert len(features) == 31
    for index, layer in enumerate(features):
        if index in PUBLISHED_CONVS:
            assert isinstance(layer, nn.Conv2d), index
            assert (layer.in_channels, layer.out_channels) == PUBLISHED_CONVS[index]
            assert layer.kernel_size == (3, 3) and layer.padding == (1, 1) and layer.stride == (1, 1)
        elif index in PUBLISHED_POOLS:
            assert isinstance(layer, nn.MaxPool2d) and (layer.kernel_size, layer.stride) == (2, 2), index
        else:
            assert isinstance(layer, nn.ReLU) and index - 1 in PUBLISHED_CONVS, index
    assert sum(p.numel() for p in features.parameters()) == VGG16_FEATURE_PARAMETERS
    published_pools = dict(zip(("pool1", "pool2", "pool3", "pool4", "pool5"), PUBLISHED_POOLS, strict=True))
    assert published_pools == POOL_INDICES


@pytest.mark.parametrize(("deepest", "built"), [("pool1", 5), ("pool2", 10), ("pool3", 17), ("pool4", 24)])
def test_only_the_layers_up_to_the_deepest_requested_pool_are_built(deepest: str, built: int) -> None:
    assert len(VGG16Features([deepest]).features) == built
    assert len(VGG16Features(["pool1", deepest]).features) == built


def test_default_layers_are_the_three_pools_of_the_paper_losses() -> None:
    vgg = VGG16Features()
    assert DEFAULT_LAYERS == ("pool1", "pool2", "pool3") and vgg.layers == DEFAULT_LAYERS
    assert len(vgg.features) == 17


def test_outputs_come_in_the_requested_order_and_halve_the_grid_at_every_pool(one_thread) -> None:
    vgg = VGG16Features(["pool5", "pool1", "pool3", "pool4"])
    vgg.init_random(3)
    with torch.no_grad():
        pool5, pool1, pool3, pool4 = vgg(torch.rand(1, 3, 64, 96))
    assert pool1.shape == (1, 64, 32, 48)
    assert pool3.shape == (1, 256, 8, 12)
    assert pool4.shape == (1, 512, 4, 6)
    assert pool5.shape == (1, 512, 2, 3)


@pytest.mark.parametrize("layers", [["pool6"], ["pool1", "conv3"], []])
def test_unknown_or_no_layers_are_refused(layers: list[str]) -> None:
    with pytest.raises(ValueError, match="VGG16 layers must be among"):
        VGG16Features(layers)


def _first_conv_input(vgg: VGG16Features, image: torch.Tensor, **options: bool) -> torch.Tensor:
    """What the first convolution receives for ``image``."""
    seen: list[torch.Tensor] = []
    handle = vgg.features[0].register_forward_pre_hook(lambda _module, args: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            vgg(image, **options)
    finally:
        handle.remove()
    return seen[0]


def test_imagenet_normalisation_by_hand() -> None:
    vgg = VGG16Features(["pool1"])
    white = torch.ones(1, 3, 2, 2)
    normalised = _first_conv_input(vgg, white)
    # (1 - mean) / std per channel: (1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225
    expected = torch.tensor([2.2489083, 2.4285714, 2.6400000]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalised, expected, rtol=0, atol=1e-6)
    grey = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert _first_conv_input(vgg, grey).abs().max() < 1e-6  # the ImageNet mean becomes zero
    assert torch.equal(_first_conv_input(vgg, white, imagenet_normalize=False), white)  # released DFNet input


def test_seeded_random_weights_are_he_initialised_and_reproducible() -> None:
    first, second, other = VGG16Features(), VGG16Features(), VGG16Features()
    first.init_random(7)
    second.init_random(7)
    other.init_random(8)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.features[0].weight, other.features[0].weight)
    conv = first.features[14]  # 256 -> 256: 589,824 weights, fan-out 256 * 9
    assert conv.bias.abs().max() == 0
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.01)


def _published_state(seed: int) -> dict[str, torch.Tensor]:
    """Random weights under the keys and shapes of torchvision's vgg16-397923af.pth, classifier included."""
    return dict(_published_state_cached(seed))  # a new dict each time: tests replace entries


@functools.cache
def _published_state_cached(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, (cin, cout) in PUBLISHED_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * 0.05
        state[f"features.{index}.bias"] = torch.randn(cout, generator=generator) * 0.05
    for index, (cin, cout) in {0: (8, 4), 3: (4, 4), 6: (4, 10)}.items():  # classifier, shrunk: never read
        state[f"classifier.{index}.weight"] = torch.randn(cout, cin, generator=generator)
        state[f"classifier.{index}.bias"] = torch.zeros(cout)
    return state


@pytest.mark.parametrize("kind", ["pth", "pth-dataparallel", "safetensors"])
def test_weight_file_in_the_published_key_names_round_trips(tmp_path: Path, kind: str) -> None:
    state = _published_state(seed=1)
    path = tmp_path / ("vgg16.safetensors" if kind == "safetensors" else "vgg16.pth")
    if kind == "safetensors":
        save_file(state, str(path))
    elif kind == "pth-dataparallel":
        torch.save({f"module.{key}": value for key, value in state.items()}, path)
    else:
        torch.save(state, path)
    read = read_vgg16_state(path)
    assert set(read) == set(state)  # the "module." prefix of a DataParallel save is dropped
    vgg = VGG16Features(["pool5"])
    vgg.load_weights(read, str(path))
    loaded = vgg.state_dict()
    assert set(loaded) == {key for key in state if key.startswith("features.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key
    if kind != "pth":
        return
    # and back: the network's own state saved and read again gives the same network
    torch.save(loaded, tmp_path / "again.pth")
    again = VGG16Features(["pool5"])
    again.load_weights(read_vgg16_state(tmp_path / "again.pth"), "again.pth")
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(vgg(image), again(image), strict=True))


def test_a_half_precision_file_loads_as_float32(tmp_path: Path) -> None:
    state = {key: value.half() for key, value in _published_state(seed=2).items()}
    torch.save(state, tmp_path / "half.pth")
    vgg = VGG16Features(["pool1"])
    vgg.load_weights(read_vgg16_state(tmp_path / "half.pth"), "half.pth")
    assert vgg.features[2].weight.dtype == torch.float32
    assert torch.equal(vgg.features[2].weight, state["features.2.weight"].float())


def test_a_file_with_another_network_shape_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    state = _published_state(seed=3)
    state["features.0.weight"] = torch.zeros(64, 4, 3, 3)  # a 4-channel input layer
    with pytest.raises(VGGWeightsError) as info:
        VGG16Features(["pool1"]).load_weights(state, "four.pth")
    assert str(info.value) == (
        "four.pth: shape mismatch for features.0.weight: file (64, 4, 3, 3), VGG16 (64, 3, 3, 3)"
    )


def test_a_file_with_only_the_first_block_serves_pool1_but_not_pool5() -> None:
    state = {
        k: v for k, v in _published_state(seed=4).items() if k.startswith(("features.0.", "features.2."))
    }
    VGG16Features(["pool1"]).load_weights(state, "short.pth")
    with pytest.raises(VGGWeightsError) as info:
        VGG16Features(["pool5"]).load_weights(state, "short.pth")
    assert str(info.value) == (
        "short.pth: not a VGG16 weight file (22 of the needed keys missing, first: features.5.weight)"
    )


def test_a_file_that_is_not_a_state_dict_is_refused_in_one_line(tmp_path: Path) -> None:
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(VGGWeightsError, match=r"list.pth: expected a state dict, found list$"):
        read_vgg16_state(tmp_path / "list.pth")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(VGGWeightsError, match="cannot read VGG16 weights") as info:
        read_vgg16_state(tmp_path / "broken.safetensors")
    assert "\n" not in str(info.value)


def test_the_hub_cache_follows_torch_home_then_xdg_then_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_hub_checkpoint_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    assert torch_hub_checkpoint_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert torch_hub_checkpoint_dir() == tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"
