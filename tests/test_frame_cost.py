"""``benchmarks/frame_cost.py``: variants parse into config changes, bad ones are refused in one
line, and a run on the shipped speech-rt writes its table: the opset-23 graph (the package's
export) has fewer nodes than the same model at opset 18, and a third RoFormer block adds
parameters."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("onnxruntime")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "frame_cost.py"


@pytest.fixture(scope="module")
def frame_cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location("frame_cost", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_parse_into_config_changes(frame_cost: ModuleType) -> None:
    assert frame_cost.parse_variant("depth=3,enc_channels=48/64/96") == {
        "depth": 3,
        "enc_channels": (48, 64, 96),
    }
    assert frame_cost.parse_variant("dropout=0.1") == {"dropout": 0.1}
    with pytest.raises(SystemExit, match="key=value"):
        frame_cost.parse_variant("depth")


def test_an_impossible_variant_is_one_line(frame_cost: ModuleType) -> None:
    with pytest.raises(SystemExit, match="--variant dim=100"):
        frame_cost.main(["--model", "speech-rt", "--variant", "dim=100", "--rounds", "1"])


def test_speech_rt_table(frame_cost: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    argv = ["--model", "speech-rt", "--variant", "opset=18", "--variant", "depth=3"]
    assert frame_cost.main([*argv, "--rounds", "1", "--seconds", "0.5", "--json", str(out)]) == 0
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["base"]["opset"] == 23 and rows["opset=18"]["opset"] == 18
    assert rows["base"]["onnx_nodes"] < rows["opset=18"]["onnx_nodes"]
    assert rows["base"]["parameters"] == rows["opset=18"]["parameters"]
    assert rows["depth=3"]["parameters"] > rows["base"]["parameters"]
    assert rows["base"]["ratio"] == 1.0 and all(r["rtf_1thread"] > 0 for r in rows.values())
