"""Training a detector in the trainer (``task: detect``) on a generated siren corpus, then
``deepsampler detect`` and ``stream --detect`` end to end with it: a wail inserted at a known
time is found within a 1 s collar, a siren-free file gives no event, bad input one line."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from deepsampler.cli import main
from deepsampler.detection import Detector, load_detector
from deepsampler.models import load_checkpoint
from deepsampler.models.sde import SDEConfig
from deepsampler.training.config import load_train_config
from deepsampler.training.detect import (
    DetectorTrainer,
    frame_labels,
    gate_envelopes,
    roc_auc,
)
from deepsampler.training.state import load_state
from tests.detection.conftest import SR, detect_train_config, make_corpus, street

COLLAR = 1.0  # s, the event-based scoring's onset collar (issue 27)
SIREN = (4.0, 9.0)  # where the test file's siren sounds (s)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("sirens"), {"train": 8, "valid": 2})


@pytest.fixture(scope="module")
def trained(corpus, separator_path, tmp_path_factory) -> Path:
    """A detector trained for 80 steps (about 20 s) through `deepsampler train`."""
    folder = tmp_path_factory.mktemp("run")
    cfg = detect_train_config(corpus, separator_path, steps=80, valid_every=40)
    (folder / "sde.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(folder / "sde.yaml"), "--out", str(folder), "-q"]) == 0
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    paths = {
        "street": folder / "street.wav",
        "quiet": folder / "quiet.wav",
        "silent": folder / "silent.wav",
        "corrupt": folder / "corrupt.wav",
    }
    sf.write(paths["street"], street(12.0, 11, SIREN)[0], SR)
    sf.write(paths["quiet"], street(6.0, 12, None)[0], SR)
    sf.write(paths["silent"], np.zeros(SR, np.float32), SR)
    paths["corrupt"].write_text("not audio at all\n")
    return paths


def test_training_writes_a_detector_that_names_its_separator(trained, separator_path, capsys):
    lines = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [40, 80]
    assert {"f1", "precision", "recall", "auc", "loss"} <= set(lines[-1])
    best = max(x["f1"] for x in lines)
    assert best > 0.8 and lines[-1]["auc"] > 0.9
    loaded, settings = load_detector(trained / "checkpoints" / "best.pt")
    assert settings.separator == str(separator_path)
    assert settings.separator_digest == load_checkpoint(separator_path).digest
    assert loaded.training["valid"]["f1"] == pytest.approx(best, abs=1e-4)
    assert (trained / "checkpoints" / "final.pt").is_file()


def test_detect_finds_the_siren_within_the_collar(trained, files, tmp_path, capsys):
    model = trained / "checkpoints" / "best.pt"
    out = tmp_path / "out"
    args = [
        "detect",
        files["street"],
        files["quiet"],
        "--model",
        model,
        "--jsonl",
        out / "events.jsonl",
    ]
    args += ["--plot", "--plot-dir", out]
    assert main([str(a) for a in args]) == 0
    captured = capsys.readouterr()
    rows = [line.split("  ") for line in captured.out.splitlines()]
    assert len(rows) == 1, captured.out  # one event, and nothing from the siren-free file
    file, onset, offset, label, confidence = rows[0]
    assert file == str(files["street"]) and label == "siren"
    assert abs(float(onset) - SIREN[0]) <= COLLAR and abs(float(offset) - SIREN[1]) <= COLLAR
    assert 0.5 < float(confidence) <= 1
    (record,) = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert record["file"] == str(files["street"]) and record["label"] == "siren"
    assert record["onset"] == pytest.approx(float(onset), abs=0.01)
    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "quiet-detect.png",
        "street-detect.png",
    ]
    assert "quiet.wav: no siren detected" in captured.err


def test_bad_inputs_give_one_line_each_and_no_files(trained, files, tmp_path, capsys):
    model = trained / "checkpoints" / "best.pt"
    out = tmp_path / "out"
    inputs = [files["silent"], files["corrupt"], tmp_path / "missing.wav", files["street"]]
    args = [
        "detect",
        *inputs,
        "--model",
        model,
        "--jsonl",
        out / "e.jsonl",
        "--plot",
        "--plot-dir",
        out,
    ]
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("deepsampler: error: ")]
    assert len(errors) == 4, err
    assert "silent.wav: is silent" in errors[0]
    assert "corrupt.wav" in errors[1] and "missing.wav" in errors[2]
    assert "3 of 4 input(s) failed" in errors[3] and "e.jsonl not written" in errors[3]
    # the good file still gets its plot; no events file, nothing half-written
    assert sorted(p.name for p in out.iterdir()) == ["street-detect.png"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("separator", "a separator checkpoint, not a sound-event detector"),
        (None, "no siren detector is shipped yet"),
    ],
)
def test_wrong_model_is_one_line_before_any_work(
    model, message, files, separator_path, tmp_path, capsys, monkeypatch
):
    import deepsampler.detection.detector as detector_module

    monkeypatch.setattr(detector_module, "shipped_models", lambda: {})  # none shipped
    args = ["detect", str(files["street"]), "--jsonl", str(tmp_path / "e.jsonl")]
    args += ["--model", str(separator_path)] if model else []
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsampler: error: ") and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_stream_detect_prints_start_and_end_alerts(trained, files, capsys):
    model = str(trained / "checkpoints" / "best.pt")
    base = ["stream", "--detect", "--detector", model, "--engine", "torch"]
    before = set(threading.enumerate())  # other tests in this process may have left their own
    assert main([*base, "--input", str(files["street"])]) == 0
    out = capsys.readouterr().out
    alerts = [line for line in out.splitlines() if line.startswith("ALERT")]
    assert len(alerts) == 2, out
    assert alerts[0].startswith("ALERT siren started") and alerts[1].startswith("ALERT siren ended")
    onset = float(alerts[0].split("(onset ")[1].split(" s")[0])
    assert abs(onset - SIREN[0]) <= COLLAR and "since onset" in alerts[0]
    assert "detection: 1 siren event(s)" in out
    # and the same detector finds nothing in the siren-free file
    assert main([*base, "--input", str(files["quiet"])]) == 0
    assert "ALERT" not in capsys.readouterr().out
    # a corrupt file: one line, and the detector's thread ends with the run
    assert main([*base, "--input", str(files["corrupt"]), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"deepsampler: error: {files['corrupt']}")
    assert not [t for t in set(threading.enumerate()) - before if t.name.endswith("(_loop)")]


def test_stream_detect_refuses_another_separator(trained, files, capsys, tiny_checkpoint):
    model = str(trained / "checkpoints" / "best.pt")
    args = ["stream", "--input", str(files["street"]), "--detect", "--detector", model]
    assert main([*args, "--model", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reads the stems of" in err[0]


def test_detector_on_the_files_from_python(trained, files):
    det = Detector(trained / "checkpoints" / "best.pt")
    x, sr = sf.read(files["street"], dtype="float32")
    (event,) = det.detect(x, sr)
    assert abs(event.onset - SIREN[0]) <= COLLAR
    alerts = []
    stream = det.stream(engine="torch")
    for i in range(0, x.size, 4000):
        alerts += stream.push(x[i : i + 4000])
    alerts += stream.finish()
    start = next(a for a in alerts if a.kind == "start")
    assert start.onset == event.onset
    # alerted within a second and a half of the true onset (min length 0.5 s + latency)
    assert 0 < start.time - SIREN[0] <= 1.5


def test_clean_stop_and_resume_equals_uninterrupted(corpus, separator_path, tmp_path):
    base = detect_train_config(corpus, separator_path, steps=4, valid_every=4)
    base["detect"]["gate_probability"] = 0.5  # the gates' draws must resume too
    cfg = load_train_config(None, base=base)
    DetectorTrainer(cfg, tmp_path / "whole", progress=False).run()
    DetectorTrainer(cfg, tmp_path / "split", max_steps=2, progress=False).run()
    result = DetectorTrainer(cfg, tmp_path / "split", progress=False).run()
    assert result.resumed_from == 2 and result.step == 4 and result.score == "F1"
    a = load_state(tmp_path / "whole" / "checkpoints" / "last.pt")["model"]
    b = load_state(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def test_frame_labels_follow_the_siren_stems_energy():
    cfg = SDEConfig(sample_rate=SR, n_fft=512, hop=256)
    n = SR
    rng = np.random.default_rng(0)
    background = torch.from_numpy(0.1 * rng.standard_normal(n).astype(np.float32))[None]
    siren = torch.zeros(1, n)
    siren[0, 4000:8000] = 0.1  # level with the background: 0 dB
    siren[0, 10000:12000] = 0.001  # 40 dB under it: buried
    labels = frame_labels(siren, siren + background, cfg, ratio_db=-20.0, floor_db=-60.0)[0]
    frames = np.arange(labels.numel()) * cfg.hop
    inside = (frames >= 4000) & (frames + cfg.n_fft <= 8000)
    assert labels[torch.from_numpy(inside)].min() == 1
    assert labels[torch.from_numpy(frames >= 9000)].max() == 0
    assert labels[torch.from_numpy(frames + cfg.n_fft <= 3000)].max() == 0


def test_gate_envelopes_switch_the_siren_inside_the_example():
    """Gated examples start silent, end silent, or both (then with at least 1 s at full level),
    with one monotone rise and/or fall in [0, 1]; examples not gated keep their siren whole."""
    torch.manual_seed(0)
    n, sr = 6 * SR, SR
    gated = torch.arange(400) % 4 != 0
    env = gate_envelopes(gated, n, sr)
    assert env.shape == (400, n) and env.min() >= 0 and env.max() <= 1
    assert torch.equal(env[~gated], torch.ones(int((~gated).sum()), n))
    kinds = set()
    for e in env[gated]:
        starts_off, ends_off = bool(e[0] < 1e-6), bool(e[-1] < 1e-6)
        kinds.add((starts_off, ends_off))
        assert starts_off or ends_off
        assert e.max() > 0.5
        if starts_off and ends_off:
            assert (e > 0.999).sum() >= sr  # a second at full level between the ramps
        peak = int(torch.argmax(e))
        d = torch.diff(e)
        assert bool((d[:peak] >= -1e-6).all() and (d[peak:] <= 1e-6).all())  # rise, then fall
    assert kinds == {(True, False), (False, True), (True, True)}
    # the same generator state gives the same gates
    torch.manual_seed(5)
    a = gate_envelopes(gated[:8], SR, sr)
    torch.manual_seed(5)
    assert torch.equal(a, gate_envelopes(gated[:8], SR, sr))


def test_roc_auc_counts_ordered_pairs():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert roc_auc(scores, labels) == pytest.approx(pairs)
    assert np.isnan(roc_auc(scores, np.zeros(60)))
