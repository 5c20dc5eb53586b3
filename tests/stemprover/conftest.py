"""Tiny StemProver models and a tiny corpus, so the tests run in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.stemprover.diffusion import DiffusionConfig
from deepsampler.stemprover.features import FeatureConfig
from deepsampler.stemprover.model import StemProver, StemProverConfig

RATE = 16000
SOURCES = ("vocals", "drums", "bass", "other")


def tiny_config() -> StemProverConfig:
    return StemProverConfig(
        sample_rate=RATE,
        features=FeatureConfig(n_fft=256, hop=64),
        latent_channels=4,
        autoencoder_width=8,
        denoiser_width=8,
        bands=4,
        heads=2,
        phase_width=4,
        lora_rank=2,
        diffusion=DiffusionConfig(steps=2, strength=0.5),
    )


@pytest.fixture
def tiny_model() -> StemProver:
    import torch

    torch.manual_seed(0)
    return StemProver(tiny_config()).eval()


def write_corpus(root: Path, tracks: int = 2, seconds: float = 2.0) -> Path:
    """``root/train/<track>/{sources,mixture}.wav``: tones, noise bursts, a bass line (mono)."""
    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    for i in range(tracks):
        folder = root / "train" / f"track{i}"
        folder.mkdir(parents=True)
        stems = {
            "vocals": 0.2 * np.sin(2 * np.pi * (300 + 50 * i) * t) * (1 + np.sin(2 * np.pi * t)),
            "drums": 0.3 * rng.standard_normal(n) * (np.sin(2 * np.pi * 4 * t) > 0.7),
            "bass": 0.3 * np.sin(2 * np.pi * (60 + 10 * i) * t),
            "other": 0.1 * rng.standard_normal(n),
        }
        for name, x in stems.items():
            sf.write(folder / f"{name}.wav", x.astype(np.float32), RATE, subtype="FLOAT")
        mix = sum(stems.values())
        sf.write(folder / "mixture.wav", mix.astype(np.float32), RATE, subtype="FLOAT")
    return root
