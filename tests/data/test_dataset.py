"""StemDataset over tiny MUSDB18-HQ-layout folders written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from deepsampler.data.dataset import DatasetConfig, StemDataset
from deepsampler.errors import ConfigError, DeepSamplerError

SR = 8000
SOURCES = ("vocals", "drums", "bass", "other")


def write_track(
    folder: Path,
    seconds: float = 2.0,
    sr: int = SR,
    channels: int = 2,
    seed: int = 0,
    ext: str = "wav",
    sources: tuple[str, ...] = SOURCES,
    silent: tuple[str, ...] = (),
    mixture: bool = True,
) -> dict[str, np.ndarray]:
    """Write noise stems (every source and channel different) and return ``{source: [c, n]}``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    stems = {}
    for source in sources:
        audio = (0.1 * rng.standard_normal((channels, n))).astype(np.float32)
        if source in silent:
            audio[:] = 0.0
        stems[source] = audio
        subtype = "FLOAT" if ext == "wav" else "PCM_24"
        sf.write(str(folder / f"{source}.{ext}"), audio.T, sr, subtype=subtype)
    if mixture:
        mix = sum(stems.values())
        sf.write(
            str(folder / f"mixture.{ext}"), mix.T, sr, subtype="FLOAT" if ext == "wav" else None
        )
    return stems


def make_corpus(root: Path, tracks: int = 3, split: str = "train", **kwargs) -> dict:
    return {
        f"track{i}": write_track(root / split / f"track{i}", seed=i, seconds=2.0 + i, **kwargs)
        for i in range(tracks)
    }


def config(**kwargs) -> DatasetConfig:
    base = dict(segment_seconds=0.5, sample_rate=SR, examples_per_epoch=8, valid_examples=6)
    return DatasetConfig(**{**base, **kwargs})


def locate(segment: np.ndarray, stems: dict[str, dict[str, np.ndarray]], source: str):
    """(track, offset) where ``segment [c, n]`` equals a file's content exactly, or None."""
    n = segment.shape[1]
    for name, track in stems.items():
        audio = track[source]
        for offset in np.flatnonzero(audio[0, : audio.shape[1] - n + 1] == segment[0, 0]):
            if np.array_equal(audio[:, offset : offset + n], segment):
                return name, int(offset)
    return None


@pytest.fixture
def corpus(tmp_path):
    return tmp_path, make_corpus(tmp_path)


def test_shapes_dtype_and_exact_mixture(corpus):
    root, _ = corpus
    ds = StemDataset(root, "train", config(), train=True)
    assert len(ds) == 8
    for i in range(3):
        item = ds[i]
        assert item["stems"].shape == (4, 2, 4000) and item["stems"].dtype == torch.float32
        assert item["mixture"].shape == (2, 4000) and item["mixture"].dtype == torch.float32
        assert torch.equal(item["mixture"], item["stems"].sum(0))
    valid = StemDataset(root, "train", config(), train=False)
    item = valid[0]
    assert item["stems"].shape == (4, 2, 4000)
    assert torch.equal(item["mixture"], item["stems"].sum(0))


def test_deterministic_per_seed_epoch_index(corpus):
    root, _ = corpus
    a = StemDataset(root, "train", config(), train=True)
    b = StemDataset(root, "train", config(), train=True)
    assert torch.equal(a[3]["stems"], b[3]["stems"])
    assert not torch.equal(a[3]["stems"], a[4]["stems"])
    b.set_epoch(1)
    assert b.epoch == 1
    assert not torch.equal(a[3]["stems"], b[3]["stems"])
    a.set_epoch(1)
    assert torch.equal(a[3]["stems"], b[3]["stems"])
    c = StemDataset(root, "train", config(seed=5), train=True)
    assert not torch.equal(a[3]["stems"], c[3]["stems"])


def test_without_remix_or_augmentation_stems_are_file_content(corpus):
    root, stems = corpus
    cfg = config(remix_probability=0.0, gain_db=(0.0, 0.0), channel_swap=0.0)
    ds = StemDataset(root, "train", cfg, train=True)
    for i in range(4):
        item = ds[i]["stems"].numpy()
        places = {locate(item[s], stems, src) for s, src in enumerate(SOURCES)}
        assert len(places) == 1 and None not in places  # all stems: one track, one offset


