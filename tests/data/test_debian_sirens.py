"""data.debian_sirens on a fake unpacked root: installed files are found per split, missing
packages give one reason each, and loading gives mono at the asked rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.data import debian_sirens as D


def unpack(root: Path, sounds, seconds: float = 0.5) -> Path:
    """Write a short stereo tone at each ``sounds`` entry's path (and rate) under ``root``."""
    for s in sounds:
        path = s.located(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * s.sample_rate)) / s.sample_rate
        tone = 0.2 * np.sin(2 * np.pi * 900 * t)
        sf.write(path, np.stack([tone, 0.5 * tone], axis=1), s.sample_rate)
    return root


def test_catalogue_is_split_by_package():
    assert {s.split for s in D.DEBIAN_SIRENS} == {"train", "valid", "test"}
    for package in {s.package for s in D.DEBIAN_SIRENS + D.DEBIAN_CONFUSERS}:
        splits = {s.split for s in D.DEBIAN_SIRENS + D.DEBIAN_CONFUSERS if s.package == package}
        assert len(splits) == 1, package  # one package's material never crosses splits
    assert all(s.path.startswith("/usr/share/") and s.licence for s in D.DEBIAN_SIRENS)


def test_nothing_installed_gives_reasons(tmp_path):
    found, reasons = D.find_debian_sirens(root=tmp_path)
    assert found == []
    packages = {s.package for s in D.DEBIAN_SIRENS}
    assert len(reasons) == len(packages)
    assert all("not installed" in r and "apt-get install" in r for r in reasons)
    found, reasons = D.find_debian_sirens(split="valid", root=tmp_path)
    assert found == [] and reasons == [
        "scorched3d-data: not installed (2 files missing under "
        f"{tmp_path}); sudo apt-get install scorched3d-data"
    ]
    found, reasons = D.find_debian_sirens(split="extra", root=tmp_path)
    assert found == [] and "no Debian recording" in reasons[-1]


def test_installed_files_are_found_by_split_and_load_mono(tmp_path, monkeypatch):
    held_out = [s for s in D.DEBIAN_SIRENS if s.split == "test"]
    root = unpack(tmp_path / "root", held_out)
    found, reasons = D.find_debian_sirens(split="test", root=root)
    assert found == held_out and reasons == []
    found, reasons = D.find_debian_sirens(root=root)  # all splits: the others' packages lack
    assert found == held_out and len(reasons) == 2
    assert "lincity-ng-data" in reasons[0] and "scorched3d-data" in reasons[1]
    monkeypatch.setenv(D.ROOT_ENV, str(root))  # the default root comes from the environment
    assert D.find_debian_sirens("test")[0] == held_out
    x = D.load_debian_sound(held_out[0], 16000)
    assert x.dtype == np.float32 and x.ndim == 1 and x.size == pytest.approx(8000, abs=2)
    assert np.abs(x).max() == pytest.approx(0.15, rel=0.1)  # the channels' mean
