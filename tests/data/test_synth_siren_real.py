"""The siren-real corpus preset (issue 27): real sirens of the training Debian package in train
plans only, half the sirens real, the planned siren-to-background ratio after the equalisers,
the horn colouring, and the refusal without the Debian package."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from deepsampler.data import debian_sirens as D
from deepsampler.data.real_pool import RealPool
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.siren_real import SirenRealPreset, apply_colour
from deepsampler.errors import DeepSamplerError
from tests.data.test_debian_sirens import unpack

SR = 16000
SECONDS = 3.0
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")


@pytest.fixture
def debian_root(tmp_path, monkeypatch):
    """The training package's sirens as 1 s tones under a fake root, found through the
    environment variable the preset reads."""
    root = unpack(tmp_path / "debian", D.DEBIAN_SIRENS, 1.0)
    monkeypatch.setenv(D.ROOT_ENV, str(root))
    return root


def test_real_sirens_are_half_and_debian_ones_train_only(debian_root):
    preset = SirenRealPreset()
    preset.check()
    pool = RealPool.empty()  # real sirens can then only come from the Debian package
    train = [preset.plan("train", i, 0, SECONDS, pool) for i in range(60)]
    sirens = [s for p in train for s in p.params["sirens"]]
    real = [s for s in sirens if s["kind"] == "real"]
    assert 0.35 < len(real) / len(sirens) < 0.65, (len(real), len(sirens))
    train_paths = {f"{s.package}:{s.path}" for s in D.DEBIAN_SIRENS if s.split == "train"}
    assert {s["debian"] for s in real} == train_paths  # all three are drawn, nothing else
    assert all("colour" in s for s in sirens if s["kind"] != "real")
    for split in ("valid", "test"):
        for i in range(20):
            plan = preset.plan(split, i, 0, SECONDS, pool)
            assert all(s["kind"] != "real" for s in plan.params["sirens"])
    a = train[0]
    assert a == preset.plan("train", 0, 0, SECONDS, pool)
    json.dumps(dataclasses.asdict(a))


@needs_espeak
def test_render_keeps_the_planned_ratio_with_a_debian_siren(debian_root):
    preset = SirenRealPreset()
    pool = RealPool.empty()
    plans = [preset.plan("train", i, 1, SECONDS, pool) for i in range(40)]
    with_debian = next(p for p in plans if any("debian" in s for s in p.params["sirens"]))
    synthetic = next(p for p in plans if all(s["kind"] != "real" for s in p.params["sirens"]))
    for plan in (with_debian, synthetic):
        out = preset.render(plan, pool)
        siren = out.stems["siren"][0]
        assert siren.shape == (round(SECONDS * SR),) and np.isfinite(siren).all()
        assert np.abs(siren).max() > 1e-3
        if out.info["peak_limit_db"] == 0:  # a peak limit moves both stems alike
            assert abs(out.info["sbr_realised_db"] - plan.params["sbr_db"]) < 1.0
        np.testing.assert_array_equal(siren, preset.render(plan, pool).stems["siren"][0])


def test_colour_lifts_its_resonance_keeps_the_level_and_drive_limits_peaks():
    x = np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32)
    y = apply_colour(x, SR, {"peaks": [[1500.0, 9.0, 0.3]], "drive_db": 0.0})
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)

    def band_db(z, lo, hi):
        spec = np.abs(np.fft.rfft(z)) ** 2
        f = np.fft.rfftfreq(z.size, 1 / SR)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean())

    lift = band_db(y, 1400, 1600) - band_db(y, 5000, 7000)
    assert lift - (band_db(x, 1400, 1600) - band_db(x, 5000, 7000)) > 7.0
    tone = np.sin(2 * np.pi * 700 * np.arange(SR) / SR).astype(np.float32)
    driven = apply_colour(tone, SR, {"peaks": [[700.0, 0.0, 0.5]], "drive_db": 12.0})
    crest = lambda z: np.abs(z).max() / np.sqrt(np.mean(z**2))  # noqa: E731
    assert crest(driven) < crest(tone) - 0.2  # a tanh squares the sine off
    assert not np.any(apply_colour(np.zeros(100, np.float32), SR, {"peaks": [], "drive_db": 3}))


def test_check_names_the_missing_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv(D.ROOT_ENV, str(tmp_path))
    with pytest.raises(DeepSamplerError, match="apt-get install lincity-ng-data"):
        SirenRealPreset().check()


def test_active_mask_sees_a_coloured_siren():
    """The colouring never hides a siren from the activity mask the ratio is set on."""
    t = np.arange(SR) / SR
    x = np.zeros(2 * SR, np.float32)
    x[SR:] = 0.1 * np.sin(2 * np.pi * 900 * t)
    y = apply_colour(x, SR, {"peaks": [[2000.0, 6.0, 0.5]], "drive_db": 6.0})
    mask = N.active_mask(y, SR)
    assert mask[SR + 800 :].mean() > 0.9 and mask[: SR - 800].mean() < 0.1
