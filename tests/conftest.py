"""Shared fixtures: small generated audio files and a tiny model checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.models import DeepSampler, preset_config, save_checkpoint

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two pytest-xdist workers share the machine's cores: one intra-op thread each, or the
    # workers' thread pools fight over the cores and every torch test gets slower
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """ONNX exports the tests make (``stream`` defaults to the onnx engine) go to a folder of
    the session, never the user's ~/.cache; the export of a model is shared by the tests."""
    import os

    folder = tmp_path_factory.mktemp("deepsampler-cache")
    previous = os.environ.get("DEEPSAMPLER_CACHE")
    os.environ["DEEPSAMPLER_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("DEEPSAMPLER_CACHE", None)
    else:
        os.environ["DEEPSAMPLER_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_config():
    return preset_config("tiny")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_config) -> Path:
    """A tiny model whose checkpoint carries a (test) training record, so Separator accepts it."""
    torch.manual_seed(0)
    model = DeepSampler(tiny_config)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(
        path,
        model,
        training={"purpose": "test fixture, random init"},
        metadata={"name": "tiny-test"},
    )
    return path


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory, tiny_config) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "untrained.pt"
    save_checkpoint(path, DeepSampler(tiny_config), training=None)
    return path


def write_tone(
    path: Path | BinaryIO,
    seconds: float = 1.5,
    sr: int = 22050,
    channels: int = 2,
    subtype: str | None = None,
    seed: int = 0,
    fmt: str | None = None,
) -> np.ndarray:
    """Write a tone-plus-noise test file (or into a binary buffer, with ``fmt``); return its
    ``[c, n]`` samples."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    audio = np.stack(
        [
            0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(n)
            for c in range(channels)
        ]
    ).astype(np.float32)
    target = path if hasattr(path, "write") else str(path)
    sf.write(target, audio.T, sr, subtype=subtype, format=fmt)
    return audio


def continue_from_clone(engine, state, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stream ``rest`` and flush twice, from ``state`` and from a clone taken before: asserts
    both give the same samples and returns them (``rest``'s output, the tail)."""
    saved = state.clone()
    a, state = engine.step(rest, state)
    a_tail, _ = engine.flush(state)
    b, restored = engine.step(rest, saved)
    b_tail, _ = engine.flush(restored)
    assert torch.equal(a, b) and torch.equal(a_tail, b_tail)
    return a, a_tail
