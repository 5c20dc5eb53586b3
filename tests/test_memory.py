"""A 10-minute stereo file separates with peak memory under 2 GB (child process, VmHWM)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from peak_memory import measure  # noqa: E402


def test_ten_minutes_stereo_shipped_model_under_2gb():
    """The shipped 44.1 kHz stereo model (small preset) on 10 minutes: reading, chunking,
    resampling and writing go block by block, so memory does not grow with the length."""
    r = measure(10.0, "toy4-demo", 44100, threads=2)
    print(r)
    assert r["audio_seconds"] == 600
    assert r["output_mb"] > 800  # four 32-bit float stereo stems of 10 minutes were written
    assert r["peak_rss_mb"] < 2048
