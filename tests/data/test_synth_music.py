"""The music4 corpus: FluidSynth rendering, drum patterns and kits, the singer, and a tiny
corpus rendered end to end (layout, exact mixtures, determinism, split disjointness, resume)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.cli import main
from deepsampler.data.real_pool import RealPool
from deepsampler.data.splits import split_of
from deepsampler.data.synth import drums, fluid
from deepsampler.data.synth.corpus import SynthSettings, synth_corpus
from deepsampler.errors import DeepSamplerError

pytestmark = pytest.mark.skipif(
    not fluid.available_soundfonts(), reason="corpus packages not installed (setup.sh data)"
)
SOURCES = ("vocals", "drums", "bass", "other")


def _tiny(out: Path, seed: int = 5, workers: int = 1) -> dict:
    # 0.0025 h = 9 s: three 3-second tracks, one per split
    settings = SynthSettings("music4", hours=0.0025, seed=seed, track_seconds=3.0)
    return synth_corpus(settings, out, workers=workers, progress=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("music4") / "corpus"
    _tiny(out)
    return out


def _tracks(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith("."))


def test_layout_and_exact_mixtures(corpus):
    tracks = _tracks(corpus)
    assert {t.parent.name for t in tracks} == {"train", "valid", "test"}
    for t in tracks:
        names = {p.name for p in t.iterdir()}
        assert names == {"mixture.wav", "track.json", *(f"{s}.wav" for s in SOURCES)}
        mix, sr = sf.read(t / "mixture.wav", dtype="int16", always_2d=True)
        assert sr == 44100 and mix.shape == (3 * 44100, 2)
        stems = [sf.read(t / f"{s}.wav", dtype="int16", always_2d=True)[0] for s in SOURCES]
        assert np.array_equal(sum(s.astype(np.int32) for s in stems), mix)
        # float reads add up exactly too (16-bit values are exact in float32)
        fmix = sf.read(t / "mixture.wav", dtype="float32")[0]
        fsum = sum(sf.read(t / f"{s}.wav", dtype="float32")[0] for s in SOURCES)
        assert np.array_equal(fmix, fsum)
        assert np.abs(mix).max() > 1000, "a silent mixture"
    summary = json.loads((corpus / "corpus.json").read_text())
    assert summary["tracks_per_split"] == {"train": 1, "valid": 1, "test": 1}
    assert set(summary["instruments"]) == set(SOURCES)


def _snr_db(a: np.ndarray, b: np.ndarray) -> float:
    err = np.sum((a.astype(np.float64) - b) ** 2)
    return float("inf") if err == 0 else 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / err)


def test_deterministic_for_a_seed(corpus, tmp_path):
    """Same seed, same worker count: identical files; another seed: another corpus."""
    again = tmp_path / "again"
    _tiny(again)
    for t in _tracks(corpus):
        for s in (*SOURCES, "mixture"):
            a = sf.read(t / f"{s}.wav", dtype="int16")[0]
            b = sf.read(again / t.parent.name / t.name / f"{s}.wav", dtype="int16")[0]
            assert np.array_equal(a, b), f"{t.name}/{s} differs between identical runs"
    different = tmp_path / "other-seed"
    _tiny(different, seed=6)
    a = sf.read(_tracks(corpus)[0] / "mixture.wav")[0]
    b = sf.read(_tracks(different)[0] / "mixture.wav")[0]
    assert not np.array_equal(a, b)


@pytest.mark.slow
def test_another_worker_count_renders_the_same_tracks(corpus, tmp_path):
    """Another worker count: the same tracks to within FluidSynth's voice-pool state (a voice's
    first use differs slightly from its later ones, so a part depends faintly on what its
    process rendered before), >= 40 dB."""
    parallel = tmp_path / "parallel"
    _tiny(parallel, workers=2)
    for t in _tracks(corpus):
        for s in (*SOURCES, "mixture"):
            a = sf.read(t / f"{s}.wav", dtype="int16")[0]
            c = sf.read(parallel / t.parent.name / t.name / f"{s}.wav", dtype="int16")[0]
            assert _snr_db(a, c) > 40, f"{t.name}/{s} differs with two workers"


def test_pieces_never_cross_splits(corpus):
    from deepsampler.data.synth.music import MusicPreset

    preset = MusicPreset()
    splits = ("train", "valid", "test")
    plans = [preset.plan(s, i, 0, 3.0, RealPool.empty()) for s in splits for i in range(60)]
    owner: dict[str, str] = {}
    for p in plans:
        assert owner.setdefault(p.piece, p.split) == p.split
        if p.piece.startswith("music21:"):  # scores are assigned to a split by name alone
            assert split_of(p.piece) == p.split
    assert any(p.piece.startswith("music21:") for p in plans)
    assert any(p.piece.startswith("generated:") for p in plans)


def test_resume_redoes_only_missing_and_partial_tracks(corpus, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(corpus, out)
    victim = _tracks(out)[0]
    reference = sf.read(victim / "mixture.wav", dtype="int16")[0]
    shutil.rmtree(victim)
    partial = victim.parent / f".partial-{victim.name}"
    partial.mkdir()
    (partial / "vocals.wav").write_bytes(b"half written")
    summary = _tiny(out)
    assert summary["last_run"]["tracks_rendered"] == 1
    assert not partial.exists()
    # the same track again (to FluidSynth's voice-state tolerance: it rendered alone this time)
    assert _snr_db(reference, sf.read(victim / "mixture.wav", dtype="int16")[0]) > 40


def test_refuses_other_settings_and_foreign_folders(corpus, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(corpus, out)
    with pytest.raises(DeepSamplerError, match="other settings"):
        _tiny(out, seed=99)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DeepSamplerError, match="not empty"):
        _tiny(foreign)
    with pytest.raises(DeepSamplerError, match="hours"):
        SynthSettings("music4", hours=0)


def test_missing_soundfonts_name_the_package(monkeypatch):
    monkeypatch.setattr(fluid, "available_soundfonts", lambda: {})
    with pytest.raises(DeepSamplerError, match="fluid-soundfont-gm"):
        fluid.check_fluidsynth()


def test_fluidsynth_drops_zero_length_notes_and_caps_length():
    r = fluid.FluidRenderer(22050)
    sf_path = next(iter(fluid.available_soundfonts().values()))
    notes = [fluid.Note(0.1, 0.0, 60, 100), fluid.Note(0.5, 10.0, 64, 100)]
    audio = r.render(notes, sf_path, 0, seconds=1.0)
    assert audio.shape == (2, 22050) and audio.dtype == np.float32
    assert np.abs(audio[:, : int(0.45 * 22050)]).max() == 0  # the zero-length note is dropped
    assert np.abs(audio[:, int(0.55 * 22050) :]).max() > 1e-3  # the long note sounds until the cap


def test_drum_pattern_grooves_fills_and_swing():
    rng = np.random.default_rng(0)
    hits = drums.drum_pattern(rng, "rock", 120, 16.0, humanise_ms=0, fill_every=4)
    bar = 2.0
    toms = [h for h in hits if h.role.startswith("tom")]
    assert toms and all((h.time % (4 * bar)) >= 3 * bar - 1e-6 for h in toms), "fills end phrases"
    assert {"kick", "snare", "hat_closed", "crash"} <= {h.role for h in hits}
    straight, swung = (
        drums.drum_pattern(np.random.default_rng(1), "pop", 100, 8.0, swing=sw, humanise_ms=0)
        for sw in (0.0, 0.3)
    )
    step = 60 / 100 / 4  # a sixteenth note
    on_grid = [abs(h.time / step - round(h.time / step)) < 1e-6 for h in straight]
    assert all(on_grid)
    late = [h.time / step % 1 for h in swung if abs(h.time / step - round(h.time / step)) > 1e-6]
    assert late and all(abs(x - 0.3) < 1e-6 for x in late), "off-beat sixteenths delayed"


def test_hydrogen_kits_play_at_the_hit_times():
    kits = drums.hydrogen_kits()
    if not kits:
        pytest.skip("hydrogen-drumkits not installed")
    cache = drums.SampleCache(22050)
    hits = [drums.DrumHit(0.5, "kick", 110), drums.DrumHit(1.5, "snare", 100)]
    kit = next(iter(kits.values()))
    audio = drums.render_hydrogen(hits, kit, cache, 2.0, np.random.default_rng(0))
    assert audio.shape == (2, 44100)
    assert np.abs(audio[:, : int(0.49 * 22050)]).max() == 0
    assert np.abs(audio[:, int(0.5 * 22050) : int(0.6 * 22050)]).max() > 1e-3


def test_singer_sings_the_notes_pitch():
    from deepsampler.data.synth import singer

    if not singer.singer_available() or shutil.which("espeak-ng") is None:
        pytest.skip("pyworld or espeak-ng missing")
    rng = np.random.default_rng(0)
    speech, _ = singer.espeak_lyrics(rng, 12)
    notes = [fluid.Note(0.2 + i * 0.5, 0.45, 57, 100) for i in range(6)]  # A3 = 220 Hz
    y = singer.sing(speech, notes, 3.5, rng, vibrato_cents=0)
    assert y.shape == (int(3.5 * singer.WORLD_RATE),) and np.isfinite(y).all()
    pw = singer._world()
    f0, _ = pw.dio(y.astype(np.float64), singer.WORLD_RATE, frame_period=5.0)
    voiced = f0[f0 > 0]
    assert voiced.size > 50
    assert abs(np.median(voiced) / 220.0 - 1) < 0.03
    assert np.abs(y[: int(0.05 * singer.WORLD_RATE)]).max() < 1e-3  # silent before the first note


def test_cli_synth_and_stats(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["data", "synth", "--preset", "music4", "--out", str(out), "--hours", "0.0025"]
    assert main([*args, "--track-seconds", "3", "--workers", "1", "--real", "none", "-q"]) == 0
    assert main(["data", "stats", str(out), "--plot", str(tmp_path / "stats.png")]) == 0
    text = capsys.readouterr().out
    assert "| train | 1 |" in text and "vocals" in text
    assert (tmp_path / "stats.png").stat().st_size > 1000
    assert main(["data", "stats", str(tmp_path)]) == 1  # no corpus.json: a one-line error
    assert main([*args, "--workers", "-1"]) == 1