def test_remix_draws_stems_from_several_tracks(corpus):
    root, stems = corpus
    cfg = config(remix_probability=1.0, gain_db=(0.0, 0.0), channel_swap=0.0)
    ds = StemDataset(root, "train", cfg, train=True)
    tracks = set()
    for i in range(4):
        item = ds[i]["stems"].numpy()
        found = [locate(item[s], stems, src) for s, src in enumerate(SOURCES)]
        assert None not in found
        tracks.update(name for name, _ in found)
    assert len(tracks) > 1


def test_gains_scale_stems(corpus):
    root, _ = corpus
    plain = StemDataset(root, "train", config(gain_db=(0.0, 0.0), channel_swap=0.0), train=True)
    gained = StemDataset(root, "train", config(gain_db=(-6.0, 3.0), channel_swap=0.0), train=True)
    a, b = plain[0]["stems"], gained[0]["stems"]
    ratio = (b.abs().amax(dim=(1, 2)) / a.abs().amax(dim=(1, 2))).numpy()
    assert np.all(ratio >= 10 ** (-6 / 20) - 1e-5) and np.all(ratio <= 10 ** (3 / 20) + 1e-5)
    assert np.ptp(ratio) > 0


def test_channel_swap_swaps_left_and_right(corpus):
    root, _ = corpus
    kept = StemDataset(root, "train", config(channel_swap=0.0), train=True)
    swapped = StemDataset(root, "train", config(channel_swap=1.0), train=True)
    a, b = kept[2]["stems"], swapped[2]["stems"]
    assert not torch.equal(a[:, 0], a[:, 1])
    assert torch.equal(b, a.flip(1))


def test_validation_set_is_fixed_and_unaugmented(corpus):
    root, stems = corpus
    a = StemDataset(root, "train", config(valid_examples=6), train=False)
    b = StemDataset(root, "train", config(valid_examples=6, seed=9), train=False)
    assert len(a) == 6
    assert a.validation_plan() == b.validation_plan()
    for i in range(len(a)):
        item = a[i]["stems"].numpy()
        assert np.array_equal(item, b[i]["stems"].numpy())
        places = {locate(item[s], stems, src) for s, src in enumerate(SOURCES)}
        track, offset = a.validation_plan()[i]
        assert places == {(f"track{track}", offset)}
    # dealt to every track in turn; a track's segments evenly spaced from start to end
    assert a.validation_plan() == [(0, 0), (0, 12000), (1, 0), (1, 20000), (2, 0), (2, 28000)]
    # capped by what the tracks hold: 2 s + 3 s + 4 s = 4 + 6 + 8 half-second segments
    assert len(StemDataset(root, "train", config(valid_examples=1000), train=False)) == 18


