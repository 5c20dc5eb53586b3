"""Siren events on the web app (issue 29): a job of the detector's separator lists the events
`Detector.detect` gives for its upload, other jobs none; `/api/models` says which model detects;
`serve --detector` reaches the settings, and a detector that cannot serve is one line."""

from __future__ import annotations

import pytest

from tests.web.conftest import (
    SIREN_SR,
    make_detector,
    siren_audio,
    siren_wav_bytes,
    wait_done,
    wav_bytes,
)

pytest.importorskip("fastapi", reason="the web tests need the web extra (fastapi)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")


def upload(client, data: bytes, model: str, name: str = "street.wav") -> str:
    res = client.post("/api/jobs", files={"file": (name, data, "audio/wav")}, data={"model": model})
    assert res.status_code == 201, res.text
    return res.json()["id"]


@pytest.fixture
def siren_client(tmp_path, tiny_checkpoint, separator_path, siren_detector):
    from fastapi.testclient import TestClient

    from deepsampler.web import Settings, create_app

    settings = Settings(
        data_dir=tmp_path / "web",
        models={"tiny": tiny_checkpoint, "siren": separator_path},
        detector=str(siren_detector),
        engine="torch",
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_a_job_of_the_detectors_separator_lists_the_detected_events(siren_client, siren_detector):
    from deepsampler.detection import Detector

    body = siren_client.get("/api/models").json()
    assert {m["name"]: m["detects"] for m in body["models"]} == {"tiny": None, "siren": "siren"}
    assert body["detector"].startswith("detector siren-det: siren from the siren stem of ")

    view = wait_done(siren_client, upload(siren_client, siren_wav_bytes(), "siren"), timeout=120)
    assert view["status"] == "done", view
    assert [s["name"] for s in view["stems"]] == ["siren", "background"]
    expected = Detector(siren_detector).detect(siren_audio(), SIREN_SR)
    assert len(expected) >= 1  # the thresholds lie inside the network's range
    got = view["events"]
    assert [sorted(e) for e in got] == [["confidence", "label", "offset", "onset"]] * len(got)
    assert [e["label"] for e in got] == [e.label for e in expected] == ["siren"] * len(got)
    times = [t for e in got for t in (e["onset"], e["offset"])]
    assert times == pytest.approx([t for e in expected for t in (e.onset, e.offset)], abs=1e-6)
    assert [e["confidence"] for e in got] == pytest.approx([e.confidence for e in expected])

    other = wait_done(
        siren_client, upload(siren_client, wav_bytes(1.0), "tiny", "song.wav"), timeout=120
    )
    assert other["status"] == "done", other
    assert "events" not in other  # only the detector's separator detects


def test_without_a_detector_no_model_detects(client):
    body = client.get("/api/models").json()
    assert [m["detects"] for m in body["models"]] == [None] and body["detector"] is None


def test_the_detectors_separator_is_offered_when_not_listed(
    tmp_path, tiny_checkpoint, siren_detector
):
    from deepsampler.web import Settings, create_app

    app = create_app(
        Settings(data_dir=tmp_path, models={"tiny": tiny_checkpoint}, detector=siren_detector)
    )
    models = app.state.models
    assert list(models.models) == ["tiny", "tiny-siren"] and models.detects == {
        "tiny-siren": "siren"
    }


def test_none_turns_detection_off():
    from deepsampler.web import Settings
    from deepsampler.web.settings import default_detector

    assert Settings(models={"x": "x.pt"}, detector="none").detector is None
    # nothing ships as siren-sde yet: no detector by default (the shipped one once it does)
    assert Settings(models={"x": "x.pt"}).detector == default_detector()


# ---- the CLI --------------------------------------------------------------------------------
uvicorn = pytest.importorskip("uvicorn", reason="the web tests need the web extra (uvicorn)")


@pytest.fixture
def ran(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_serve_detector_reaches_the_settings(ran, tmp_path, siren_detector, capsys):
    from deepsampler.cli import main

    assert main(["serve", "--data-dir", str(tmp_path), "--detector", str(siren_detector)]) == 0
    (app, _) = ran[0]
    assert app.state.settings.detector == str(siren_detector)
    assert app.state.models.detects == {"tiny-siren": "siren"}
    assert "tiny-siren" in app.state.models.models
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("detector siren-det: siren from the siren stem of ")
    assert out[0].endswith("| its events come with the tiny-siren model's jobs")


def test_serve_detector_none_is_off(ran, tmp_path):
    from deepsampler.cli import main

    assert main(["serve", "--data-dir", str(tmp_path), "--detector", "none"]) == 0
    (app, _) = ran[0]
    assert app.state.settings.detector is None and app.state.models.detects == {}


def test_a_detector_that_cannot_serve_is_one_line(
    ran, tmp_path, capsys, separator_path, tiny_checkpoint
):
    from deepsampler.cli import main

    mixture_only = make_detector(tmp_path / "mix.pt", None)
    cases = {
        str(tmp_path / "missing.pt"): "checkpoint not found",
        str(tiny_checkpoint): "",  # a separator, not a detector
        str(mixture_only): "reads the mixture alone",
    }
    for spec, says in cases.items():
        assert main(["serve", "--data-dir", str(tmp_path / "d"), "--detector", spec]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"deepsampler: error: --detector {spec}: ") and says in err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert ran == []
