"""Property test: any value for any training config key loads or is refused in one line naming the key.

Random and boundary values go to every key of :class:`~dfnet.training.TrainConfig` (nested sections
included) through ``dfnet train --config smoke KEY=VALUE --print-config``: the command exits 0 with
the resolved config, or 1 with one ``dfnet train: error:`` line that names the key, never a traceback,
and it writes no file.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfnet.cli import main
from dfnet.training import TrainConfig


def config_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every leaf key of a config dataclass, dotted (``data.masks.strokes.min_width``)."""
    keys = []
    for name, annotation in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(annotation):
            keys += config_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


KEYS = config_keys()
BOUNDARY = [
    "0", "-1", "1", "2", "2147483648", "9223372036854775808", "-9223372036854775809", "1e400", "-0.0",
    "0.5", "1e-12", ".inf", "-.inf", ".nan", "true", "null", "''", "abc", "'32'", "[]", "[0]", "[0, 1]",
    "[2, 3]", "[-1, 0.5]", "[[1], 2]", "{a: 1}", "{}", "'\\0'", "DD:HH", "00:00:00:00", "\"${optim.lr}\"",
    "\"${nowhere}\"",
]  # fmt: skip


def as_yaml(value: Any) -> str:
    return json.dumps(value)  # JSON is YAML; NaN/Infinity come out as text


SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)
VALUES = st.one_of(
    st.sampled_from(BOUNDARY),
    SCALARS.map(as_yaml),
    st.lists(SCALARS, max_size=4).map(as_yaml),
    st.lists(st.integers(-3, 8), min_size=1, max_size=9).map(as_yaml),
)


def names_the_key(message: str, key: str) -> bool:
    """The full key, or its section together with the field name (``optim needs lr > 0 ...``)."""
    section, _, name = key.rpartition(".")
    return key in message or (name in message and section.split(".")[-1] in message)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_any_value_for_any_key_loads_or_is_one_line_naming_the_key(key, value, capsys, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    code = main(["train", "--config", "smoke", f"{key}={value}", "--print-config"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and not list(workdir.iterdir()), (key, value, err)
    if code == 0:
        printed = yaml.safe_load(out)
        assert set(printed) == {f.name for f in dataclasses.fields(TrainConfig)} and err == ""
        return
    lines = err.splitlines()
    assert code == 1 and out == "" and len(lines) == 1, (key, value, err)
    assert lines[0].startswith("dfnet train: error: ") and names_the_key(lines[0], key), (key, value, err)


def test_every_key_is_covered() -> None:
    assert len(KEYS) > 90 and "data.masks.strokes.bin_width_scale" in KEYS and "optim.betas" in KEYS
