"""Detection fixtures: a tiny siren/background separator, tiny detectors over it (random
weights: the plumbing tests need no skill), and synthetic sirens in noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepsampler.detection import DetectionSettings, EventConfig, save_detector
from deepsampler.models import DeepSampler, load_checkpoint, preset_config, save_checkpoint
from deepsampler.models.sde import SDEConfig, SDEModel

SR = 16000
TINY_SDE = dict(
    sample_rate=SR, n_fft=512, hop=256, n_mels=16, channels=16, dilations=(1, 2), gru=16
)


def wail(seconds: float, sr: int = SR, lo: float = 600.0, hi: float = 1500.0) -> np.ndarray:
    """A wail siren ``[n]``: a harmonic tone sweeping ``lo``..``hi`` Hz and back every 2 s."""
    t = np.arange(int(seconds * sr)) / sr
    freq = lo + (hi - lo) * 0.5 * (1 - np.cos(2 * np.pi * t / 2.0))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    return (tone / np.abs(tone).max()).astype(np.float32)


def fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples."""
    return np.pad(x[:n], (0, max(0, n - x.size)))


def noise(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """Brownish noise ``[n]`` (street-like: most energy low) at about -26 dBFS RMS."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * sr))
    spectrum = np.fft.rfft(white) / np.sqrt(1 + np.fft.rfftfreq(white.size, 1 / sr) / 200)
    x = np.fft.irfft(spectrum, white.size)
    return (0.05 * x / x.std()).astype(np.float32)


def street(seconds: float, seed: int, siren_at: tuple[float, float] | None, snr_db: float = 0.0):
    """Noise with a wail from ``siren_at[0]`` to ``siren_at[1]`` s at ``snr_db`` (RMS while it
    sounds, against the noise): ``[1, n]`` mixture."""
    x = noise(seconds, seed)
    if siren_at is not None:
        a, b = (int(s * SR) for s in siren_at)
        s = fit(wail((b - a) / SR), b - a)
        s *= x.std() * 10 ** (snr_db / 20) / s.std()
        ramp = np.minimum(1.0, np.arange(s.size) / (0.05 * SR))
        x[a:b] += s * ramp * ramp[::-1]
    return x[None]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these tests run frame-sized work, which more threads only slow down
    (and a busy machine slows them down a lot)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def separator_path(tmp_path_factory) -> Path:
    """A tiny causal siren/background separator (random weights, a test training record)."""
    torch.manual_seed(0)
    cfg = preset_config(
        "tiny", sources=("siren", "background"), sample_rate=SR, audio_channels=1, attn_window=16
    )
    path = tmp_path_factory.mktemp("sep") / "tiny-siren.pt"
    save_checkpoint(path, DeepSampler(cfg), training={"purpose": "test"}, metadata={"name": "t"})
    return path


def make_detector(
    path: Path, separator: Path | None, events: EventConfig | None = None, seed: int = 0, **cfg
) -> Path:
    torch.manual_seed(seed)
    model = SDEModel(SDEConfig(**{**TINY_SDE, "use_separation": separator is not None, **cfg}))
    digest = load_checkpoint(separator).digest if separator is not None else None
    settings = DetectionSettings(
        separator=None if separator is None else str(separator),
        separator_digest=digest,
        events=events or EventConfig(),
    )
    return save_detector(
        path, model, settings, training={"purpose": "test"}, metadata={"name": path.stem}
    )


@pytest.fixture(scope="session")
def detector_path(tmp_path_factory, separator_path) -> Path:
    return make_detector(tmp_path_factory.mktemp("det") / "det.pt", separator_path)


def make_corpus(root: Path, tracks: dict[str, int], seconds: float = 8.0) -> Path:
    """A siren corpus in the MUSDB18-HQ layout: ``root/<split>/<track>/{siren,background}.wav``
    at 16 kHz mono; each track's siren (a wail, random pitch range, 0..+10 dB) sounds in one
    random stretch and the background is noise with the odd steady beep (a confuser)."""
    import soundfile as sf

    for split, count in tracks.items():
        for i in range(count):
            rng = np.random.default_rng([7, len(split), i])
            n = int(seconds * SR)
            background = noise(seconds, seed=1000 * len(split) + i)
            for _ in range(2):  # steady beeps: tonal, but not a siren
                a = int(rng.uniform(0, seconds - 1) * SR)
                t = np.arange(int(0.4 * SR)) / SR
                background[a : a + t.size] += 0.03 * np.sin(2 * np.pi * rng.uniform(400, 2000) * t)
            siren = np.zeros(n, np.float32)
            length = rng.uniform(3.0, seconds - 1.0)
            a = int(rng.uniform(0, seconds - length) * SR)
            b = a + int(length * SR)
            lo = rng.uniform(500, 800)
            s = fit(wail((b - a) / SR, lo=lo, hi=lo + rng.uniform(500, 900)), b - a)
            siren[a:b] = s * background.std() * 10 ** (rng.uniform(0, 10) / 20) / s.std()
            folder = root / split / f"track{i:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / "siren.wav", siren, SR, subtype="FLOAT")
            sf.write(folder / "background.wav", background, SR, subtype="FLOAT")
    return root


def detect_train_config(root: Path, separator: Path | None, **extra) -> dict:
    """A small ``task: detect`` training config over the corpus at ``root``."""
    model = {k: v for k, v in TINY_SDE.items() if k != "sample_rate"}
    cfg = {
        "name": "sde-test",
        "data_root": str(root),
        "task": "detect",
        "detect": {
            "separator": None if separator is None else str(separator),
            "model": model,
            "events": {"min_event_seconds": 0.5, "min_gap_seconds": 1.0},
        },
        "data": {
            "sources": ["siren", "background"],
            "sample_rate": SR,
            "channels": 1,
            "segment_seconds": 2.0,
            "gain_db": [-6.0, 6.0],
            "channel_swap": 0.0,
            "examples_per_epoch": 64,
            "valid_examples": 8,
        },
        "steps": 100,
        "batch_size": 8,
        "num_workers": 0,
        "threads": 1,
        "valid_every": 50,
        "checkpoint_every": 50,
        "log_every": 10,
        "ema_decay": 0.0,
        "optim": {"lr": 0.005, "warmup_steps": 10},
    }
    for key, value in extra.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg
