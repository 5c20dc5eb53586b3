"""scripts/make_heldout_speech.py on a small generated pool: only test-split material, only
non-stationary noise, exact mixtures at the stated SNR, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from deepsampler.data.real_pool import RealPool
from tests.scripts_loader import load_script

HEADER = "local_file\tcategory\tduration_s\tsr\tchannels\tlicence\tsource\tnote\n"


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """40 speakers and 40 noise clips (half steady classes), 1 s each at 16 kHz."""
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        for kind, name, note in (
            ("speech", f"libri__{100 + i}-1-0000", "speech LibriSpeech"),
            ("noise", f"esc50__{i}", "rain" if i % 2 else "dog"),
        ):
            path = root / kind / f"{name}.flac"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
            rows.append(
                f"{kind}/{name}.flac\ttrain/{kind}\t1.00\t16000\t\tCC BY\tx\t{note}; orig\n"
            )
    (root / "MANIFEST.tsv").write_text(HEADER + "".join(rows))
    return root


def test_items_use_held_out_material_at_the_stated_snr(pool, tmp_path):
    script = load_script("make_heldout_speech")
    out = tmp_path / "held"
    assert script.main(["--pool", str(pool), "--out", str(out), "--items", "6"]) == 0
    record = json.loads((out / "heldout.json").read_text())
    real = RealPool.open(pool)
    test_files = {str(f.path.relative_to(pool)) for f in real.files if f.split == "test"}
    assert len(record["items"]) == 6
    for item in record["items"]:
        assert item["speech_file"] in test_files and item["noise_file"] in test_files
        assert item["noise_class"] == "dog"  # steady classes (rain) are left out
        assert -5 <= item["snr_db"] <= 10
        folder = out / item["name"]
        mix, speech, noise = (
            sf.read(folder / f"{s}.wav")[0] for s in ("mixture", "speech", "noise")
        )
        np.testing.assert_allclose(mix, speech + noise, atol=1e-6)
        snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
        assert abs(snr - item["snr_db"]) < 0.05


def test_refuses_a_folder_in_use_and_a_pool_without_test_material(pool, tmp_path, capsys):
    script = load_script("make_heldout_speech")
    out = tmp_path / "held"
    out.mkdir()
    (out / "x").write_text("mine")
    assert script.main(["--pool", str(pool), "--out", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
    empty = tmp_path / "empty-pool"
    empty.mkdir()
    (empty / "MANIFEST.tsv").write_text(HEADER)
    assert script.main(["--pool", str(empty), "--out", str(tmp_path / "o2")]) == 1
    assert "both are needed" in capsys.readouterr().err


def test_finds_the_pool_through_the_environment(pool, tmp_path, monkeypatch, capsys):
    script = load_script("make_heldout_speech")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEEPSAMPLER_TRAIN_REAL", str(pool))
    out = tmp_path / "held"
    assert script.main(["--out", str(out), "--items", "2"]) == 0
    assert json.loads((out / "heldout.json").read_text())["pool"] == str(pool)
    monkeypatch.setenv("DEEPSAMPLER_TRAIN_REAL", str(tmp_path / "nowhere"))
    assert script.main(["--out", str(tmp_path / "o2")]) == 1
    assert "no real-recordings pool found" in capsys.readouterr().err
