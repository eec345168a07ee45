"""Property test of the command line: every option of every sub-command (found by walking
``dfnet.cli.build_parser()``), given a boundary or random bad value on an otherwise valid command, is
refused with exit status 1 or 2 and one stderr line naming the option (or the value it was given),
without a traceback and without writing a file.

Runs in-process through ``dfnet.cli.main`` so that a few hundred commands take seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import encode, files_in, hole_rect, mask_bytes, picture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfnet.checkpoint import save_model, save_released
from dfnet.cli import build_parser, main
from dfnet.model import DFNet, DFNetConfig

# An otherwise valid command per sub-command, run in a workspace folder (see ``workspace``).
BASES: dict[str, list[str]] = {
    "inpaint": ["inpaint", "a.png", "m.png", "-o", "out/o.png", "--model", "tiny.safetensors", "--no-progress"],
    "export": ["export", "--model", "tiny.safetensors", "-o", "out/m.onnx", "--no-verify"],
    "convert-official": ["convert-official", "r.pth", "out/c.safetensors"],
    "eval": ["eval", "--images", "gt", "--masks", "masks", "--method", "telea", "--out", "out/r", "--size", "64",
             "--workers", "0", "--quiet"],
    "eval-compare": ["eval-compare", "reports/telea.json", "--out", "out/t.md"],
    "serve": ["serve", "--model", "tiny.safetensors", "--port", "0", "--engine", "torch", "--device", "cpu"],
    "masks generate": ["masks", "generate", "out/ms", "--count", "2", "--size", "16"],
    "masks info": ["masks", "info", "m.png"],
    "train": ["train", "--config", "smoke", "output.dir=out/runs", "--print-config"],
    "export-checkpoint": ["export-checkpoint", "tiny.safetensors", "out/e.safetensors"],
    # places2 needs --accept-license and the mirrors are a closed loopback port (conftest): never the network
    "models list": ["models", "list"],
    "models download": ["models", "download", "places2", "--no-progress"],
    "models path": ["models", "path", "default"],
    "models remove": ["models", "remove", "places2"],
    "models hub-card": ["models", "hub-card", "tiny.safetensors", "out/hub", "--repo", "me/tiny"],
    "data download": ["data", "download", "places365-val", "--root", "out/places2", "--no-progress"],
    "data check": ["data", "check", "celeba", "gt"],
}  # fmt: skip
# Where one option needs a different base: --model of eval matters for DFNet only; --resume is not
# read when the config is only printed.
BASE_FOR = {
    ("eval", "--model"): [*BASES["eval"], "--method", "dfnet"],
    ("train", "--resume"): BASES["train"][:-1],
}
MISSING = "no-such-file"
# Options that take free text: values that must be refused. Paths that do not exist, folders where a
# file is needed, files where a folder is needed, empty text, and names that would leave --out.
FREE_TEXT: dict[tuple[str, str], list[str]] = {
    ("inpaint", "--model"): [f"{MISSING}.safetensors", "gt", "empty.safetensors", "", " "],
    ("inpaint", "--set"): ["junk", "=3", "max_side=", "max_side=abc", "max_side=-1", "tile=3", "context=0",
                           "feather=-5", "trigger=nan", "max_side=1e300", "context=inf"],
    ("export", "--model"): [f"{MISSING}.safetensors", "gt", "empty.safetensors", ""],
    ("eval", "--images"): [MISSING, "a.png", ""],
    ("eval", "--masks"): [MISSING, "a.png", ""],
    ("eval", "--model"): [f"{MISSING}.safetensors", "gt", ""],
    ("eval", "--name"): ["", "a/b", "..", "../up", "."],
    ("eval", "--out"): ["", "a.png"],
    ("eval", "--device"): ["tpu", "cuda:x", "", "cpu:0:1"],
    ("eval", "--fid-weights"): [f"{MISSING}.pth", "gt"],
    ("eval", "--lpips-weights"): [f"{MISSING}.pth", "gt"],
    ("eval", "--vgg-weights"): [f"{MISSING}.pth", "gt"],
    ("eval-compare", "--out"): ["", "gt"],
    ("serve", "--host"): ["", " ", "192.0.2.1"],  # 192.0.2.1: a documentation address, never this machine's
    ("serve", "--model"): [f"{MISSING}.safetensors", "gt", ""],
    ("serve", "--device"): ["tpu", ""],
    ("masks generate", "--bins"): ["9", "a", "", "0,0", "-1", "1,,x"],
    ("train", "--config"): [f"{MISSING}.yaml", "", "gt"],
    ("train", "--resume"): [f"{MISSING}.ckpt", "gt"],
    ("models hub-card", "--repo"): ["", " ", "tiny", "a/b/c", "/tiny", "me/", "me/ti ny", "../x", "me/a..b", ".me/x"],
    ("models hub-card", "--license"): ["", " ", "cc by", "a\nb"],
    ("data download", "--root"): ["", " ", "a.png"],
}  # fmt: skip
PATH_OPTIONS = {key for key, values in FREE_TEXT.items() if f"{MISSING}" in " ".join(values)}
NOT_NUMBERS = ["", " ", "abc", "nan", "inf", "-inf", "1e400", "0x10", "1,5", "½", "--"]


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.Action]]:
    """(sub-command, option) for every optional argument of every sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield " ".join(path), action


