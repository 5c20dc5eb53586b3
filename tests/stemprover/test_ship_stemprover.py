"""scripts/ship_stemprover.py: copies a finished run into the package and writes its card."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch

from deepsampler.stemprover.checkpoint import load_stemprover, save_stemprover
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.train import STAGES

from ..scripts_loader import load_script
from .conftest import tiny_config
from .test_mask_refiner import tiny_mask_config


def _row(delta: float) -> dict:
    return {
        "items": 4,
        "steps": 4,
        "delta_sdr": delta,
        "delta_sdr_ci95": 0.1,
        "delta_si_sdr": delta,
        "delta_si_sdr_ci95": 0.1,
        "improved_pct": 75.0,
        "phase_coherence_before": [0.9, 0.5],
        "phase_coherence_after": [0.9, 0.6],
        "magnitude_error_db_before": [1.0, 9.0],
        "magnitude_error_db_after": [1.0, 8.0],
        "rtf": 0.5,
    }


def _run(tmp_path, stages_done: list[str], guide: str | None = None):
    torch.manual_seed(0)
    predictor = dataclasses.replace(tiny_mask_config(), guide=guide)
    model = StemProver(dataclasses.replace(tiny_config(), predictor=predictor))
    model.add_adapter("bleed")
    run = tmp_path / "run"
    save_stemprover(run / "stemprover.pt", model, {"stages_done": stages_done})
    (run / "config.yaml").write_text("name: tiny\n")
    lines = [
        {"stage": "predictor", "step": 25, "loss": -4.5},
        {"stage": "base", "step": 2, "loss": 0.3},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    bench = tmp_path / "bench.json"
    rows = {"identity": _row(0.0), "predictor only": _row(0.4), "stemprover auto": _row(0.3)}
    payload = {
        "command": "benchmarks/stemprover.py --synthetic x",
        "seconds_per_item": 4.0,
        "limit": 1,
        "threads": 1,
        "sets": {"synthetic (music4-rt outputs)": rows},
    }
    bench.write_text(json.dumps(payload))
    return run, bench


def test_ship_writes_the_model_and_a_card_with_the_predictor(tmp_path, monkeypatch) -> None:
    ship = load_script("ship_stemprover")
    dest = tmp_path / "pretrained" / "stemprover"
    monkeypatch.setattr(ship, "STEMPROVER_DIR", dest)
    run, bench = _run(tmp_path, list(STAGES))
    monkeypatch.setattr(sys, "argv", ["ship", "--run", str(run), "--bench", str(bench)])
    ship.main()
    shipped, shipped_extra = load_stemprover(dest / "stemprover.pt")
    original, extra = load_stemprover(run / "stemprover.pt")
    assert shipped_extra == extra and shipped.config == original.config
    for a, b in zip(shipped.state_dict().values(), original.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    card = (dest / "stemprover.md").read_text()
    assert "a predictive stage" in card
    assert "| parameters | predictor 0.0" in card and "adapters bleed" in card
    assert "| predictor | 25 | -4.5000 | metrics.jsonl |" in card
    assert "| predictor only | 4 | +0.40 ± 0.10 |" in card


def test_ship_refuses_an_unfinished_run(tmp_path, monkeypatch) -> None:
    ship = load_script("ship_stemprover")
    monkeypatch.setattr(ship, "STEMPROVER_DIR", tmp_path / "pretrained")
    unfinished = [s for s in STAGES if s != "predictor"]
    run, bench = _run(tmp_path, unfinished)
    monkeypatch.setattr(sys, "argv", ["ship", "--run", str(run), "--bench", str(bench)])
    with pytest.raises(SystemExit, match="unfinished"):
        ship.main()
    assert not (tmp_path / "pretrained").exists()


def test_ship_with_a_default_step_count(tmp_path, monkeypatch) -> None:
    from deepsampler.stemprover.enhancer import Enhancer

    ship = load_script("ship_stemprover")
    dest = tmp_path / "pretrained"
    monkeypatch.setattr(ship, "STEMPROVER_DIR", dest)
    run, bench = _run(tmp_path, list(STAGES))
    argv = ["ship", "--run", str(run), "--bench", str(bench), "--steps", "0"]
    monkeypatch.setattr(sys, "argv", argv)
    ship.main()
    shipped, extra = load_stemprover(dest / "stemprover.pt")
    original, _ = load_stemprover(run / "stemprover.pt")
    assert extra["inference"] == {"steps": 0} and extra["stages_done"] == list(STAGES)
    for a, b in zip(shipped.state_dict().values(), original.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert Enhancer(dest / "stemprover.pt").steps == 0
    assert Enhancer(dest / "stemprover.pt", steps=2).steps == 2  # an explicit count wins
    assert (
        "| default | the predictive stage alone (`--steps 0`)"
        in (dest / "stemprover.md").read_text()
    )
    monkeypatch.setattr(sys, "argv", [*argv[:-1], "-1"])
    with pytest.raises(SystemExit, match="use 0"):
        ship.main()


def test_inference_metadata_is_checked() -> None:
    from deepsampler.errors import DeepSamplerError
    from deepsampler.stemprover.enhancer import default_steps

    model = StemProver(tiny_config())
    assert default_steps(model, {}) == model.config.diffusion.steps
    assert default_steps(model, {"inference": {"steps": 3}}) == 3
    for bad in ({"steps": -1}, {"steps": "2"}, {"steps": True}, {"strength": 0.2}, [2]):
        with pytest.raises(DeepSamplerError, match="inference"):
            default_steps(model, {"inference": bad})


def test_a_guided_models_card_names_its_guide_and_every_benchmark(tmp_path, monkeypatch) -> None:
    from .test_mask_refiner import tiny_guide

    ship = load_script("ship_stemprover")
    dest = tmp_path / "pretrained" / "stemprover"
    monkeypatch.setattr(ship, "STEMPROVER_DIR", dest)
    guide = tiny_guide(tmp_path / "guide.pt")
    run, bench = _run(tmp_path, list(STAGES), guide=guide)
    argv = ["ship", "--run", str(run), "--bench", str(bench), str(bench), "--steps", "0"]
    monkeypatch.setattr(sys, "argv", argv)
    ship.main()
    card = (dest / "stemprover.md").read_text()
    assert f"guided by our offline separator {guide}" in card
    assert f"the predictor's guide, {guide} (0." in card and "holds its digest" in card
    assert card.count("Command: `.venv/bin/python benchmarks/stemprover.py") == 2
    # the shipped file holds the refiner, not the guide's weights
    payload = torch.load(dest / "stemprover.pt", weights_only=True)
    assert not any(k.startswith("predictor.guide_model.") for k in payload["state_dict"])
    load_stemprover(dest / "stemprover.pt")
