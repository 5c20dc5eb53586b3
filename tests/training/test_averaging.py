"""Weight averaging across training stages (training/averaging.py, scripts/average_checkpoints.py):
the mean is exact, mismatches are refused, and the script's validation number is the trainer's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from deepsampler.data.dataset import StemDataset
from deepsampler.errors import CheckpointError
from deepsampler.models import DeepSampler, load_checkpoint, preset_config, save_checkpoint
from deepsampler.training.averaging import average_models, average_state_dicts
from deepsampler.training.config import load_train_config
from deepsampler.training.trainer import Trainer
from deepsampler.training.validate import validate
from tests.scripts_loader import load_script
from tests.training.test_training import base_config, corpus, write_yaml  # noqa: F401


@pytest.fixture(scope="module")
def script():
    return load_script("average_checkpoints")


def test_state_average_is_the_weighted_mean_and_copies_integer_buffers():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(3)}
    assert torch.equal(average_state_dicts([a, b])["w"], torch.tensor([2.0, 4.0]))
    # weights are normalised: 1:3 is 0.25 / 0.75
    assert torch.equal(average_state_dicts([a, b], [1, 3])["w"], torch.tensor([2.5, 5.0]))
    mean = average_state_dicts([a, b])
    assert mean["n"].dtype == torch.int64 and torch.equal(mean["n"], torch.tensor(3))
    assert mean["w"].dtype == torch.float32


@pytest.mark.parametrize(
    ("b", "weights", "match"),
    [
        ({"w": torch.zeros(2), "n": torch.tensor(4)}, None, "not floating point"),
        ({"w": torch.zeros(3), "n": torch.tensor(3)}, None, "shape"),
        ({"v": torch.zeros(2), "n": torch.tensor(3)}, None, "other keys"),
        ({"w": torch.zeros(2), "n": torch.tensor(3)}, [1.0], "2 states"),
        ({"w": torch.zeros(2), "n": torch.tensor(3)}, [1.0, -1.0], ">= 0"),
        ({"w": torch.zeros(2), "n": torch.tensor(3)}, [0.0, 0.0], "positive sum"),
        ({"w": torch.zeros(2), "n": torch.tensor(3)}, [1.0, float("nan")], "finite"),
        ({"w": torch.zeros(2), "n": torch.tensor(3)}, [1.0, float("inf")], "finite"),
    ],
)
def test_state_average_refuses_mismatches(b, weights, match):
    a = {"w": torch.ones(2), "n": torch.tensor(3)}
    with pytest.raises(ValueError, match=match):
        average_state_dicts([a, b], weights)


def _checkpoint(path: Path, config, seed: int, valid_sdr: float) -> Path:
    torch.manual_seed(seed)
    record = {"steps": 10 * seed, "valid_sdr": valid_sdr, "train_hours": 0.1, "config": {}}
    return save_checkpoint(path, DeepSampler(config), training=record, metadata={"name": "t"})


def test_model_average_and_architecture_check(tmp_path):
    config = preset_config("tiny")
    paths = [_checkpoint(tmp_path / f"{i}.pt", config, i, 1.0) for i in (1, 2)]
    loaded = [load_checkpoint(p) for p in paths]
    mean = average_models(loaded).state_dict()
    for key, value in mean.items():
        if value.is_floating_point():
            expected = (loaded[0].model.state_dict()[key] + loaded[1].model.state_dict()[key]) / 2
            torch.testing.assert_close(value, expected, msg=key)
    other = load_checkpoint(
        _checkpoint(tmp_path / "other.pt", preset_config("tiny", causal=False), 3, 1.0)
    )
    with pytest.raises(CheckpointError, match="another architecture.*causal"):
        average_models([loaded[0], other])
    with pytest.raises(CheckpointError, match="at least two"):
        average_models(loaded[:1])


def test_script_writes_a_shippable_run_scored_like_the_trainer(script, corpus, tmp_path, capsys):  # noqa: F811
    cfg_path = write_yaml(tmp_path / "c.yaml", base_config(corpus))
    cfg = load_train_config(cfg_path)
    run = tmp_path / "run"
    Trainer(cfg, run, progress=False).run()  # a real run: its metrics.jsonl is the reference
    trained = run / "checkpoints" / "best.pt"
    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["sdr"]
    other = _checkpoint(tmp_path / "b.pt", cfg.model_config(), 2, 0.7)
    out = tmp_path / "avg"
    argv = [str(trained), str(other), "--out", str(out), "--validate", str(cfg_path)]
    assert script.main(argv + ["--weights", "1", "3", "--threads", "1"]) == 0
    table = json.loads((out / "validation.json").read_text())
    assert [r["model"] for r in table["rows"]] == ["average", str(trained), str(other)]
    # the script's validation of an ingredient is the trainer's, to float rounding
    assert table["rows"][1]["sdr"] == pytest.approx(logged, abs=1e-5)
    shipped = load_checkpoint(out / "checkpoints" / "best.pt")
    record = shipped.training
    assert [x["weight"] for x in record["averaged_from"]] == [0.25, 0.75]
    assert [x["valid_sdr"] for x in record["averaged_from"]] == [pytest.approx(logged), 0.7]
    assert record["averaged_from"][0]["steps"] == 2
    assert record["steps"] == 20  # the last ingredient's record carries on
    # the average's number is what the trainer's validation says of the written weights
    loader = DataLoader(StemDataset(cfg.data_root, cfg.valid_split, cfg.data, train=False), 2)
    again = validate(shipped.model, loader, torch.device("cpu"), silence_db=cfg.data.silence_db)
    assert record["valid_sdr"] == pytest.approx(again["sdr"], abs=1e-5)
    assert table["rows"][0]["sdr"] == pytest.approx(again["sdr"], abs=1e-5)
    assert "average" in capsys.readouterr().out
    # never over an existing run's best.pt without --force
    assert script.main(argv + ["--no-ingredients"]) == 2
    assert "exists" in capsys.readouterr().err
    assert script.main(argv + ["--no-ingredients", "--force"]) == 0
    bad = write_yaml(tmp_path / "bad.yaml", base_config(tmp_path / "no-corpus"))
    argv = [str(trained), str(other), "--out", str(tmp_path / "x"), "--validate", str(bad)]
    assert script.main(argv) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_script_refuses_bad_invocations(script, tmp_path, capsys):
    config = preset_config("tiny")
    a = _checkpoint(tmp_path / "a.pt", config, 1, 0.5)
    b = _checkpoint(tmp_path / "b.pt", preset_config("tiny", causal=False), 2, 0.5)
    out = ["--out", str(tmp_path / "o")]
    assert script.main([str(a)] + out) == 2
    assert "at least two" in capsys.readouterr().err
    assert script.main([str(a), str(a), "--weights", "1"] + out) == 2
    assert "1 --weights for 2" in capsys.readouterr().err
    assert script.main([str(a), str(b)] + out) == 2
    assert "another architecture" in capsys.readouterr().err
    assert script.main([str(a), str(tmp_path / "missing.pt")] + out) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
