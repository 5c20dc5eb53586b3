"""``scripts/ship_detector.py`` end to end on a tiny run and two generated streams: the shipped
file loads as a detector with the run's weights, the card carries the benchmark's numbers and
the targets, its ship line parses back into the invocation, and a baseline that reads a
separator is refused."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import soundfile as sf
import torch

from tests.detection.conftest import SR, make_detector, street
from tests.scripts_loader import load_script

pytest.importorskip("sed_eval")


@pytest.fixture
def streams(tmp_path):
    folder = tmp_path / "streams"
    folder.mkdir()
    for name, siren_at in (("siren_00", (2.0, 5.0)), ("free_00", None)):
        sf.write(folder / f"{name}.wav", street(6.0, seed=len(name), siren_at=siren_at)[0], SR)
        text = "" if siren_at is None else f"{siren_at[0]}\t{siren_at[1]}\tsiren\n"
        (folder / f"{name}.txt").write_text(text)
    return folder


def run_folder(root, detector):
    (root / "checkpoints").mkdir(parents=True)
    shutil.copy(detector, root / "checkpoints" / "best.pt")
    return root


@pytest.fixture
def ship(tmp_path, monkeypatch):
    """The script, shipping into ``tmp_path/pretrained``, run from ``tmp_path``."""
    script = load_script("ship_detector")
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    monkeypatch.setattr(script, "PRETRAINED_DIR", pretrained)
    monkeypatch.chdir(tmp_path)
    return script


def test_ship_writes_a_loadable_detector_and_a_card(
    tmp_path, ship, streams, detector_path, separator_path
):
    from deepsampler.detection.checkpoint import load_detector

    pretrained = ship.PRETRAINED_DIR
    run = run_folder(tmp_path / "run", detector_path)
    mix = run_folder(tmp_path / "mix", make_detector(tmp_path / "mix.pt", None, seed=1))
    argv = ["--run", str(run), "--name", "siren-test", "--streams", str(streams)]
    argv += ["--baseline", str(mix), "--title", "a test's detector"]
    assert ship.main(argv) == 0

    loaded, settings = load_detector(pretrained / "siren-test.pt")
    original, _ = load_detector(detector_path)
    shipped, trained = loaded.model.state_dict(), original.model.state_dict()
    assert shipped.keys() == trained.keys()
    assert all(torch.equal(shipped[k], trained[k]) for k in trained)
    assert settings.separator == str(separator_path)
    bench = json.loads((tmp_path / "experiments/cards/siren-test/events.json").read_text())
    assert [r["detector"] for r in bench["detectors"]] == [
        str(run / "checkpoints/best.pt"),
        str(mix / "checkpoints/best.pt"),
    ]
    row = bench["detectors"][0]
    assert loaded.metadata["results"]["event_f1"] == row["event_f1"]

    text = (pretrained / "siren-test.md").read_text()
    assert text.startswith("# siren-test\n\na test's detector")
    assert bench["table"].strip() in text
    assert "| event F1 | >= 0.8 |" in text and "| median alert delay (s) | <= 1 |" in text
    ship_line = next(ln for ln in text.splitlines() if ln.startswith(".venv/bin/python scripts/"))
    words = shlex.split(ship_line)
    assert words[:2] == [".venv/bin/python", "scripts/ship_detector.py"]
    parser = ship.build_parser()
    assert vars(parser.parse_args(words[2:])) == vars(parser.parse_args(argv))


def test_a_baseline_that_reads_a_separator_is_refused(tmp_path, monkeypatch, detector_path):
    ship = load_script("ship_detector")
    monkeypatch.setattr(ship, "PRETRAINED_DIR", tmp_path)
    run = run_folder(tmp_path / "run", detector_path)
    with pytest.raises(SystemExit):
        ship.main(
            ["--run", str(run), "--name", "x", "--streams", str(tmp_path), "--baseline", str(run)]
        )
    assert not (tmp_path / "x.pt").exists()


def test_best_rule_ships_the_chosen_rule_and_says_where_it_was_chosen(
    tmp_path, ship, streams, detector_path
):
    """``--checkpoint best-rule`` ships ``best-rule.pt`` (the rule choose_event_rule wrote) and
    the card names the valid streams the rule was chosen on and the rule, look-back included."""
    from dataclasses import replace

    from deepsampler.detection.checkpoint import load_detector, save_detector
    from deepsampler.detection.events import EventConfig

    pretrained = ship.PRETRAINED_DIR
    run = run_folder(tmp_path / "run", detector_path)
    loaded, settings = load_detector(detector_path)
    rule = EventConfig(0.8, 0.6, 1.0, 0.5, 0.1)
    save_detector(
        run / "checkpoints" / "best-rule.pt",
        loaded.model,
        replace(settings, events=rule),
        training=loaded.training,
    )
    chosen = {"rule": {}, "event_f1": 0.75, "segment_f1": 0.875}
    record = {"streams": "experiments/valid-x", "split": "valid", "chosen": chosen}
    record |= {"max_false_alarms_per_minute": 1.0, "grid": [chosen] * 3}
    (run / "event-rule.json").write_text(json.dumps(record))
    argv = ["--run", str(run), "--name", "siren-rule", "--streams", str(streams)]
    assert ship.main([*argv, "--checkpoint", "best-rule"]) == 0
    _, shipped = load_detector(pretrained / "siren-rule.pt")
    assert shipped.events == rule
    text = (pretrained / "siren-rule.md").read_text()
    assert "on above 0.8, off below 0.6" in text and "frames above 0.1" in text
    assert "chosen on `experiments/valid-x` (valid split" in text and "among 3 rules" in text
    assert "event F1 0.750, segment F1 0.875" in text
