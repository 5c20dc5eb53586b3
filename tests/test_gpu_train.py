"""The GPU training path, tested on the CPU: ``scripts/gpu_pack.py pack`` (an excerpt corpus of a
config under the device tool's 64 MiB), ``scripts/gpu_train.sh`` (unpack, train at batch 32,
return the run: here with ``device=cpu`` and a tiny model), and ``gpu_pack.py resume`` (the
returned ``last.pt`` going on here at another batch size, or going on there from a state packed
here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from deepsampler.errors import ConfigError
from deepsampler.training.config import load_train_config
from deepsampler.training.state import load_state
from deepsampler.training.trainer import Trainer
from tests.data.test_dataset import SR, make_corpus
from tests.scripts_loader import SCRIPTS, load_script

SOURCES = ("speech", "noise")  # not music4: the pack takes the config's sources
SECONDS = 1.5  # excerpt length (s); the corpus's tracks are 2, 3 and 4 s
STEPS = 6


@pytest.fixture(scope="module")
def scripts() -> SimpleNamespace:
    """The scripts as modules (gpu_pack imports its sibling pack_excerpts from scripts/)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(SCRIPTS))
        return SimpleNamespace(
            pack=load_script("gpu_pack"),
            excerpts=load_script("pack_excerpts"),
            unpack=load_script("unpack_excerpts"),
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> SimpleNamespace:
    """A mono 8 kHz speech/noise corpus (3 train, 2 valid tracks) and a tiny model's config."""
    root = tmp_path_factory.mktemp("gpu-corpus")
    stems = {
        split: make_corpus(root, tracks=n, split=split, sources=SOURCES, channels=1)
        for split, n in (("train", 3), ("valid", 2))
    }
    config = {
        "name": "gpu-test",
        "data_root": str(root),
        "model_preset": "tiny",
        "data": {
            "sources": list(SOURCES),
            "sample_rate": SR,
            "channels": 1,
            "segment_seconds": 0.5,
            "channel_swap": 0.0,
            "examples_per_epoch": 64,  # two batches of the GPU's 32
            "valid_examples": 4,
        },
        "steps": STEPS,
        "batch_size": 4,
        "num_workers": 0,
        "threads": 1,
        "valid_every": 3,
        "checkpoint_every": 1,
        "log_every": 1,
        "audio_examples": 0,
        "optim": {"lr": 3e-3, "warmup_steps": 1},
    }
    path = root / "gpu-test.yaml"
    path.write_text(yaml.safe_dump(config))
    nogit = root / "not-a-checkout"  # what travels besides the pack is not counted there
    nogit.mkdir()
    return SimpleNamespace(root=root, stems=stems, config=path, nogit=nogit)


def pack(scripts, corpus, dest: Path, *extra: str) -> None:
    scripts.pack.main(
        [
            "pack",
            "--config",
            str(corpus.config),
            "--tracks",
            "3",
            "--valid-tracks",
            "2",
            "--seconds",
            str(SECONDS),
            "--dest",
            str(dest),
            "--tree",
            str(corpus.nogit),
            *extra,
        ]
    )


def gpu_train(corpus, data: Path, out: Path, work: Path, *overrides: str, **env: str):
    """Run scripts/gpu_train.sh as the device tool would, on the CPU (one thread, no workers)."""
    environment = {
        **os.environ,
        "OUT": str(out),
        "WORK": str(work),
        "DATA": str(data),
        "PY": sys.executable,
        "MINUTES": "2",
        **env,
    }
    args = [str(corpus.config), "device=cpu", "threads=1", "num_workers=0", *overrides]
    return subprocess.run(
        ["bash", str(SCRIPTS / "gpu_train.sh"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def gpu_run(scripts, corpus, tmp_path_factory) -> SimpleNamespace:
    """A packed corpus and a "GPU" run of 3 of its 6 steps at batch 32, on the CPU."""
    base = tmp_path_factory.mktemp("gpu-run")
    packed, out, work = base / "packed", base / "out", base / "work"
    pack(scripts, corpus, packed)
    done = gpu_train(corpus, packed, out, work, MAX_STEPS="3")
    assert done.returncode == 0, done.stdout + done.stderr
    return SimpleNamespace(packed=packed, out=out, work=work, log=done.stdout)


def test_gpu_train_returns_the_run(gpu_run):
    out = gpu_run.out
    assert sorted(p.name for p in out.iterdir()) == [
        "best.pt",
        "config.yaml",
        "last.pt",
        "metrics.jsonl",
        "train.log",
    ]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["batch_size"] == 32 and config["amp"] is True and config["device"] == "cpu"
    assert config["data_root"] == str(gpu_run.work / "data")
    assert load_state(out / "last.pt")["step"] == 3
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3]
    assert "stopped" in (out / "train.log").read_text()


def test_packed_corpus_round_trips(gpu_run, corpus, scripts):
    manifest = json.loads((gpu_run.packed / "pack.json").read_text())
    assert manifest["sources"] == list(SOURCES)
    assert {k: v["tracks"] for k, v in manifest["splits"].items()} == {"train": 3, "valid": 2}
    n = int(SECONDS * SR)
    for split, tracks in corpus.stems.items():
        packed = gpu_run.packed / split
        assert sorted(p.name for p in packed.iterdir()) == sorted(tracks)
        for name, original in tracks.items():
            # no mixture travels: the sum of the stems is written back on the GPU machine
            assert sorted(p.name for p in (packed / name).iterdir()) == [
                "noise.flac",
                "speech.flac",
            ]
            unpacked = gpu_run.work / "data" / split / name
            stems = {s: x.T for s, x in original.items()}  # [n, c] as the packer reads them
            start = scripts.excerpts.busiest_window(stems, n, SR)
            back = {}
            for s in SOURCES:
                back[s], rate = sf.read(unpacked / f"{s}.wav", dtype="float32", always_2d=True)
                assert rate == SR and back[s].shape == (n, 1)
                # 16-bit FLAC: within a few quantisation steps of the original window
                np.testing.assert_allclose(back[s], stems[s][start : start + n], atol=1e-4)
            mixture, _ = sf.read(unpacked / "mixture.wav", dtype="float32", always_2d=True)
            np.testing.assert_allclose(mixture, back["speech"] + back["noise"], atol=1e-4)


def test_vorbis_pack_round_trips_within_codec_error(corpus, scripts, tmp_path):
    packed = tmp_path / "packed"
    count, size = scripts.excerpts.pack_split(
        corpus.root / "valid", packed / "valid", sources=SOURCES, seconds=SECONDS, vorbis=0.3
    )
    assert count == 2 and size > 0
    assert scripts.unpack.unpack(packed, tmp_path / "wav") == 2
    n = int(SECONDS * SR)
    for name, original in corpus.stems["valid"].items():
        stems = {s: x.T for s, x in original.items()}
        start = scripts.excerpts.busiest_window(stems, n, SR)
        for s in SOURCES:
            back, _ = sf.read(tmp_path / "wav" / "valid" / name / f"{s}.wav", always_2d=True)
            ref = stems[s][start : start + n]
            assert back.shape == ref.shape
            snr = 10 * np.log10(np.sum(ref**2) / np.sum((back - ref) ** 2))
            assert snr > 10, (name, s, snr)  # white noise is Vorbis's worst case: ~17 dB


def test_unpack_refuses_tracks_with_other_sources(scripts, tmp_path):
    for track, sources in (("a", SOURCES), ("b", ("speech",))):
        for s in sources:
            path = tmp_path / "packed" / "train" / track / f"{s}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.zeros(800, dtype=np.float32), SR)
    with pytest.raises(SystemExit, match="must share their sources"):
        scripts.unpack.unpack(tmp_path / "packed", tmp_path / "wav")


def test_pack_refuses_over_the_budget_and_removes_the_pack(scripts, corpus, tmp_path):
    dest = tmp_path / "packed"
    with pytest.raises(SystemExit, match="over the device tool's 0.01 MiB"):
        pack(scripts, corpus, dest, "--budget-mib", "0.01")
    assert not dest.exists()  # an oversized pack would make every device call fail


def test_travelling_size_counts_what_git_sends(scripts, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    sizes = {"tracked.bin": 1000, "untracked.bin": 500, "ignored.bin": 300, "pack/a.flac": 200}
    for name, size in sizes.items():
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_bytes(b"x" * size)
    (repo / ".gitignore").write_text("ignored.bin\n")
    subprocess.run(["git", "-C", str(repo), "add", "tracked.bin"], check=True)
    got = scripts.pack.tree_bytes(repo, [repo / "pack"])  # the pack is counted on its own
    assert got == 1000 + 500 + len("ignored.bin\n")
    assert scripts.pack.tree_bytes(tmp_path / "nowhere", []) is None


def test_trainer_alone_refuses_the_gpu_state_here(gpu_run, corpus, tmp_path):
    """Why ``resume`` exists: the GPU run's config (batch 32, its corpus folder, its device) is
    not this one, and the trainer resumes only its own."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes((gpu_run.out / "last.pt").read_bytes())
    config = load_train_config(corpus.config, ["batch_size=2"])
    with pytest.raises(ConfigError, match="another config"):
        Trainer(config, run, progress=False).run()


def test_cpu_resume_continues_the_step_count(gpu_run, corpus, scripts, tmp_path):
    run = tmp_path / "run"
    args = ["--config", str(corpus.config), "--out", str(run), "batch_size=2"]
    scripts.pack.main(["resume", str(gpu_run.out / "last.pt"), *args])
    returned, adopted = load_state(gpu_run.out / "last.pt"), load_state(run / "checkpoints/last.pt")
    for key, value in returned["model"].items():  # the weights are the GPU run's
        torch.testing.assert_close(adopted["model"][key], value, rtol=0, atol=0)
    assert adopted["config"]["batch_size"] == 2 and adopted["best_sdr"] is None
    with pytest.raises(SystemExit, match="a run is there already"):
        scripts.pack.main(["resume", str(gpu_run.out / "last.pt"), *args])
    config = load_train_config(corpus.config, ["batch_size=2"])
    result = Trainer(config, run, progress=False).run()
    assert (result.resumed_from, result.step, result.finished) == (3, STEPS, True)
    assert (run / "checkpoints" / "best.pt").is_file()  # the first validation here is the best


def test_adopt_state_takes_the_new_optimizer_and_refuses_another_network(gpu_run, corpus, scripts):
    state = scripts.pack.read_state(gpu_run.out / "last.pt")
    epoch, in_epoch = state["epoch"], state["batch_in_epoch"]
    config = load_train_config(corpus.config, ["optim.lr=1e-3", "batch_size=2"])
    changed = scripts.pack.adopt_state(state, config)
    assert {"batch_size", "data_root", "device", "optim.lr"} <= set(changed)
    assert state["epoch"] == epoch + (in_epoch > 0) and state["batch_in_epoch"] == 0
    (group,) = state["optimizer"]["param_groups"]
    assert group["initial_lr"] == 1e-3 and state["scheduler"]["base_lrs"] == [1e-3]
    same = scripts.pack.read_state(gpu_run.out / "last.pt")
    assert scripts.pack.adopt_state(same, load_train_config(gpu_run.out / "config.yaml")) == []
    other = load_train_config(corpus.config, ["data.sources=[speech,noise,music]"])
    with pytest.raises(SystemExit, match="another network"):
        scripts.pack.adopt_state(scripts.pack.read_state(gpu_run.out / "last.pt"), other)


def test_pack_init_model_checkpoints(gpu_run, corpus, scripts, tmp_path):
    dest = tmp_path / "packed"
    pack(scripts, corpus, dest, "--init", str(gpu_run.out / "best.pt"))
    assert (dest / "init" / "init.pt").read_bytes() == (gpu_run.out / "best.pt").read_bytes()
    # a file git tracks travels with the working tree: only its name is packed
    repo = tmp_path / "repo"
    (repo / "stages").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "stages" / "s1.pt").write_bytes((gpu_run.out / "best.pt").read_bytes())
    subprocess.run(["git", "-C", str(repo), "add", "stages/s1.pt"], check=True)
    scripts.pack.main(
        ["pack", "--config", str(corpus.config), "--dest", str(tmp_path / "p2"), "--tracks", "1"]
        + ["--valid-tracks", "1", "--tree", str(repo), "--init", str(repo / "stages" / "s1.pt")]
    )
    assert (tmp_path / "p2" / "init" / "init_from.txt").read_text() == "stages/s1.pt\n"
    assert not (tmp_path / "p2" / "init" / "init.pt").exists()
    # weights of another network are refused here, before any device time is spent
    with pytest.raises(SystemExit, match="--init speech-rt: weights do not fit"):
        pack(scripts, corpus, tmp_path / "p3", "--init", "speech-rt")


def test_gpu_train_continues_a_packed_state_and_splits_big_files(gpu_run, corpus, scripts):
    base = gpu_run.out.parent
    packed, out = base / "packed-init", base / "out-init"
    pack(scripts, corpus, packed, "--init", str(gpu_run.out / "last.pt"))
    # files over PART_BYTES come back in pieces (the device tool returns files up to 16 MiB)
    done = gpu_train(corpus, packed, out, base / "work-init", PART_BYTES="200000")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming" in done.stdout and "at step 3" in done.stdout
    assert not (out / "last.pt").exists() and (out / "last.pt.part00").is_file()
    assert scripts.pack.read_state(out / "last.pt")["step"] == STEPS  # joined again


def test_gpu_train_needs_a_pack(corpus, tmp_path):
    done = gpu_train(corpus, tmp_path / "missing", tmp_path / "out", tmp_path / "work")
    assert done.returncode == 2 and "pack it first" in done.stderr


def test_pack_excerpts_cli_takes_other_sources_and_keeps_a_mixture(corpus, scripts, tmp_path):
    out = tmp_path / "valid"
    scripts.excerpts.main(
        ["--data", str(corpus.root / "valid"), "--out", str(out), "--sources", "speech,noise"]
        + ["--seconds", str(SECONDS), "--mono"]
    )
    n = int(SECONDS * SR)
    for name, original in corpus.stems["valid"].items():
        stems = {s: x.T for s, x in original.items()}
        start = scripts.excerpts.busiest_window(stems, n, SR)
        mixture, _ = sf.read(out / name / "mixture.flac", dtype="float32", always_2d=True)
        expected = sum(stems.values())[start : start + n]  # the corpus's mixture file
        np.testing.assert_allclose(mixture, expected, atol=1e-4)
    with pytest.raises(SystemExit, match="no <track>/ folders"):
        scripts.excerpts.main(["--data", str(corpus.root / "valid"), "--out", str(out)])
