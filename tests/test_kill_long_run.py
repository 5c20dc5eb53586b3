"""Issue 25's acceptance run: a 10-minute file separated by music4-rt and killed at random
points, by SIGTERM and by SIGKILL, leaves no partial file after the next run (slow: minutes).

    .venv/bin/python -m pytest -q -m slow tests/test_kill_long_run.py -s
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow


def run(song: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "deepsampler.cli", "separate", str(song), "-o", str(out), "-q"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def partials(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.partial")) if folder.exists() else []


def test_a_ten_minute_run_killed_at_random_points_leaves_no_partial_file(tmp_path):
    song = tmp_path / "ten.wav"
    rate, seconds = 44100, 600
    rng = np.random.default_rng(0)
    with sf.SoundFile(song, "w", rate, 2, subtype="PCM_16") as f:
        for _ in range(seconds // 10):  # 10 s blocks: the test's memory stays small
            t = np.arange(10 * rate) / rate
            tone = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 800) * t)
            f.write((tone[:, None] + rng.normal(0, 0.05, (10 * rate, 2))).astype(np.float32))
    out = tmp_path / "out"
    picker = random.Random(25)
    for sig in [signal.SIGTERM, signal.SIGKILL] * 3:
        proc = run(song, out)
        time.sleep(picker.uniform(2.0, 20.0))  # from model loading to deep into the writing
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        left = partials(out)
        print(f"{signal.Signals(sig).name}: rc {proc.returncode}, partial files left {len(left)}")
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err, err
            assert left == []
    proc = run(song, out)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err
    assert partials(out) == []
    stems = sorted(p.name for p in (out / "ten").iterdir())
    assert stems == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    assert sf.info(out / "ten" / "vocals.wav").frames == seconds * rate