def test_dataloader_workers_match_in_process(corpus):
    root, _ = corpus
    valid = StemDataset(root, "train", config(), train=False)
    serial = [b["stems"] for b in DataLoader(valid, batch_size=2, num_workers=0)]
    parallel = [b["stems"] for b in DataLoader(valid, batch_size=2, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(serial, parallel, strict=True))

    train = StemDataset(root, "train", config(skip_silent=True), train=True)
    loader = DataLoader(train, batch_size=4, num_workers=2, persistent_workers=True)
    first = torch.cat([b["stems"] for b in loader])
    train.set_epoch(1)  # must reach the already running workers
    second = torch.cat([b["stems"] for b in loader])
    assert train.stats["examples"] == 16  # counted in the workers, seen here
    reference = StemDataset(root, "train", config(), train=True)
    assert torch.equal(first, torch.stack([reference[i]["stems"] for i in range(8)]))
    reference.set_epoch(1)
    assert torch.equal(second, torch.stack([reference[i]["stems"] for i in range(8)]))


def test_skip_silent_avoids_silent_vocals(tmp_path):
    write_track(tmp_path / "train" / "a_silent_vocals", seed=1, silent=("vocals",))
    write_track(tmp_path / "train" / "b_ok", seed=2)
    cfg = config(skip_silent=True, remix_probability=0.0, examples_per_epoch=16)
    ds = StemDataset(tmp_path, "train", cfg, train=True)
    for i in range(len(ds)):
        assert ds[i]["stems"][0].abs().max() > 0
    assert ds.stats["silent_redraws"] > 0 and ds.stats["gave_up"] == 0
    assert ds.stats["silent_examples"] == 0

    loose = StemDataset(
        tmp_path, "train", config(remix_probability=0.0, examples_per_epoch=16), True
    )
    for i in range(len(loose)):
        loose[i]
    assert loose.stats["silent_examples"] > 0 and loose.stats["silent_redraws"] == 0


def test_skip_silent_gives_up_and_counts(tmp_path):
    write_track(tmp_path / "train" / "silent", silent=SOURCES)
    cfg = config(skip_silent=True, max_tries=3)
    ds = StemDataset(tmp_path, "train", cfg, train=True)
    ds[0]
    ds[1]
    assert ds.stats["gave_up"] == 2 and ds.stats["all_silent_examples"] == 2
    assert ds.stats["silent_redraws"] > 0
    ds.reset_stats()
    assert ds.stats["examples"] == 0


def test_split_folder_passed_directly_and_mixture_optional(tmp_path):
    write_track(tmp_path / "stems" / "song", mixture=False)
    ds = StemDataset(tmp_path / "stems", None, config(), train=True)
    assert ds[0]["stems"].shape == (4, 2, 4000)


def test_flac_stems_accepted(tmp_path):
    write_track(tmp_path / "train" / "song", ext="flac")
    assert StemDataset(tmp_path, "train", config(), train=False)[0]["stems"].shape == (4, 2, 4000)


def test_mono_stems_duplicated(tmp_path):
    write_track(tmp_path / "train" / "song", channels=1)
    item = StemDataset(tmp_path, "train", config(), train=True)[0]["stems"]
    assert item.shape == (4, 2, 4000)
    assert torch.equal(item[:, 0], item[:, 1])


def test_short_tracks_skipped_with_warning(tmp_path):
    write_track(tmp_path / "train" / "long", seconds=2.0)
    write_track(tmp_path / "train" / "tiny", seconds=0.25)
    with pytest.warns(UserWarning, match="tiny"):
        ds = StemDataset(tmp_path, "train", config(), train=True)
    assert [t.folder.name for t in ds.tracks] == ["long"]


def _rewrite(path: Path, seconds: float = 2.0, sr: int = SR, channels: int = 2) -> None:
    sf.write(str(path), np.zeros((int(seconds * sr), channels), np.float32) + 0.1, sr)


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (lambda t: (t / "bass.wav").unlink(), r"song.*lacks stem.*'bass'.*has \['drums'"),
        (lambda t: _rewrite(t / "drums.wav", seconds=1.5), "song.*different lengths"),
        (lambda t: _rewrite(t / "drums.wav", sr=16000, seconds=1.0), "song.*different sample"),
        (lambda t: _rewrite(t / "drums.wav", channels=1), "song.*different channel"),
        (lambda t: (t / "vocals.flac").write_bytes(b""), "song.*two files for 'vocals'"),
    ],
    ids=["missing-stem", "lengths", "sample-rates", "channels", "duplicate"],
)
def test_broken_track_names_the_track(tmp_path, breakage, match):
    write_track(tmp_path / "train" / "song")
    breakage(tmp_path / "train" / "song")
    with pytest.raises(DeepSamplerError, match=match):
        StemDataset(tmp_path, "train", config(), train=True)


def test_folder_errors(tmp_path):
    with pytest.raises(DeepSamplerError, match="dataset folder not found"):
        StemDataset(tmp_path / "nowhere", "train", config(), train=True)
    (tmp_path / "train").mkdir()
    with pytest.raises(DeepSamplerError, match=r"no track folders.*MUSDB18-HQ layout"):
        StemDataset(tmp_path, "train", config(), train=True)
    with pytest.raises(DeepSamplerError, match="split folder 'valid' not found"):
        StemDataset(tmp_path, "valid", config(), train=True)
    write_track(tmp_path / "train" / "song")
    with pytest.raises(DeepSamplerError, match="holds split folders"):
        StemDataset(tmp_path, None, config(), train=True)


def test_track_errors(tmp_path):
    write_track(tmp_path / "a" / "song", sr=16000)
    with pytest.raises(DeepSamplerError, match="song.*16000 Hz.*resample"):
        StemDataset(tmp_path, "a", config(), train=True)
    write_track(tmp_path / "b" / "song", channels=3, seconds=1.0)
    with pytest.raises(DeepSamplerError, match="song.*3 channels.*takes 2"):
        StemDataset(tmp_path, "b", config(), train=True)
    write_track(tmp_path / "c" / "song", seconds=0.25)
    with pytest.raises(DeepSamplerError, match="shorter than one"):
        StemDataset(tmp_path, "c", config(), train=True)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="remix_probability"):
        DatasetConfig(remix_probability=1.5)
    with pytest.raises(ConfigError, match="gain_db"):
        DatasetConfig(gain_db=(3.0, -3.0))
    assert DatasetConfig().segment_samples == 132300
