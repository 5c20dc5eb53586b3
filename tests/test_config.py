from dataclasses import dataclass
from typing import Literal

import pytest

from deepsampler.config import from_dict, load_yaml, to_dict
from deepsampler.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    rate: float = 1.0


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    sizes: tuple[int, ...] = (1, 2)
    mode: Literal["x", "y"] = "x"
    inner: Inner = Inner()
    maybe: int | None = None


def test_round_trip():
    cfg = from_dict(Outer, {"sizes": [3, 4], "inner": {"rate": 2}, "maybe": 5})
    assert cfg.sizes == (3, 4) and cfg.inner.rate == 2.0 and cfg.maybe == 5
    assert from_dict(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "data,message",
    [
        ({"nam": "b"}, "unknown key"),
        ({"inner": {"rte": 1}}, "unknown key.*inner.rte"),
        ({"sizes": [1, "2"]}, r"sizes\[1\]: expected an integer"),
        ({"mode": "z"}, "not one of"),
        ({"name": 3}, "expected a string"),
        ({"sizes": 3}, "expected a list"),
    ],
)
def test_rejects(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text("name: b\nsizes: [5]\n")
    assert from_dict(Outer, load_yaml(ok)).sizes == (5,)
