"""The web app's JSON API through FastAPI's TestClient: a job from upload to stems and zip,
the queue surviving a restart, and every refusal as a one-line JSON error."""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf

from tests.web.conftest import SR, wait_done, wav_bytes

pytest.importorskip("fastapi", reason="the web tests need the web extra (fastapi)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")


def upload(client, data: bytes, name: str = "song.wav", model: str = "tiny", **extra):
    files = {"file": (name, data, "application/octet-stream")}
    return client.post("/api/jobs", files=files, data={"model": model, **extra})


def test_models_lists_the_offered_separators(client):
    body = client.get("/api/models").json()
    (model,) = body["models"]
    assert model["name"] == "tiny" and model["sources"] == ["vocals", "drums", "bass", "other"]
    assert model["sample_rate"] == SR and model["causal"] is True
    assert model["latency_ms"] == pytest.approx(11.61, abs=0.01)
    assert body["max_upload_mb"] == 200.0 and body["live"] is True


def test_job_from_upload_to_stems_and_zip(client):
    data = wav_bytes(2.0)
    mixture, _ = sf.read(io.BytesIO(data), always_2d=True)
    res = upload(client, data)
    assert res.status_code == 201, res.text
    job_id = res.json()["id"]
    assert len(job_id) >= 16 and job_id.replace("-", "").replace("_", "").isalnum()
    view = wait_done(client, job_id)
    assert view["status"] == "done", view
    assert view["progress"] == 1 and view["position"] is None and view["name"] == "song.wav"
    assert view["sample_rate"] == SR and view["seconds"] == pytest.approx(2.0)
    assert [s["name"] for s in view["stems"]] == ["vocals", "drums", "bass", "other"]
    total = np.zeros_like(mixture)
    for stem in view["stems"]:
        res = client.get(stem["url"])
        assert res.status_code == 200 and res.headers["content-type"] == "audio/wav"
        audio, sr = sf.read(io.BytesIO(res.content), always_2d=True)
        assert sr == SR and audio.shape == mixture.shape  # the input's rate and length
        total += audio
    assert np.abs(total).max() > 0.01  # the stems hold sound, not silence
    res = client.get(view["zip"])
    assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
    assert 'filename="song-stems.zip"' in res.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(res.content)) as z:
        assert sorted(z.namelist()) == sorted(
            f"{s}.wav" for s in ("vocals", "drums", "bass", "other")
        )
        for name in z.namelist():
            audio, sr = sf.read(io.BytesIO(z.read(name)), always_2d=True)
            assert sr == SR and audio.shape == mixture.shape


def test_progress_as_server_sent_events(client):
    job_id = upload(client, wav_bytes(1.0)).json()["id"]
    with client.stream("GET", f"/api/jobs/{job_id}/events") as res:
        assert res.headers["content-type"].startswith("text/event-stream")
        views = [json.loads(line[6:]) for line in res.iter_lines() if line.startswith("data: ")]
    assert views[-1]["status"] == "done" and views[-1]["stems"]
    assert all(v["status"] in ("queued", "running", "done") for v in views)
    assert [v["progress"] for v in views] == sorted(v["progress"] for v in views)


def test_oversized_upload_is_413_json(tmp_path, tiny_checkpoint):
    from fastapi.testclient import TestClient

    from deepsampler.web import Settings, create_app

    settings = Settings(
        data_dir=tmp_path / "web", models={"tiny": tiny_checkpoint}, max_upload_mb=0.1
    )
    with TestClient(create_app(settings)) as client:
        res = upload(client, wav_bytes(3.0))  # 264 kB
        assert res.status_code == 413
        assert res.json() == {
            "error": "the file is larger than this server's upload limit (0.1 MB)"
        }
        # a chunked body (no Content-Length) is counted while it is read
        body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n'
        chunks = iter([body] + [b"\0" * 65536] * 4 + [b"\r\n--b--\r\n"])
        res = client.post(
            "/api/jobs", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert res.status_code == 413 and "upload limit" in res.json()["error"]
    assert list((tmp_path / "web" / "jobs").iterdir()) == []  # nothing kept


def test_text_named_wav_is_refused_by_its_content(client, settings):
    res = upload(client, b"just some text, not audio\n" * 20, name="song.wav")
    assert res.status_code == 415
    error = res.json()["error"]
    assert error.startswith("song.wav: not an audio file (its content is text")
    assert str(settings.data_dir) not in error  # the server's paths stay on the server
    assert list((settings.data_dir / "jobs").iterdir()) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "nope"}, "model 'nope': choose one of tiny"),
        ({}, "model None: choose one of tiny"),
    ],
)
def test_unknown_model_is_400(client, fields, message):
    res = client.post("/api/jobs", files={"file": ("a.wav", wav_bytes(0.2))}, data=fields)
    assert res.status_code == 400 and res.json() == {"error": message}


def test_enhance_without_a_shipped_stemprover_is_400(client, monkeypatch):
    from deepsampler.models import registry

    monkeypatch.setattr(registry, "shipped", lambda kind=None: [])
    assert client.get("/api/models").json()["enhance"] is False
    res = upload(client, wav_bytes(0.2), enhance="true")
    assert res.status_code == 400
    assert res.json() == {"error": "enhance: no StemProver model ships with this installation"}


