"""scripts/make_siren_streams.py on a small generated pool and a fake unpacked Debian root: only
held-out (test-split) material, annotations that match the index, sirens at the drawn SNR, no
siren in siren-free streams, the same streams for the same seed, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from deepsampler.data import debian_sirens as D
from deepsampler.data.real_pool import RealPool
from tests.data.test_debian_sirens import unpack
from tests.scripts_loader import load_script

HEADER = "local_file\tcategory\tduration_s\tsr\tchannels\tlicence\tsource\tnote\n"
SR = 16000


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """30 clips (1 s) each of background, noise (wind: a bed; dog: a confuser), siren and
    speech; about a tenth of each hashes to the test split."""
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(SR) / SR
    for i in range(30):
        for kind, name, note in (
            ("background", f"esc50__bg{i}", "engine"),
            ("noise", f"esc50__n{i}", "wind" if i % 2 else "dog"),
            ("siren", f"esc50__s{i}", "siren"),
            ("speech", f"libri__{100 + i}-1-0000", "speech LibriSpeech"),
        ):
            path = root / kind / f"{name}.flac"
            path.parent.mkdir(exist_ok=True)
            x = rng.normal(0, 0.05, SR)
            if kind == "siren":
                x += 0.2 * np.sin(2 * np.pi * (800 + 300 * np.sin(2 * np.pi * t)) * t)
            sf.write(path, x.astype(np.float32), SR)
            rows.append(f"{kind}/{name}.flac\ttrain/{kind}\t1.00\t16000\t\tCC BY\tx\t{note}; o\n")
    (root / "MANIFEST.tsv").write_text(HEADER + "".join(rows))
    return root


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory):
    """Every catalogued Debian sound, as 1 s tones, unpacked under a fake root."""
    return unpack(tmp_path_factory.mktemp("debian"), D.DEBIAN_SIRENS + D.DEBIAN_CONFUSERS, 1.0)


def make(pool, debian_root, out, *extra) -> int:
    script = load_script("make_siren_streams")
    argv = ["--pool", str(pool), "--out", str(out), "--debian-root", str(debian_root)]
    return script.main([*argv, "--minutes", "1.5", "--stream-seconds", "20", "30", *extra])


def test_streams_use_only_held_out_material(pool, debian_root, tmp_path):
    out = tmp_path / "streams"
    assert make(pool, debian_root, out) == 0
    index = json.loads((out / "streams.json").read_text())
    assert "never train" in index["purpose"]
    real = RealPool.open(pool)
    allowed = {str(f.path.relative_to(pool)) for f in real.files if f.split == "test"}
    allowed |= {f"{s.package}:{s.path}" for s in D.DEBIAN_SIRENS + D.DEBIAN_CONFUSERS}
    allowed -= {f"{s.package}:{s.path}" for s in D.DEBIAN_SIRENS if s.split != "test"}
    streams = index["streams"]
    assert {s["name"][:4] for s in streams} == {"sire", "free"}
    assert sum(s["seconds"] for s in streams) == pytest.approx(90.0, abs=0.5)
    assert index["siren_free_minutes"] == pytest.approx(0.6, abs=0.02)
    used_sirens = set()
    for s in streams:
        assert set(s["sources"]) <= allowed, set(s["sources"]) - allowed
        audio, sr = sf.read(out / s["audio"])
        assert sr == SR and audio.ndim == 1 and audio.size == round(s["seconds"] * SR)
        assert np.abs(audio).max() <= 0.9 + 1e-6
        lines = (out / s["annotations"]).read_text().splitlines()
        assert s["siren_free"] == (not s["events"]) == (not lines)
        spans = []
        for line, e in zip(lines, s["events"], strict=True):
            onset, offset, label = line.split("\t")
            assert (float(onset), float(offset), label) == (e["onset"], e["offset"], "siren")
            assert 0 < e["onset"] < e["offset"] <= s["seconds"]
            assert -5 <= e["snr_db"] <= 10 and abs(e["snr_realised_db"] - e["snr_db"]) < 0.05
            used_sirens.add(e["source"])
            spans.append((e["onset"], e["offset"]))
        for c in s["confusers"]:  # confusers keep clear of the sirens
            assert all(c["offset"] <= a or c["onset"] >= b for a, b in spans)
    # the training package's sirens are never used
    assert used_sirens and not any(src.startswith("lincity-ng-data:") for src in used_sirens)
    assert {m["source"] for m in index["material"]["siren"]} == used_sirens


def test_valid_split_streams_use_only_valid_material(pool, debian_root, tmp_path):
    """``--split valid`` (streams to choose thresholds on): the pool's valid files and the
    Debian sirens assigned to valid only, and an index that says so."""
    out = tmp_path / "valid"
    assert make(pool, debian_root, out, "--split", "valid") == 0
    index = json.loads((out / "streams.json").read_text())
    assert index["split"] == "valid" and "never" not in index["purpose"]
    assert not any("assigned" in n for n in index["notes"])
    real = RealPool.open(pool)
    valid = {str(f.path.relative_to(pool)) for f in real.files if f.split == "valid"}
    debian = {f"{s.package}:{s.path}" for s in D.DEBIAN_SIRENS if s.split == "valid"}
    used = {src for s in index["streams"] for src in s["sources"]}
    assert used and used <= valid | debian, used - valid - debian
    assert any(s["events"] for s in index["streams"])


def test_synthetic_sirens_join_the_valid_split_only(pool, debian_root, tmp_path, capsys):
    """``--synthetic-sirens K`` adds K generated sirens to the valid split's real one, inserted
    like recordings (some events name them); the test split refuses them in one line."""
    script = load_script("make_siren_streams")
    clips = script.synthetic_sirens(6, 27)
    assert [c.source.split(":")[2] for c in clips] == [str(k) for k in range(6)]
    assert all(c.audio.size == 12 * SR and abs(script.rms_db(c.audio) + 20) < 0.1 for c in clips)
    assert len({c.kind for c in clips}) > 1 and "horn" not in {c.kind for c in clips}
    # deterministic for a seed, different for another
    np.testing.assert_array_equal(clips[0].audio, script.synthetic_sirens(1, 27)[0].audio)
    assert not np.array_equal(clips[0].audio, script.synthetic_sirens(1, 28)[0].audio)
    out = tmp_path / "valid"
    argv = ["--split", "valid", "--synthetic-sirens", "6", "--minutes", "5"]
    assert make(pool, debian_root, out, *argv) == 0
    index = json.loads((out / "streams.json").read_text())
    sources = [e["source"] for s in index["streams"] for e in s["events"]]
    assert any(x.startswith("synthetic:") for x in sources)
    assert {m["licence"] for m in index["material"]["siren"] if "synthetic" in m["source"]} == {
        "generated"
    }
    assert make(pool, debian_root, tmp_path / "t", "--synthetic-sirens", "2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "real sirens only" in err[0]
    assert not (tmp_path / "t").exists()


def test_stems_are_separation_items_that_add_up(pool, debian_root, tmp_path):
    out, stems = tmp_path / "streams", tmp_path / "stems"
    assert make(pool, debian_root, out, "--stems", str(stems)) == 0
    index = json.loads((out / "streams.json").read_text())
    events = [(s["name"], e) for s in index["streams"] for e in s["events"]]
    items = sorted(p.name for p in stems.iterdir())
    assert len(items) == len(events) > 0
    for k, (name, e) in enumerate(events[:3]):
        item = stems / items[k]
        assert item.name.startswith(name)
        mix, sr = sf.read(item / "mixture.wav")
        siren, _ = sf.read(item / "siren.wav")
        background, _ = sf.read(item / "background.wav")
        assert sr == SR and mix.shape == siren.shape == background.shape
        assert mix.size == pytest.approx((e["offset"] - e["onset"] + 2) * SR, abs=2 * SR)
        np.testing.assert_allclose(siren + background, mix, atol=1e-6)
        inside = siren[SR:-SR] if siren.size > 3 * SR else siren
        assert np.sqrt(np.mean(inside**2)) > 1e-4  # the siren sounds in its item
        # and at the drawn SNR against the rest, as the stream's record says
        active = np.abs(siren) > 0
        snr = 10 * np.log10(np.mean(siren[active] ** 2) / np.mean(background[active] ** 2))
        assert abs(snr - e["snr_db"]) < 3.0


def test_same_seed_same_streams(pool, debian_root, tmp_path):
    assert make(pool, debian_root, tmp_path / "a", "--seed", "5") == 0
    assert make(pool, debian_root, tmp_path / "b", "--seed", "5") == 0
    assert make(pool, debian_root, tmp_path / "c", "--seed", "6") == 0
    digest = {k: json.loads((tmp_path / k / "streams.json").read_text())["digest"] for k in "abc"}
    assert digest["a"] == digest["b"] != digest["c"]
    a, b = (sf.read(tmp_path / k / "siren_00.wav")[0] for k in "ab")
    np.testing.assert_array_equal(a, b)


def test_refusals(pool, debian_root, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("mine")
    assert make(pool, debian_root, out) == 1
    assert "not empty" in capsys.readouterr().err
    # no held-out siren anywhere: a pool without sirens and no Debian package unpacked
    bare = tmp_path / "bare-pool"
    bare.mkdir()
    rows = [line for line in (pool / "MANIFEST.tsv").read_text().splitlines(True)]
    (bare / "MANIFEST.tsv").write_text("".join(r for r in rows if not r.startswith("siren/")))
    for kind in ("background", "noise", "speech"):
        (bare / kind).symlink_to(pool / kind)
    assert make(bare, tmp_path / "empty-root", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "no held-out real siren" in err and "apt-get install micropolis-data" in err
    assert len(err.strip().splitlines()) == 1
    # as today's pool: its sirens all train/valid, so the held-out Debian ones carry the set
    assert make(bare, debian_root, tmp_path / "debian-only", "--minutes", "2") == 0
    index = json.loads((tmp_path / "debian-only" / "streams.json").read_text())
    used = {e["source"].split(":")[0] for s in index["streams"] for e in s["events"]}
    assert used == {"tuxpaint-stamps-default", "micropolis-data"}
