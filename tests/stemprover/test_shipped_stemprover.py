"""The shipped StemProver: it loads by name with its guide (the shipped music4-hq, checked by
digest), its card is there, and `deepsampler enhance` runs it end to end with its default."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from deepsampler.cli import main
from deepsampler.stemprover.checkpoint import load_stemprover, read_stemprover
from deepsampler.stemprover.enhancer import STEMPROVER_DIR, Enhancer, resolve_stemprover
from deepsampler.stemprover.train import STAGES


def test_the_shipped_model_is_complete_and_its_card_says_how_it_was_chosen() -> None:
    path = resolve_stemprover("stemprover")
    assert path == STEMPROVER_DIR / "stemprover.pt"
    model, extra = load_stemprover(path)  # refuses a music4-hq other than the one it learned
    assert set(extra["stages_done"]) == set(STAGES)
    assert sorted(model.adapters) == ["band_limit", "bleed", "musical_noise", "phase_smear"]
    assert model.predictor is not None and model.predictor.config.guide == "music4-hq"
    payload = read_stemprover(path)
    assert not any(k.startswith("predictor.guide_model.") for k in payload["state_dict"])
    steps = extra["inference"]["steps"]
    assert Enhancer("stemprover").steps == steps  # the file's default, chosen on validation
    card = (STEMPROVER_DIR / "stemprover.md").read_text()
    assert "music4-hq" in card and "| identity |" in card and "re-separation" in card
    assert (STEMPROVER_DIR / "stemprover-regression.pt").is_file()


def _tone_mixture(rate: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    vocals = 0.2 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    bass = 0.3 * np.sin(2 * np.pi * 55 * t)
    drums = 0.3 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.9)
    mix = vocals + bass + drums
    stem = vocals + 0.2 * (bass + drums)  # a stem with bleed
    return (
        np.stack([stem, 0.9 * stem]).astype(np.float32),
        np.stack([mix, 0.9 * mix]).astype(np.float32),
    )


@pytest.mark.parametrize("steps", [None, 1])
def test_enhance_runs_the_shipped_model(tmp_path, steps) -> None:
    rate = 44100
    stem, mix = _tone_mixture(rate, 2.5)
    sf.write(tmp_path / "vocals.wav", stem.T, rate, subtype="FLOAT")
    sf.write(tmp_path / "mix.wav", mix.T, rate, subtype="FLOAT")
    argv = ["enhance", str(tmp_path / "vocals.wav"), "-o", str(tmp_path / "out")]
    argv += ["--mixture", str(tmp_path / "mix.wav"), "--threads", "2", "-q"]
    if steps is not None:
        argv += ["--steps", str(steps)]
    assert main(argv) == 0
    out, out_rate = sf.read(tmp_path / "out" / "vocals.wav", always_2d=True)
    assert out_rate == rate and out.shape == stem.T.shape and np.isfinite(out).all()
    assert not np.allclose(out, stem.T, atol=1e-4)  # it refined something