OPTIONS = sorted(walk(build_parser()), key=lambda entry: (entry[0], entry[1].option_strings[-1]))


def option_id(entry: tuple[str, argparse.Action]) -> str:
    return f"{entry[0]} {entry[1].option_strings[-1]}"


def type_name(action: argparse.Action) -> str:
    return getattr(action.type, "__name__", "")


def boundary_values(command: str, action: argparse.Action) -> list[str]:
    """Values just outside what ``action`` accepts, and values of the wrong kind."""
    name = action.option_strings[-1]
    if action.nargs == 0:  # a flag: it takes no value
        return ["yes", ""]
    if action.choices:
        first = str(list(action.choices)[0])
        return [
            "",
            " ",
            first.upper() if first.upper() != first else first + "x",
            f"{first} ",
            "none-of-these",
        ]
    if type_name(action) in ("integer", "number"):
        low, high = action.type.bounds
        outside = [low - 1, high + 1] if type_name(action) == "integer" else [low - 1e-9, high * 1.0001 + 1]
        fractions = ["1.5", f"{low}.5"] if type_name(action) == "integer" else []
        return [*map(str, outside), *fractions, *NOT_NUMBERS]
    if type_name(action) == "texture":
        return ["", "abc", "-0.1", "2.01", "nan", "inf", "Finest"]
    if (command, name) in FREE_TEXT:
        return FREE_TEXT[command, name]
    if type_name(action) == "non_empty":
        return ["", " ", "\t"]
    raise AssertionError(f"{command} {name}: no bad values known; add them to FREE_TEXT")


