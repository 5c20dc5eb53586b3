"""A 10-minute stereo file separates with peak memory under 2 GB (child process, VmHWM), measured
by ``benchmarks/peak_memory.py`` run as a script."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "peak_memory.py"


def measure(minutes: float, model: str, sample_rate: int, threads: int, out: Path) -> dict:
    """``benchmarks/peak_memory.py``'s JSON for one run."""
    cmd = [sys.executable, str(SCRIPT), "--minutes", str(minutes), "--model", model]
    cmd += ["--sample-rate", str(sample_rate), "--threads", str(threads), "--json", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def test_ten_minutes_stereo_shipped_model_under_2gb(tmp_path):
    """The shipped 44.1 kHz stereo model (small preset) on 10 minutes: reading, chunking,
    resampling and writing go block by block, so memory does not grow with the length."""
    r = measure(10.0, "toy4-demo", 44100, threads=2, out=tmp_path / "peak.json")
    print(r)
    assert r["audio_seconds"] == 600
    assert r["output_mb"] > 800  # four 32-bit float stereo stems of 10 minutes were written
    assert r["peak_rss_mb"] < 2048
