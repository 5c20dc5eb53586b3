"""The web app's fixtures: an app over the tiny test model in a data folder of the test."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

SR = 22050  # the tiny model's rate


def wav_bytes(seconds: float = 2.0, sr: int = SR, channels: int = 2, seed: int = 0) -> bytes:
    """A tone-plus-noise WAV file's bytes."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    audio = np.stack(
        [
            0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(n)
            for c in range(channels)
        ]
    ).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, audio.T, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path, tiny_checkpoint):
    """Settings over the tiny model (``tiny``), its live engine the eager one (no export)."""
    from deepsampler.web import Settings

    return Settings(
        data_dir=tmp_path / "web", models={"tiny": tiny_checkpoint}, engine="torch", max_live=2
    )


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from deepsampler.web import create_app

    with TestClient(create_app(settings)) as c:
        yield c