@st.composite
def random_bad_value(draw, command: str, action: argparse.Action) -> str:
    """A random value ``action`` must refuse."""
    name = action.option_strings[-1]
    if action.nargs == 0:
        return draw(st.text(min_size=1))
    if action.choices:
        return draw(st.text().filter(lambda text: text not in action.choices))
    if type_name(action) == "integer":
        low, high = action.type.bounds
        fraction = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
        outside = st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1))
        return draw(st.one_of(outside.map(str), fraction.map(repr), st.sampled_from(NOT_NUMBERS)))
    if type_name(action) == "number":
        low, high = action.type.bounds
        below = st.floats(max_value=low, exclude_max=not action.type.low_open)  # NaN and -inf included
        above = st.floats(min_value=high, exclude_min=True)
        return draw(st.one_of(below.map(repr), above.map(repr), st.sampled_from(NOT_NUMBERS)))
    if (command, name) in PATH_OPTIONS:
        stem = draw(st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12))
        return draw(st.sampled_from([f"{MISSING}-{stem}", *FREE_TEXT[command, name]]))
    return draw(st.sampled_from(boundary_values(command, action)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder holding every input the base commands read: photos, masks, weights, a report."""
    root = tmp_path_factory.mktemp("cli")
    (root / "a.png").write_bytes(encode(picture(64, 64), "PNG"))
    (root / "m.png").write_bytes(mask_bytes(hole_rect(64, 64)))
    (root / "gt").mkdir()
    for i in range(2):
        (root / "gt" / f"p{i}.png").write_bytes(encode(picture(64, 64, seed=i), "PNG"))
    (root / "masks").mkdir()
    (root / "masks" / "m.png").write_bytes(mask_bytes(hole_rect(64, 64)))
    (root / "empty.safetensors").write_bytes(b"")
    torch.manual_seed(0)
    save_model(
        DFNet(DFNetConfig(width=0.125)).eval(), root / "tiny.safetensors", metadata={"working_size": 256}
    )
    save_released(
        DFNet(DFNetConfig(width=0.125, encoder_kernels=(3, 3, 3), fusion_layers=(0, 1))), root / "r.pth"
    )
    with contextlib.chdir(root), contextlib.redirect_stdout(io.StringIO()):
        code = main(["eval", "--images", "gt", "--masks", "masks", "--method", "telea", "--out", "reports",
                     "--size", "64", "--workers", "0", "--quiet"])  # fmt: skip
    assert code == 0
    return root


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    """The Hub offline too (the model and data mirrors point at a closed loopback port for every test: conftest)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module", autouse=True)
def no_server(request) -> Iterator[None]:
    """A serve command that got past its checks would block: make that a test failure instead."""
    import uvicorn

    with pytest.MonkeyPatch.context() as patch:

        def refuse(self, *args, **kwargs):
            raise AssertionError("dfnet serve started: a bad option value was accepted")

        patch.setattr(uvicorn.Server, "run", refuse)
        yield


def run_refused(workspace: Path, command: str, action: argparse.Action, value: str) -> None:
    """Run the base command of ``command`` with ``option=value`` and check the refusal."""
    name = action.option_strings[-1]
    argv = [*BASE_FOR.get((command, name), BASES[command]), f"{name}={value}"]
    before = files_in(workspace)
    stderr = io.StringIO()
    with (
        contextlib.chdir(workspace),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
    assert code in (1, 2), (argv, code, lines)
    assert len(lines) == 1, (argv, lines)
    line = lines[0]
    assert "Traceback" not in line and line.startswith(f"dfnet {command.split()[0]}"), (argv, line)
    names = [*action.option_strings, *([value.strip(), repr(value)] if value.strip() else [])]
    assert any(text in line for text in names), (argv, line)
    assert files_in(workspace) == before, argv  # nothing written, not even a temporary file


def test_every_option_is_probed():
    """Every option of every sub-command has bad values, so a new option cannot go untested."""
    assert len(OPTIONS) > 60
    for command, action in OPTIONS:
        assert command in BASES, command
        assert boundary_values(command, action)


@pytest.mark.parametrize("entry", OPTIONS, ids=option_id)
def test_boundary_values_of_every_option_are_refused_in_one_line(entry, workspace):
    command, action = entry
    for value in boundary_values(command, action):
        run_refused(workspace, command, action, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bad_values_of_any_option_are_refused_in_one_line(data, workspace):
    command, action = data.draw(st.sampled_from(OPTIONS), label="option")
    value = data.draw(random_bad_value(command, action), label="value")
    run_refused(workspace, command, action, value)


def test_the_bounds_themselves_are_accepted():
    """The probes above are just outside the ranges: the ends of each range must be accepted."""
    for _, action in OPTIONS:
        if type_name(action) in ("integer", "number"):
            low, high = action.type.bounds
            assert action.type(str(high)) == high
            if type_name(action) == "integer":
                assert action.type(str(low)) == low
            else:
                inside = math.nextafter(low, math.inf) if action.type.low_open else low
                assert action.type(repr(float(inside))) == inside


NUMERIC_FLAGS = [
    (["inpaint", "a.png", "m.png", "-o", "o.png"], "--batch-size", 1, 4096),
    (["inpaint", "a.png", "m.png", "-o", "o.png"], "--max-pixels", 1, 2**31 - 1),
    (["inpaint", "a.png", "m.png", "-o", "o.png"], "--quality", 1, 100),
    (["export", "-o", "m.onnx"], "--size", 1, 16384),
    (["export", "-o", "m.onnx"], "--opset", 9, 99),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--size", 1, 16384),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--batch-size", 1, 4096),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--workers", 0, 256),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--bpe-band", 1, 1024),
    (["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"], "--limit", 1, 2**31 - 1),
    (
        ["eval", "--images", "i", "--masks", "m", "--out", "o", "--method", "telea"],
        "--save-images",
        -1,
        2**31 - 1,
    ),
    (["serve"], "--port", 0, 65535),
    (["serve"], "--max-pixels", 1, 2**31 - 1),
    (["serve"], "--queue-size", 1, 1024),
    (["serve"], "--workers", 1, 256),
    (["serve"], "--requests-per-client", 1, 1024),
    (["masks", "generate", "out"], "--count", 1, 10_000_000),
    (["masks", "generate", "out"], "--size", 8, 16384),
    (["masks", "generate", "out"], "--seed", 0, 2**32 - 1),
    (["export-checkpoint", "a.ckpt", "b.safetensors"], "--working-size", 1, 16384),
    (["data", "check", "celeba", "gt"], "--expected", 1, 2**31 - 1),
]


FLOAT_FLAGS = [
    (["serve"], "--max-upload-mb", 4096.0),
    (["serve"], "--body-timeout", 3600.0),
    (["serve"], "--header-timeout", 3600.0),
]


@st.composite
def bad_numeric_option(draw) -> tuple[list[str], str]:
    before, flag, low, high = draw(st.sampled_from(NUMERIC_FLAGS))
    outside = st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1))
    value = draw(
        st.one_of(
            st.sampled_from(NOT_NUMBERS), outside.map(str), st.floats(allow_nan=False).map(lambda f: f"{f}.5")
        )
    )
    return [*before, f"{flag}={value}"], flag


