"""The bounded YAML and JSON readers: hostile files refused fast, in one line naming the file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dfnet.safe_load import MAX_BYTES, MAX_DEPTH, SafeLoadError, json_depth, loads_yaml, read_json, read_yaml


def billion_laughs(levels: int = 9) -> str:
    """Nested anchors whose last level expands to 9**levels strings (387 MB of 'lol' at 9 levels)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_reads_yaml_and_learning_rates_without_a_dot(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 2e-4\n  betas: [0.5, 0.9]\nname: x\n")
    assert read_yaml(path) == {"optim": {"lr": 2e-4, "betas": [0.5, 0.9]}, "name": "x"}
    shared = loads_yaml("a: &x [1, 2]\nb: *x\n", "s")  # aliases within the limit are fine
    assert shared == {"a": [1, 2], "b": [1, 2]}


def test_billion_laughs_is_refused_fast_without_printing_the_value(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 600
    start = time.perf_counter()
    with pytest.raises(SafeLoadError) as err:
        read_yaml(path)
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert message == f"{path}: more than 100,000 values once anchors and aliases are expanded"
    # 6 levels expand to 9**6 = 531,441 strings plus the lists: refused; 5 levels (66,430 values) pass
    with pytest.raises(SafeLoadError, match="anchors and aliases"):
        loads_yaml(billion_laughs(6), "six")
    assert len(loads_yaml(billion_laughs(5), "five")["a4"]) == 9


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(SafeLoadError, match="expanded"):
        loads_yaml("a: &x [1, *x]\n", "loop")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, f"nested more than {MAX_DEPTH} levels deep"),  # the parser's own recursion
        ("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2), f"nested more than {MAX_DEPTH} levels deep"),
        ("a: [1, 2\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, column 1)"),
        ("--- 1\n--- 2\n", "not valid YAML"),
    ],
)
def test_deep_and_broken_yaml_is_one_line(text: str, message: str) -> None:
    with pytest.raises(SafeLoadError) as err:
        loads_yaml(text, "conf.yaml")
    assert str(err.value) == f"conf.yaml: {message}" or str(err.value).startswith(f"conf.yaml: {message}")
    assert "\n" not in str(err.value)


def test_depth_limit_is_exact() -> None:
    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    loads_yaml(nested(MAX_DEPTH + 1), "ok")  # the outer list is level 0
    with pytest.raises(SafeLoadError, match="levels deep"):
        loads_yaml(nested(MAX_DEPTH + 2), "deep")


def test_files_that_are_not_yaml_text_name_the_file(tmp_path: Path) -> None:
    cases = {
        "binary.yaml": b"\x80\x81model: 1\n",
        "empty.yaml": b"",
        "blank.yaml": b"\n  \n",
        "big.yaml": b"#" * (MAX_BYTES + 1),
    }
    expected = {
        "binary.yaml": "not a UTF-8 text file (byte 0x80 at offset 0)",
        "empty.yaml": "the file is empty",
        "blank.yaml": "the file is empty",
        "big.yaml": "larger than 1024 KiB",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SafeLoadError) as err:
            read_yaml(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: {expected[name]}"), err.value
    with pytest.raises(SafeLoadError, match="not a regular file"):
        read_yaml(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.yaml")  # opening it would block until a writer came
        with pytest.raises(SafeLoadError, match="fifo.yaml: not a regular file"):
            read_yaml(tmp_path / "fifo.yaml")
    with pytest.raises(SafeLoadError, match="missing.yaml: cannot read"):
        read_yaml(tmp_path / "missing.yaml")


def test_read_json_limits_depth_before_parsing() -> None:
    assert read_json('{"width": 0.125, "fusion_layers": [0, 1]}', "m") == {
        "width": 0.125,
        "fusion_layers": [0, 1],
    }
    assert json_depth('{"a": [[1], "[[[["]}') == 3  # brackets inside strings do not count
    for hostile in ("[" * 100_000, '{"a":' * 50_000):
        start = time.perf_counter()
        with pytest.raises(
            SafeLoadError, match=f"^w.safetensors config: nested more than {MAX_DEPTH} levels deep$"
        ):
            read_json(hostile, "w.safetensors config")
        assert time.perf_counter() - start < 1.0
    with pytest.raises(SafeLoadError, match=r"^m: not valid JSON \(Expecting"):
        read_json("[1, 2", "m")
    with pytest.raises(SafeLoadError, match="m: not UTF-8"):
        read_json(b"\xff{}", "m")
    assert read_json(json.dumps([[0]] * 3).encode(), "m") == [[0]] * 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (billion_laughs(), "more than 100,000 values once anchors and aliases are expanded"),
        (b"\x80model: {}\n", "not a UTF-8 text file (byte 0x80 at offset 0)"),
        (b"", "the file is empty"),
        (b"# nothing here\n", "holds no settings (only comments or blank lines)"),
    ],
)
def test_train_print_config_refuses_hostile_config_files(tmp_path: Path, capsys, content, message) -> None:
    from dfnet.cli import main
    from dfnet.training import load_config  # imported before the clock starts

    assert load_config("smoke")
    path = tmp_path / "x.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    start = time.perf_counter()
    assert main(["train", "--config", str(path), "--print-config"]) == 1
    assert time.perf_counter() - start < 5
    out, err = capsys.readouterr()
    assert out == "" and err == f"dfnet train: error: {path}: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.yaml"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.betas=[2, 3]", "optim.betas must be two numbers in [0, 1), got [2.0, 3.0]"),
        ("init_weights=' '", "init_weights must be the path of a weights file or null, got ' '"),
        (
            "init_weights=[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
            "&c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], "
            "[*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]]",
            "override init_weights: more than 100,000 values once anchors and aliases are expanded",
        ),
    ],
)
def test_train_override_values_are_checked_where_parsed(capsys, override, message) -> None:
    from dfnet.cli import main

    assert main(["train", "--config", "smoke", override, "--print-config"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"dfnet train: error: {message}\n"
