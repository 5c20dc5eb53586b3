"""The speech and siren corpus presets and their noise generators: determinism, shapes, levels
(SNR), Doppler, noise spectra, split hygiene of real recordings, and the missing-tool error."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest

from deepsampler.data.real_pool import RealPool, find_pool_root
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.mixing import real_files_of
from deepsampler.data.synth.siren import (
    SPEED_OF_SOUND,
    SirenPreset,
    doppler_factor,
    emission_time,
)
from deepsampler.data.synth.speech import SpeechPreset
from deepsampler.data.synth.voices import (
    ENGLISH_VOICES,
    EXTRA_DIALECTS,
    OTHER_VOICES,
    VARIANTS,
    espeak,
)
from deepsampler.errors import DeepSamplerError

SR = 16000
SECONDS = 2.5
POOL_ROOT = find_pool_root()
HAVE_POOL = POOL_ROOT is not None
HAVE_ESPEAK = shutil.which("espeak-ng") is not None

needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed")
needs_pool = pytest.mark.skipif(not HAVE_POOL, reason=f"no real pool at {POOL_ROOT}")
PRESETS = [SpeechPreset, SirenPreset]


@pytest.fixture(scope="module")
def real_pool() -> RealPool:
    return RealPool.open(POOL_ROOT)


@pytest.fixture(params=[pytest.param("empty"), pytest.param("real", marks=needs_pool)])
def pool(request) -> RealPool:
    """Each test taking ``pool`` runs without real recordings and, where present, with them."""
    return request.getfixturevalue("real_pool") if request.param == "real" else RealPool.empty()


# --------------------------------------------------------------------------------------------
# plans


@pytest.mark.parametrize("preset_cls", PRESETS)
def test_plan_is_deterministic_and_json(preset_cls, pool):
    preset = preset_cls()
    for split in ("train", "valid", "test"):
        a = preset.plan(split, 3, 11, SECONDS, pool)
        assert a == preset.plan(split, 3, 11, SECONDS, pool)
        assert a.name == f"{preset.name}_{split}_00003" and a.split == split
        assert a.seconds == SECONDS
        b = preset.plan(split, 4, 11, SECONDS, pool)
        assert a.params != b.params and a.seed != b.seed
        assert preset.plan(split, 3, 12, SECONDS, pool).params != a.params
        json.dumps(dataclasses.asdict(a))


@needs_pool
@pytest.mark.parametrize("preset_cls", PRESETS)
def test_plans_of_valid_and_test_use_only_their_split(preset_cls, real_pool):
    assert real_pool.root is not None
    split_of_file = {
        f.path.relative_to(real_pool.root).as_posix(): f.split for f in real_pool.files
    }
    preset = preset_cls()
    used = 0
    pieces: dict[str, str] = {}
    for split in ("train", "valid", "test"):
        for i in range(25):
            plan = preset.plan(split, i, 0, 10.0, real_pool)
            files = real_files_of(plan.params)
            assert set(files) == set(plan.params["real_files"])
            for rel in files:
                assert split_of_file[rel] == split, (plan.name, rel)
            used += len(files)
            assert pieces.setdefault(plan.piece, split) == split
    assert used > 0  # the check above is not vacuous


# --------------------------------------------------------------------------------------------
# renders


@needs_espeak
@pytest.mark.parametrize("preset_cls", PRESETS)
def test_render_is_deterministic_with_exact_shapes(preset_cls, pool):
    preset = preset_cls()
    n = round(SECONDS * preset.sample_rate)
    for split, index in (("train", 0), ("valid", 1), ("test", 2)):
        plan = preset.plan(split, index, 5, SECONDS, pool)
        a, b = preset.render(plan, pool), preset.render(plan, pool)
        assert set(a.stems) == set(preset.sources)
        for s in preset.sources:
            x = a.stems[s]
            assert x.shape == (preset.channels, n) and x.dtype == np.float32
            assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
            assert np.abs(x).max() > 1e-3, f"{s} is silent"
            np.testing.assert_array_equal(x, b.stems[s])
        json.dumps(a.info)


@needs_espeak
def test_speech_levels_and_realised_snr(pool):
    """SNR measured here (own 32 ms frames, speech within 30 dB of its loudest frame) matches
    the plan within 1 dB; active speech sits in the planned -25..-18 dBFS unless limited."""
    preset = SpeechPreset()
    hop = int(0.032 * SR)
    for index in range(4):
        plan = preset.plan("train", index, 2, SECONDS, pool)
        out = preset.render(plan, pool)
        s, noise = out.stems["speech"][0], out.stems["noise"][0]
        m = len(s) // hop * hop
        es = np.mean(s[:m].reshape(-1, hop) ** 2, axis=1)
        en = np.mean(noise[:m].reshape(-1, hop) ** 2, axis=1)
        active = 10 * np.log10(es + 1e-20) > 10 * np.log10(es.max()) - 30
        snr = 10 * np.log10(es[active].sum() / en[active].sum())
        assert abs(snr - plan.params["snr_db"]) < 1.0, (plan.name, snr, plan.params["snr_db"])
        assert -5 <= plan.params["snr_db"] <= 15
        level = 10 * np.log10(es[active].mean())
        lo = -25 - 1 + out.info["peak_limit_db"]
        assert lo <= level <= -18 + 1, (plan.name, level)


@needs_espeak
def test_siren_to_background_ratio_is_as_planned():
    preset = SirenPreset()
    pool = RealPool.empty()
    for index in range(3):
        plan = preset.plan("train", index, 3, SECONDS, pool)
        out = preset.render(plan, pool)
        assert abs(out.info["sbr_realised_db"] - plan.params["sbr_db"]) < 0.1
        assert -10 <= plan.params["sbr_db"] <= 10


def _peak_frequencies(x: np.ndarray, sr: int, size: int = 2048, hop: int = 512):
    """Frame centre times (s) and the frequency (Hz) of each frame's spectral peak, refined by
    parabolic interpolation on a zero-padded, Hann-windowed FFT."""
    win = np.hanning(size)
    times, freqs = [], []
    for start in range(0, len(x) - size, hop):
        mag = np.abs(np.fft.rfft(x[start : start + size] * win, 4 * size))
        k = int(np.argmax(mag[1:-1])) + 1
        a, b, c = np.log(mag[k - 1 : k + 2] + 1e-12)
        k_f = k + 0.5 * (a - c) / (a - 2 * b + c)
        times.append((start + size / 2) / sr)
        freqs.append(k_f * sr / (4 * size))
    return np.array(times), np.array(freqs)


@needs_espeak
def test_siren_doppler_and_distance_for_a_passing_source():
    """A steady 1 kHz siren passing at 25 m/s, 5 m away, half way through: heard higher while
    approaching than while leaving, by the predicted factor, and loudest when closest."""
    preset = SirenPreset()
    pool = RealPool.empty()
    seconds, f0, speed, closest, t_c = 3.0, 1000.0, 25.0, 5.0, 1.5
    plan = preset.plan("train", 0, 0, seconds, pool)
    siren = {
        "kind": "steady", "f_lo": f0, "on_s": None, "off_s": None, "phase": 0.0,
        "amps": [1.0, 0.2, 0.3, 0.05], "band_hz": [200.0, 7000.0], "gain_db": 0.0,
        "trajectory": {"speed": speed, "closest_m": closest, "t_closest": t_c},
    }  # fmt: skip
    params = {**plan.params, "sirens": [siren], "reverb": None}
    out = preset.render(dataclasses.replace(plan, params=params), pool)
    x = out.stems["siren"][0]
    times, freqs = _peak_frequencies(x, SR)
    approach, leave = freqs[times < 1.0].mean(), freqs[times > 2.0].mean()
    assert approach > 1.04 * f0 and leave < 0.96 * f0 and approach > leave
    # the exact prediction c / (c - v_radial) at each frame, from the emission times
    tau = emission_time(times, speed, closest, t_c)
    predicted = f0 * doppler_factor(tau, speed, closest, t_c)
    far = np.abs(times - t_c) > 0.5  # near closest approach the frequency sweeps fast
    np.testing.assert_allclose(freqs[far], predicted[far], rtol=0.01)
    # limits of the factor far away: c / (c - v) and c / (c + v)
    assert predicted[0] < f0 * SPEED_OF_SOUND / (SPEED_OF_SOUND - speed)
    assert predicted[-1] > f0 * SPEED_OF_SOUND / (SPEED_OF_SOUND + speed)
    # 1 / distance: 5 m at closest approach vs about 30 m at the start
    near = np.sqrt(np.mean(x[int(1.3 * SR) : int(1.7 * SR)] ** 2))
    start = np.sqrt(np.mean(x[: int(0.4 * SR)] ** 2))
    assert 20 * np.log10(near / start) > 10


@needs_espeak
def test_siren_switched_on_late_is_silent_before():
    preset = SirenPreset()
    pool = RealPool.empty()
    plan = preset.plan("train", 1, 0, SECONDS, pool)
    siren = {
        "kind": "wail", "f_lo": 600.0, "f_hi": 1400.0, "period_s": 4.0, "rise": 0.5,
        "spin_up_s": 1.0, "on_s": 1.0, "off_s": None, "phase": 0.0, "amps": [1.0, 0.3, 0.3],
        "band_hz": [300.0, 5000.0], "gain_db": 0.0,
        "trajectory": {"speed": 10.0, "closest_m": 10.0, "t_closest": 1.5},
    }  # fmt: skip
    params = {**plan.params, "sirens": [siren], "reverb": None}
    x = preset.render(dataclasses.replace(plan, params=params), pool).stems["siren"][0]
    # sound emitted at 1.0 s arrives about 30 ms later; the band filter rings a little
    assert np.abs(x[: int(0.9 * SR)]).max() < 1e-3 * np.abs(x).max()
    assert np.sqrt(np.mean(x[int(1.5 * SR) :] ** 2)) > 0.01


# --------------------------------------------------------------------------------------------
# noise generators


def _slope_db_per_octave(x: np.ndarray, lo: float = 100.0, hi: float = 4000.0) -> float:
    """Slope (dB/octave) of a straight-line fit to the averaged power spectrum between lo and
    hi Hz (Welch: Hann-windowed 4096-sample segments, half overlap)."""
    size = 4096
    win = np.hanning(size)
    segs = [x[i : i + size] * win for i in range(0, len(x) - size, size // 2)]
    power = np.mean([np.abs(np.fft.rfft(s)) ** 2 for s in segs], axis=0)
    f = np.fft.rfftfreq(size, 1 / SR)
    band = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(power[band]), 1)[0])


@pytest.mark.parametrize(("exponent", "slope"), [(0.0, 0.0), (1.0, -3.0), (2.0, -6.0)])
def test_coloured_noise_slopes(exponent, slope):
    x = N.coloured_noise(np.random.default_rng(0), 8 * SR, SR, exponent)
    assert x.dtype == np.float32 and abs(float(np.sqrt(np.mean(x**2))) - 1) < 1e-3
    assert abs(_slope_db_per_octave(x) - slope) < 1.0


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_hum_peaks_at_the_mains_frequency(mains):
    rng = np.random.default_rng(1)
    params = {**N.draw_hum(rng), "mains_hz": mains}
    x = N.render_hum(rng, 8 * SR, SR, **params)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / SR)
    assert abs(f[np.argmax(spec)] - mains) < 1.0


@pytest.mark.parametrize("kind", sorted(N.KINDS))
def test_every_noise_kind_renders_deterministically(kind):
    params = N.draw(kind, np.random.default_rng(4))
    json.dumps(params)
    a = N.render(kind, params, np.random.default_rng(9), 3 * SR, SR)
    b = N.render(kind, params, np.random.default_rng(9), 3 * SR, SR)
    assert a.shape == (3 * SR,) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert abs(float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) - 1) < 1e-3


def test_active_mask_ignores_silence_and_room_tone():
    x = np.zeros(2 * SR, np.float32)
    x[SR // 2 : SR] = np.sin(2 * np.pi * 200 * np.arange(SR // 2) / SR)
    x += 1e-3 * np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)  # -60 dB
    mask = N.active_mask(x, SR)
    assert 0.23 < mask.mean() < 0.27 and mask[SR // 2 + 400 : SR - 400].all()


# --------------------------------------------------------------------------------------------
# espeak-ng and the missing-tool error


@needs_espeak
def test_espeak_returns_one_piece_per_utterance():
    texts = ["Hello there.", "The red car stopped near the old bridge.", "Guten Morgen!"]
    said = espeak(texts, "en-us+f3", 200, 50, SR)
    assert len(said["utterances"]) == 3 and said["voice"] == "en-us+f3"
    assert all(u.dtype == np.float32 and u.size > 0.2 * SR for u in said["utterances"])


@needs_espeak
def test_planned_voices_and_variants_exist():
    listed = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True).stdout
    names = {line.split()[1] for line in listed.splitlines()[1:] if line.split()}
    wanted = set(ENGLISH_VOICES) | set(OTHER_VOICES.values())
    wanted |= {v for vs in EXTRA_DIALECTS.values() for v in vs}
    assert wanted <= names, wanted - names
    variants = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True
    ).stdout
    files = {line.split()[-1].removeprefix("!v/") for line in variants.splitlines()[1:]}
    assert {v for v in VARIANTS if v} <= files


@pytest.mark.parametrize("preset_cls", PRESETS)
def test_check_names_the_debian_package_when_espeak_is_missing(preset_cls, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(DeepSamplerError, match=r"espeak-ng.*apt-get install espeak-ng"):
        preset_cls().check()


@needs_pool
def test_render_refuses_a_plan_with_real_files_without_a_pool(real_pool):
    preset = SpeechPreset()
    plan = next(
        p
        for i in range(40)
        if (p := preset.plan("train", i, 0, SECONDS, real_pool)).params["real_files"]
    )
    with pytest.raises(DeepSamplerError, match="no pool"):
        preset.render(plan, RealPool.empty())


# --------------------------------------------------------------------------------------------
# the speech-real variant (issue 26)


@needs_espeak
@needs_pool
def test_speech_real_keeps_the_snr_and_mixes_mostly_real_material(real_pool):
    """Realised SNR within 1 dB of the plan after the equalisers; over 40 training plans most
    speech is real and most noise layers are real recordings; valid/test plans use only their
    split's files (the parent's hygiene holds for the variant too)."""
    from deepsampler.data.synth.speech_real import SpeechRealPreset

    preset = SpeechRealPreset()
    plans = [preset.plan("train", i, 3, SECONDS, real_pool) for i in range(40)]
    real_speech = sum(p.params["speech"]["source"] == "real" for p in plans)
    layers = [c["kind"] for p in plans for c in p.params["noise"]]
    real_layers = sum(k.startswith("real:") or k == "babble" for k in layers)
    assert real_speech >= 26 and real_layers > len(layers) / 2, (real_speech, real_layers)
    for plan in plans[:3]:
        out = preset.render(plan, real_pool)
        assert abs(out.info["snr_realised_db"] - plan.params["snr_db"]) < 1.0
        assert "tilt_db" in out.info["eq"]["speech"]
    by_name = {f.path.relative_to(real_pool.root).as_posix(): f.split for f in real_pool.files}
    for split in ("valid", "test"):
        for i in range(6):
            plan = preset.plan(split, i, 3, SECONDS, real_pool)
            assert {by_name[f] for f in plan.params["real_files"]} <= {split}


def test_equaliser_tilts_and_band_limits():
    from deepsampler.data.synth.speech_real import apply_eq

    x = np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32)

    def band_db(y, lo, hi):
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(len(y), 1 / SR)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean())

    up = apply_eq(x, SR, {"tilt_db": 6.0})
    assert band_db(up, 6000, 8000) - band_db(x, 6000, 8000) > 2.0  # +2.6..3 dB there
    assert band_db(up, 100, 200) - band_db(x, 100, 200) < -2.0  # -3..-2 dB there
    phone = apply_eq(x, SR, {"tilt_db": 0.0, "highpass_hz": 300.0, "lowpass_hz": 3400.0})
    assert band_db(phone, 6000, 8000) < band_db(x, 6000, 8000) - 20
    assert abs(band_db(phone, 800, 2000) - band_db(x, 800, 2000)) < 1.0