def test_missing_file_and_not_multipart(client):
    res = client.post("/api/jobs", data={"model": "tiny"})
    assert res.status_code == 415 and "multipart/form-data" in res.json()["error"]
    res = client.post("/api/jobs", files={"other": ("a.txt", b"x")}, data={"model": "tiny"})
    assert res.status_code == 400 and res.json() == {
        "error": "no file in the upload (the form field is 'file')"
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/%2E%2E",
        "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA",
        "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/zip",
        "/api/jobs/..%2F..%2Fjobs.sqlite3/stems/vocals",
        "/api/jobs/../../jobs.sqlite3",
    ],
)
def test_unknown_or_traversing_job_ids_are_404_json(client, path):
    res = client.get(path)
    assert res.status_code == 404
    assert set(res.json()) == {"error"}


def test_stem_names_come_from_the_job_only(client):
    job_id = upload(client, wav_bytes(0.5)).json()["id"]
    wait_done(client, job_id)
    for stem in ("input", "vocals.wav", "stems.zip", "..."):
        res = client.get(f"/api/jobs/{job_id}/stems/{stem}")
        assert res.status_code == 404 and res.json()["error"].startswith("no stem"), stem
    for stem in ("..%2Finput", "..%2F..%2Fjobs.sqlite3"):  # no route takes a slash here
        res = client.get(f"/api/jobs/{job_id}/stems/{stem}")
        assert res.status_code == 404 and set(res.json()) == {"error"}
    assert client.get(f"/api/jobs/{job_id}/stems/vocals").status_code == 200


def test_a_queued_job_survives_a_restart(tmp_path, tiny_checkpoint):
    from fastapi.testclient import TestClient

    from deepsampler.web import Settings, create_app

    def app(workers: int):
        return create_app(
            Settings(data_dir=tmp_path / "web", models={"tiny": tiny_checkpoint}, workers=workers)
        )

    with TestClient(app(workers=0)) as client:  # no worker: the jobs wait in the queue
        first = upload(client, wav_bytes(0.5, seed=1)).json()["id"]
        second = upload(client, wav_bytes(0.5, seed=2)).json()["id"]
        assert client.get(f"/api/jobs/{first}").json()["position"] == 1
        view = client.get(f"/api/jobs/{second}").json()
        assert view["status"] == "queued" and view["position"] == 2
        # a job cut off while running (the server stopped mid-separation) is queued again
        client.app.state.store.claim()
    with TestClient(app(workers=1)) as client:
        assert wait_done(client, first)["status"] == "done"
        assert wait_done(client, second)["status"] == "done"


def test_expired_jobs_are_removed_with_their_files(client, settings):
    job_id = upload(client, wav_bytes(0.3)).json()["id"]
    wait_done(client, job_id)
    store = client.app.state.store
    assert store.remove_expired(3600) == []
    assert store.remove_expired(3600, now=time.time() + 3601) == [job_id]
    assert not (settings.data_dir / "jobs" / job_id).exists()
    assert client.get(f"/api/jobs/{job_id}").status_code == 404


def test_a_failed_job_says_why_in_one_line(client, settings):
    data = wav_bytes(0.3, channels=3)  # the tiny model takes 1 or 2 channels
    job_id = upload(client, data, name="surround.wav").json()["id"]
    view = wait_done(client, job_id)
    assert view["status"] == "failed"
    assert view["error"].startswith("surround.wav: has 3 channels but the model takes 2")
    assert str(settings.data_dir) not in view["error"]


def test_concurrent_uploads_are_bounded(settings):
    """With one upload at a time, a second one while the first is still arriving gets 503."""
    import asyncio

    import httpx

    from deepsampler.web import create_app

    settings.max_uploads = 1
    app = create_app(settings)  # no lifespan here: the jobs stay queued
    boundary = "xyz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\ntiny\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    data = wav_bytes(0.2)
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}

    async def run():
        gate = asyncio.Event()

        async def slow_body():
            yield head
            await gate.wait()
            yield data + tail

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            first = asyncio.create_task(ac.post("/api/jobs", content=slow_body(), headers=headers))
            await asyncio.sleep(0.3)  # the first upload is being received
            second = await ac.post("/api/jobs", content=head + data + tail, headers=headers)
            gate.set()
            return await first, second

    first, second = asyncio.run(run())
    assert second.status_code == 503 and "other uploads" in second.json()["error"]
    assert first.status_code == 201, first.text
    app.state.store.close()


def test_docs_and_page_are_served(client):
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/api/jobs", "/api/models"}
    page = client.get("/")
    assert page.status_code == 200 and "<title>DeepSampler</title>" in page.text
    for name in ("app.js", "style.css", "worklet.js"):
        assert client.get(f"/static/{name}").status_code == 200
    res = client.get("/static/../jobs.sqlite3")
    assert res.status_code == 404


@pytest.mark.slow
def test_enhanced_job_serves_the_refined_stems(client):
    """With ``enhance``, the stems served are StemProver's (about 20 s of CPU a second)."""
    data = wav_bytes(1.0, seed=4)
    plain = wait_done(client, upload(client, data).json()["id"])
    res = upload(client, data, enhance="true")
    view = wait_done(client, res.json()["id"], timeout=300)
    assert view["status"] == "done" and view["enhance"] is True, view
    for a, b in zip(plain["stems"], view["stems"], strict=True):
        x, sr_x = sf.read(io.BytesIO(client.get(a["url"]).content), always_2d=True)
        y, sr_y = sf.read(io.BytesIO(client.get(b["url"]).content), always_2d=True)
        assert sr_x == sr_y == SR and x.shape == y.shape
        assert np.isfinite(y).all() and not np.allclose(x, y, atol=1e-4)