@st.composite
def bad_float_option(draw) -> tuple[list[str], str]:
    before, flag, high = draw(st.sampled_from(FLOAT_FLAGS))
    outside = st.one_of(st.floats(max_value=0.0), st.floats(min_value=high, exclude_min=True))
    value = draw(st.one_of(st.sampled_from(NOT_NUMBERS), outside.map(repr)))
    return [*before, f"{flag}={value}"], flag


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.one_of(bad_numeric_option(), bad_float_option()))
def test_a_bad_value_of_any_numeric_flag_is_refused_before_anything_runs(case, capsys):
    argv, flag = case
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith(f"dfnet {argv[0]}") or "error" in err
    assert f"argument {flag}:" in err.splitlines()[-1], err


def test_every_numeric_flag_is_range_checked_and_covered_by_the_property_test():
    import argparse

    from dfnet.cli import build_parser

    def commands(
        parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
    ) -> Iterator[tuple[tuple, Any]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, (*prefix, name))
            else:
                yield prefix, action

    covered = {(before[0], flag) for before, flag, *_ in NUMERIC_FLAGS + FLOAT_FLAGS}
    covered |= {(" ".join(b[:2]), f) for b, f, *_ in NUMERIC_FLAGS}  # masks generate, data check
    numeric = []
    for path, action in commands(build_parser()):
        assert action.type not in (int, float), f"{' '.join(path)} {action.option_strings}: unchecked number"
        if getattr(action.type, "__name__", "") in ("integer", "number") and action.option_strings:
            numeric.append((" ".join(path), action.option_strings[-1]))
    assert numeric and all(entry in covered for entry in numeric), sorted(set(numeric) - covered)
