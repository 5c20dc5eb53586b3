"""A 10-minute stereo file separates with bounded peak memory (child process, ru_maxrss)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from peak_memory import measure  # noqa: E402

from deepsampler.models import shipped_models  # noqa: E402


def test_two_minutes_tiny_model_bounded(tiny_checkpoint):
    """Fast-suite stand-in: the same path on 2 minutes (memory does not grow with length, since
    reading, chunking, resampling and writing all go block by block)."""
    r = measure(2.0, str(tiny_checkpoint), 22050, threads=2)
    print(r)
    assert r["audio_seconds"] == 120 and r["output_mb"] > 80
    assert r["peak_rss_mb"] < 1024


@pytest.mark.slow
def test_ten_minutes_tiny_model_under_2gb(tiny_checkpoint):
    r = measure(10.0, str(tiny_checkpoint), 22050, threads=2)
    print(r)
    assert r["audio_seconds"] == 600 and r["output_mb"] > 400
    assert r["peak_rss_mb"] < 2048


@pytest.mark.slow
def test_ten_minutes_shipped_model_under_2gb():
    name = "toy4-demo"
    if name not in shipped_models():
        pytest.skip(f"{name} is not shipped")
    r = measure(10.0, name, 44100, threads=2)
    print(r)
    assert r["peak_rss_mb"] < 2048
