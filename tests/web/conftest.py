"""The web app's fixtures: an app over the tiny test model in a data folder of the test, and
the detection tests' tiny siren separator with a tiny detector over it."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import write_tone
from tests.detection import conftest as detection
from tests.detection.conftest import SR as SIREN_SR
from tests.detection.conftest import make_detector, street

SR = 22050  # the tiny model's rate


def wait_done(client, job_id: str, timeout: float = 60.0) -> dict:
    """The job's view once it is done or failed (polled every 0.1 s for ``timeout`` s)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = client.get(f"/api/jobs/{job_id}").json()
        if view["status"] in ("done", "failed"):
            return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {view['status']} after {timeout} s")


def wav_bytes(seconds: float = 2.0, sr: int = SR, channels: int = 2, seed: int = 0) -> bytes:
    """A tone-plus-noise WAV file's bytes (``tests.conftest.write_tone``'s signal)."""
    buf = io.BytesIO()
    write_tone(buf, seconds, sr, channels, "PCM_16", seed, fmt="WAV")
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path, tiny_checkpoint):
    """Settings over the tiny model (``tiny``), its live engine the eager one (no export)."""
    from deepsampler.web import Settings

    return Settings(
        data_dir=tmp_path / "web", models={"tiny": tiny_checkpoint}, engine="torch", max_live=2
    )


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from deepsampler.web import create_app

    with TestClient(create_app(settings)) as c:
        yield c


# ---- the siren detector (issue 29): the detection tests' tiny separator and detector --------


separator_path = detection.separator_path  # the detection tests' fixture, here too


def siren_audio() -> np.ndarray:
    """``[1, n]`` street noise with a wail from 1 to 3 s, at the tiny separator's 16 kHz."""
    return street(4.0, 21, (1.0, 3.0))


def siren_wav_bytes() -> bytes:
    """:func:`siren_audio` as a 32-bit float WAV (read back sample for sample)."""
    buf = io.BytesIO()
    sf.write(buf, siren_audio().T, SIREN_SR, format="WAV", subtype="FLOAT")
    return buf.getvalue()


@pytest.fixture(scope="session")
def siren_detector(tmp_path_factory, separator_path) -> Path:
    """A tiny detector over ``separator_path`` (random weights) whose thresholds lie inside its
    probability range on :func:`siren_audio`, so that audio has events."""
    from deepsampler.detection import Detector, EventConfig

    folder = tmp_path_factory.mktemp("siren-detector")
    probe = make_detector(folder / "probe.pt", separator_path)
    _, prob = Detector(probe).probabilities(siren_audio(), SIREN_SR)
    on, off = np.quantile(prob, [0.75, 0.55])
    events = EventConfig(float(on), float(off), 0.2, 0.2)
    return make_detector(folder / "siren-det.pt", separator_path, events)  # the same weights
