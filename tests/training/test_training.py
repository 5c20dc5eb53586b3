"""`deepsampler train`: config loading, schedule, a two-step run, overfitting one example, exact
resume after a clean stop and after SIGKILL, and a 2-process gloo DDP run under torchrun."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from deepsampler.errors import ConfigError
from deepsampler.models import load_checkpoint
from deepsampler.training.config import config_to_yaml, load_train_config, parse_overrides
from deepsampler.training.schedule import warmup_cosine
from deepsampler.training.state import load_state
from deepsampler.training.trainer import Trainer
from tests.data.test_dataset import SOURCES, SR, make_corpus

VENV_BIN = Path(sys.executable).parent


def base_config(root: Path, **extra) -> dict:
    cfg = {
        "name": "t",
        "data_root": str(root),
        "model_preset": "tiny",
        "data": {
            "sample_rate": SR,
            "segment_seconds": 0.5,
            "examples_per_epoch": 8,
            "valid_examples": 4,
        },
        "steps": 2,
        "batch_size": 2,
        "num_workers": 0,
        "threads": 1,
        "valid_every": 2,
        "checkpoint_every": 1,
        "log_every": 1,
        "audio_examples": 1,
        "optim": {"lr": 3e-3, "warmup_steps": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    return cfg


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root, tracks=3, split="train")
    make_corpus(root, tracks=2, split="valid")
    return root


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_state(run / "checkpoints" / "last.pt")["model"]


def assert_same_weights(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-5, msg=k)


# ---- config ---------------------------------------------------------------------------------
def test_overrides_parse_yaml_values_into_nested_keys():
    tree = parse_overrides(["optim.lr=3e-4", "model.causal=false", "data.sources=[a,b]"])
    assert tree == {
        "optim": {"lr": 3e-4},
        "model": {"causal": False},
        "data": {"sources": ["a", "b"]},
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["steps"])


def test_config_rejects_unknown_and_misplaced_keys(corpus, tmp_path):
    cfg = base_config(corpus)
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(write_yaml(tmp_path / "a.yaml", {**cfg, "stepz": 3}))
    with pytest.raises(ConfigError, match="unknown key.*optim.lrr"):
        load_train_config(write_yaml(tmp_path / "b.yaml", cfg), ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="data.sample_rate"):
        load_train_config(write_yaml(tmp_path / "c.yaml", cfg), ["model.sample_rate=8000"])
    with pytest.raises(ConfigError, match="model section"):
        load_train_config(write_yaml(tmp_path / "d.yaml", cfg), ["model.n_fft=100"])
    with pytest.raises(ConfigError, match="needs 'data_root'"):
        load_train_config(write_yaml(tmp_path / "e.yaml", {"name": "x"}))
    with pytest.raises(ConfigError, match="expected an integer"):
        load_train_config(write_yaml(tmp_path / "f.yaml", cfg), ["steps=two"])


def test_resolved_config_reads_back_unchanged(corpus, tmp_path):
    cfg = load_train_config(write_yaml(tmp_path / "a.yaml", base_config(corpus)), ["steps=7"])
    again = load_train_config(write_yaml(tmp_path / "b.yaml", yaml.safe_load(config_to_yaml(cfg))))
    assert again == cfg and again.steps == 7
    model = cfg.model_config()
    assert model.sample_rate == SR and model.sources == cfg.data.sources


def test_shipped_presets_validate():
    from deepsampler.stemprover.train import load_stemprover_config

    for path in sorted(Path("configs").glob("*.yaml")):
        if path.stem.startswith("stemprover"):  # StemProver presets have their own schema
            assert load_stemprover_config(path).name == path.stem
            continue
        config = load_train_config(path)
        assert config.name == path.stem
        config.model_config()


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(99, 100, 10, 0.1) == pytest.approx(0.1)
    mid = warmup_cosine(10 + 89 // 2, 100, 10, 0.1)
    assert 0.5 < mid < 0.6
    values = [warmup_cosine(s, 100, 10, 0.1) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


# ---- runs -----------------------------------------------------------------------------------
def test_two_step_run_writes_everything(corpus, tmp_path):
    config = load_train_config(write_yaml(tmp_path / "c.yaml", base_config(corpus)))
    run = tmp_path / "run"
    result = Trainer(config, run, progress=False).run()
    assert result.finished and result.step == 2 and result.resumed_from is None
    assert math.isfinite(result.last_loss) and result.best_step == 2
    assert (run / "config.yaml").is_file()
    assert load_train_config(run / "config.yaml") == config
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best.trained and best.training["steps"] == 2
    assert best.training["examples_seen"] == 4
    assert best.model.config == config.model_config()
    assert load_checkpoint(run / "checkpoints" / "final.pt").training["steps"] == 2
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2] and set(lines[0]["per_source"]) == set(
        config.data.sources
    )
    assert list((run / "tb").glob("events.out.tfevents.*"))
    # training moved the weights away from their initialisation
    torch.manual_seed(config.seed)
    from deepsampler.models import DeepSampler

    init = DeepSampler(config.model_config()).state_dict()
    state = load_state(run / "checkpoints" / "last.pt")
    assert any(not torch.equal(init[k], state["model"][k]) for k in init)
    # running again does nothing more: the run is finished
    again = Trainer(config, run, progress=False).run()
    assert again.step == 2 and again.resumed_from == 2


def write_tonal_track(folder: Path, seconds: float = 2.0) -> None:
    """Four sources a mask can tell apart: tones at 200, 600, 1500 and 3000 Hz."""
    folder.mkdir(parents=True)
    t = np.arange(int(seconds * SR)) / SR
    for i, (name, hz) in enumerate(zip(SOURCES, (200, 600, 1500, 3000), strict=True)):
        tone = 0.2 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * (i + 1) * t))
        sf.write(str(folder / f"{name}.wav"), np.stack([tone, tone]).T, SR, subtype="FLOAT")


def test_tiny_model_overfits_one_example(tmp_path):
    root = tmp_path / "one"
    write_tonal_track(root / "train" / "song")
    write_tonal_track(root / "valid" / "song")
    cfg = base_config(
        root,
        steps=60,
        ema_decay=0.0,
        valid_every=1000,
        data={
            "segment_seconds": 2.0,  # the whole track: the same example every time
            "examples_per_epoch": 2,
            "gain_db": [0.0, 0.0],
            "channel_swap": 0.0,
            "remix_probability": 0.0,
        },
        batch_size=1,
        optim={"lr": 1e-2, "warmup_steps": 1, "min_lr_ratio": 1.0},
    )
    config = load_train_config(write_yaml(tmp_path / "c.yaml", cfg))
    first = Trainer(config, tmp_path / "a", max_steps=1, progress=False).run().last_loss
    last = Trainer(config, tmp_path / "a", progress=False).run()
    assert last.finished
    assert last.last_loss < 0.3 * first, (first, last.last_loss)
    assert last.validations[-1]["sdr"] > 10.0


def train_whole_and_split(cfg: dict, tmp_path: Path) -> None:
    """Train ``cfg`` (6 steps) uninterrupted into ``whole`` and, stopped cleanly after step 3 and
    resumed, into ``split``."""
    config = load_train_config(write_yaml(tmp_path / "c.yaml", cfg))
    Trainer(config, tmp_path / "whole", progress=False).run()
    part = Trainer(config, tmp_path / "split", max_steps=3, progress=False).run()
    assert part.step == 3 and not part.finished
    rest = Trainer(config, tmp_path / "split", progress=False).run()
    assert rest.resumed_from == 3 and rest.finished


def test_clean_stop_and_resume_equals_uninterrupted(corpus, tmp_path):
    train_whole_and_split(base_config(corpus, steps=6, valid_every=3, checkpoint_every=4), tmp_path)
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(tmp_path / "split"))
    whole_state = load_state(tmp_path / "whole" / "checkpoints" / "last.pt")
    split_state = load_state(tmp_path / "split" / "checkpoints" / "last.pt")
    assert_same_weights(whole_state["ema"], split_state["ema"])
    assert whole_state["epoch"] == split_state["epoch"] == 1  # 6 steps, 4 batches per epoch
    assert whole_state["batch_in_epoch"] == split_state["batch_in_epoch"] == 2


def test_resume_with_another_config_is_refused(corpus, tmp_path):
    config = load_train_config(write_yaml(tmp_path / "c.yaml", base_config(corpus, steps=3)))
    Trainer(config, tmp_path / "run", max_steps=1, progress=False).run()
    with pytest.raises(ConfigError, match="another config.*optim.lr"):
        Trainer(config.replace(optim=config.optim.__class__(lr=1.0)), tmp_path / "run").run()
    # how it is run may change
    done = Trainer(config.replace(log_every=5), tmp_path / "run", progress=False).run()
    assert done.finished


def test_a_run_from_before_a_new_config_field_resumes(corpus, tmp_path):
    """A field added to the config since a run began (loss.si_sdr, issue 26) reads as its
    default; set to anything else, it is a change and is refused."""
    config = load_train_config(write_yaml(tmp_path / "c.yaml", base_config(corpus, steps=3)))
    Trainer(config, tmp_path / "run", max_steps=1, progress=False).run()
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=False)
    del state["config"]["loss"]["si_sdr"]
    torch.save(state, path)
    with pytest.raises(ConfigError, match="another config.*loss.si_sdr"):
        Trainer(config.replace(loss=config.loss.__class__(si_sdr=0.01)), tmp_path / "run").run()
    # where step 0's weights came from may move (stages/): a resume reads its own state
    moved = config.replace(init_from=str(tmp_path / "elsewhere.pt"))
    assert Trainer(moved, tmp_path / "run", progress=False).run().finished


def run_cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [str(VENV_BIN / "deepsampler"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        **kw,
    )


def test_sigkill_and_resume_equals_uninterrupted(corpus, tmp_path):
    cfg = base_config(corpus, steps=24, valid_every=12, checkpoint_every=2)
    cfg["data"]["segment_seconds"] = 1.5  # slow enough steps to be killed mid-run
    path = write_yaml(tmp_path / "c.yaml", cfg)
    config = load_train_config(path)
    Trainer(config, tmp_path / "whole", progress=False).run()

    run = tmp_path / "killed"
    proc = run_cli("train", "--config", str(path), "--out", str(run), "-q")
    state = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_state(state)["step"]
    assert 0 < killed_at < 24, "the run was not killed mid-way"
    resumed = run_cli("train", "--config", str(path), "--out", str(run), "-q")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"resuming {run} at step {killed_at}" in out
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(run))


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(corpus, tmp_path):
    """2 processes x batch 1 take the same examples as 1 process x batch 2 (rank r gets items
    r, r+2, ...) and DDP averages their gradients, so the weights must agree. Slow: the default
    run checks the same with two torchrun "nodes" of one process (test_multinode.py)."""
    one = load_train_config(
        write_yaml(tmp_path / "one.yaml", base_config(corpus, steps=3, valid_every=3))
    )
    Trainer(one, tmp_path / "one", progress=False).run()
    two_path = write_yaml(
        tmp_path / "two.yaml", base_config(corpus, steps=3, valid_every=3, batch_size=1)
    )
    cmd = [
        str(VENV_BIN / "torchrun"),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "deepsampler.cli",
        "train",
        "--config",
        str(two_path),
        "--out",
        str(tmp_path / "two"),
        "-q",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("train: finished") == 1  # only rank 0 reports
    state = load_state(tmp_path / "two" / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and state["step"] == 3
    assert len(state["rng"]) == 2
    assert len(list((tmp_path / "two" / "tb").glob("events.out.tfevents.*"))) == 1
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 1
    best = load_checkpoint(tmp_path / "two" / "checkpoints" / "best.pt")
    assert best.training["examples_seen"] == 6
    assert_same_weights(final_weights(tmp_path / "one"), state["model"], atol=1e-5)
