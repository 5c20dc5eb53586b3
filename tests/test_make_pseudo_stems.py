"""scripts/make_pseudo_stems.py on generated songs: the stems sum to the real song, the known
guitar lands in ``other``, the merged corpus trains on both, reruns resume, bad input refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.data.dataset import DatasetConfig, StemDataset
from deepsampler.models import DeepSampler, preset_config, save_checkpoint
from tests.scripts_loader import load_script

SR = 44100


def _write(path, audio: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, sr, format="OGG", subtype="VORBIS")


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Two Frets on Fire style songs (backing + lead guitar) and one soundtrack file, 1 s each."""
    root = tmp_path_factory.mktemp("songs")
    rng = np.random.default_rng(0)
    fof = root / "fof"
    for pack, song in (("muldjord", "song one"), ("sectoid", "Song Two")):
        _write(fof / pack / song / "song.ogg", rng.normal(0, 0.05, (2, SR)).astype(np.float32))
        _write(fof / pack / song / "guitar.ogg", rng.normal(0, 0.05, (2, SR)).astype(np.float32))
    # a mono soundtrack at another rate: duplicated to stereo, resampled to 44.1 kHz
    _write(root / "lincity" / "01 - a tune.ogg", rng.normal(0, 0.05, (1, 32000)), sr=32000)
    return root


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny music4 model at 44.1 kHz with a training record (its output is no separation)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_checkpoint(
        path,
        DeepSampler(preset_config("tiny", sample_rate=SR)),
        training={"purpose": "test fixture"},
        metadata={"name": "tiny-teacher"},
    )
    return path


def test_finds_the_installed_songs(songs):
    script = load_script("make_pseudo_stems")
    found = script.find_real_mixtures(songs / "fof", songs / "lincity")
    assert [s.name for s in found] == [
        "fof_muldjord_song_one",
        "fof_sectoid_Song_Two",
        "lincity_01_-_a_tune",
    ]
    assert found[0].known_other == (songs / "fof/muldjord/song one/guitar.ogg",)
    assert found[0].licence == "CC BY-SA 3.0" and found[1].licence == "MIT (Expat)"
    assert found[2].known_other == () and found[2].origin == "lincity-ng-data"
    assert script.find_real_mixtures(songs / "absent", songs / "absent") == []


def test_stems_sum_to_the_song_and_keep_the_known_guitar(songs):
    script = load_script("make_pseudo_stems")
    song = script.find_real_mixtures(songs / "fof", songs / "absent")[0]
    heard = []

    def separate(x):  # a fake teacher: fixed shares of what it hears, one sample short
        heard.append(x)
        return {"vocals": 0.1 * x[:, :-1], "drums": 0.2 * x[:, :-1], "bass": 0.3 * x[:, :-1]}

    stems, levels = script.pseudo_stems(separate, song)
    backing = script._load_sum(song.teacher_parts)
    guitar = script._load_sum(song.known_other)
    np.testing.assert_allclose(heard[0], backing)  # the teacher never hears the guitar
    total = sum(stems.values())
    np.testing.assert_allclose(total, backing + guitar, atol=1e-6)
    np.testing.assert_allclose(stems["vocals"][:, :-1], 0.1 * backing[:, :-1], atol=1e-7)
    assert np.all(stems["vocals"][:, -1] == 0)
    # other = the teacher's rest of the backing (0.4 of it here) plus the real guitar
    np.testing.assert_allclose(
        stems["other"][:, :-1] - guitar[:, :-1], 0.4 * backing[:, :-1], atol=1e-6
    )
    assert (
        set(levels) == {"vocals", "drums", "bass", "other"} and levels["other"] > levels["vocals"]
    )


def _corpus(root, tracks: int = 3) -> None:
    rng = np.random.default_rng(1)
    for split in ("train", "valid"):
        for i in range(tracks):
            for s in ("vocals", "drums", "bass", "other"):
                path = root / split / f"t{i}" / f"{s}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, rng.normal(0, 0.05, (SR, 2)).astype(np.float32), SR)
    (root / "corpus.json").write_text(json.dumps({"sources": ["vocals", "drums", "bass", "other"]}))


def test_end_to_end_merge_and_resume(songs, teacher, tmp_path, capsys):
    script = load_script("make_pseudo_stems")
    corpus, out, merged = tmp_path / "corpus", tmp_path / "pseudo", tmp_path / "merged"
    _corpus(corpus)
    args = [
        "--out",
        str(out),
        "--teacher",
        str(teacher),
        "--fretsonfire-dir",
        str(songs / "fof"),
        "--lincity-dir",
        str(songs / "lincity"),
        "--merge",
        str(corpus),
        "--merged",
        str(merged),
        "--copies",
        "2",
    ]
    assert script.main(args) == 0
    record = json.loads((out / "pseudo.json").read_text())
    assert record["teacher"] == str(teacher) and len(record["songs"]) == 3
    for song in record["songs"]:
        stems = [
            sf.read(out / "train" / song["name"] / f"{s}.flac")[0]
            for s in ("vocals", "drums", "bass", "other")
        ]
        assert all(x.shape == (SR, 2) for x in stems)
    cfg = DatasetConfig(segment_seconds=0.5, examples_per_epoch=4, real_pool="none")
    train = StemDataset(merged, "train", cfg, train=True)
    assert len(train.tracks) == 3 + 3 * 2
    assert {t.folder.name for t in StemDataset(merged, "valid", cfg, train=False).tracks} == {
        "t0",
        "t1",
        "t2",
    }
    summary = json.loads((merged / "corpus.json").read_text())
    assert summary["pseudo_stems"]["pseudo_links"] == 6
    # a rerun keeps what is written and only rebuilds the links
    stamp = (out / "train" / "fof_sectoid_Song_Two" / "bass.flac").stat().st_mtime_ns
    assert script.main(args[:-2] + ["--copies", "1"]) == 0
    assert (out / "train" / "fof_sectoid_Song_Two" / "bass.flac").stat().st_mtime_ns == stamp
    assert len(StemDataset(merged, "train", cfg, train=True).tracks) == 3 + 3
    assert "wrote 3 songs" in capsys.readouterr().out


def test_refusals(songs, tiny_checkpoint, tmp_path, capsys):
    script = load_script("make_pseudo_stems")
    empty = ["--fretsonfire-dir", str(tmp_path / "x"), "--lincity-dir", str(tmp_path / "y")]
    assert script.main(["--out", str(tmp_path / "o")] + empty) == 2
    assert "no real songs found" in capsys.readouterr().err
    fof = ["--fretsonfire-dir", str(songs / "fof"), "--lincity-dir", str(tmp_path / "y")]
    assert script.main(["--out", str(tmp_path / "o"), "--teacher", str(tiny_checkpoint)] + fof) == 2
    assert "22050 Hz" in capsys.readouterr().err  # the tiny preset is no 44.1 kHz music4 model
    assert not (tmp_path / "o" / "train").exists()
    assert script.main(["--out", str(tmp_path / "o"), "--merge", str(tmp_path)] + fof) == 2
    assert "--merge and --merged go together" in capsys.readouterr().err
