"""The web app: ``create_app(settings)`` -> a FastAPI app serving the page and its JSON API.

Routes: ``GET /`` (the page), ``GET /api/models``, ``POST /api/jobs``, ``GET /api/jobs/{id}``,
``GET /api/jobs/{id}/events`` (server-sent progress), ``GET /api/jobs/{id}/stems/{stem}``,
``GET /api/jobs/{id}/zip``, ``WS /api/live``; OpenAPI docs at ``/docs``. A job of the siren
detector's separator (``Settings.detector``) also lists the detected ``events``. Every error is
``{"error": "one line"}`` with its status. The client's strings never name a file here: a job
is found by its random token in the queue, a stem by its name in the job's own list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import zipfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from deepsampler.web.jobs import Job, JobStore
from deepsampler.web.live import LiveLimit, serve_live
from deepsampler.web.settings import Settings
from deepsampler.web.uploads import (
    UploadError,
    check_audio,
    display_name,
    read_form,
    save_upload,
)
from deepsampler.web.worker import STEMS, ModelCache, Workers

log = logging.getLogger("deepsampler.web")
STATIC = Path(__file__).resolve().parent / "static"
TRUE = {"1", "true", "on", "yes"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def job_view(job: Job, store: JobStore) -> dict:
    """What ``GET /api/jobs/{id}`` says of a job."""
    view = {
        "id": job.id,
        "name": job.name,
        "model": job.model,
        "enhance": job.enhance,
        "status": job.status,
        "progress": round(job.progress, 4),
        "position": store.position(job),
        "error": job.error,
    }
    if job.status == "done":
        base = f"/api/jobs/{job.id}"
        view["stems"] = [
            {"name": s, "url": f"{base}/stems/{s}"} for s in job.result.get("stems", [])
        ]
        view["zip"] = f"{base}/zip"
        view.update({k: job.result.get(k) for k in ("sample_rate", "seconds", "channels")})
        if "events" in job.result:  # a job of the detector's separator
            view["events"] = job.result["events"]
    return view


def _cleanup_loop(store: JobStore, keep_seconds: float, stop: threading.Event) -> None:
    while True:
        try:
            store.remove_expired(keep_seconds)
        except Exception:  # the next round tries again; the server goes on
            log.exception("removing expired jobs failed")
        if stop.wait(min(600.0, max(1.0, keep_seconds / 10))):
            return


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (the defaults of :class:`Settings` if None)."""
    settings = settings or Settings()
    models = ModelCache(settings.models)
    if settings.detector is not None:
        models.load_detector(settings.detector)  # at the start: a bad one is one line now
    store = JobStore(settings.data_dir)
    workers = Workers(store, models, settings.workers)
    live_limit = LiveLimit(settings.max_live)
    uploads = {"active": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.recover()  # jobs a stopped server left running wait again
        stop = threading.Event()
        cleaner = threading.Thread(
            target=_cleanup_loop,
            args=(store, settings.keep_hours * 3600, stop),
            daemon=True,
        )
        cleaner.start()
        workers.start()
        try:
            yield
        finally:
            stop.set()
            workers.stop(timeout=2.0)  # a job still running is queued again at the next start
            cleaner.join(timeout=2.0)

    app = FastAPI(title="DeepSampler", lifespan=lifespan)
    app.state.settings, app.state.store, app.state.models = settings, store, models

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def crashed(request, exc: Exception):
        return _error(500, f"internal error ({type(exc).__name__}); see the server's log")

    def can_enhance() -> bool:
        from deepsampler.models.registry import shipped

        return any(e.name == "stemprover" for e in shipped("stemprover"))

    def find_job(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:40]!r} (unknown, or removed)")
        return job

    def find_stem_file(job: Job, stem: str) -> Path:
        if job.status != "done":
            raise HTTPException(409, f"job {job.id} is {job.status}, it has no stems yet")
        if stem not in job.result.get("stems", []):
            raise HTTPException(404, f"no stem {stem[:40]!r} in job {job.id}")
        return store.folder(job.id) / STEMS / f"{stem}.wav"

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/models")
    async def list_models():
        """The separators on offer (``detects``: the label of the events a job of it gets, or
        null), the detector, whether StemProver can enhance, and the limits."""

        def describe(name: str) -> dict:
            sep = models.separator(name)
            cfg = sep.config
            return {
                "name": name,
                "sources": list(cfg.sources),
                "sample_rate": cfg.sample_rate,
                "channels": cfg.audio_channels,
                "causal": cfg.causal,
                "latency_ms": round(cfg.latency_ms, 2),
                "description": sep.describe(),
                "detects": models.detects.get(name),
            }

        listed = await run_in_threadpool(lambda: [describe(n) for n in models.models])
        return {
            "models": listed,
            "detector": models.detector.describe() if models.detector else None,
            "enhance": can_enhance(),
            "max_upload_mb": settings.max_upload_mb,
            "live": settings.max_live > 0,
        }

    @app.post("/api/jobs", status_code=201)
    async def create_job(request: Request):
        """Queue a separation: multipart ``file``, ``model``, optional ``enhance``."""
        if uploads["active"] >= settings.max_uploads:
            return _error(503, "the server is receiving other uploads; try again in a moment")
        uploads["active"] += 1
        try:
            return await _receive(request)
        except UploadError as exc:
            return _error(exc.status, str(exc))
        finally:
            uploads["active"] -= 1

    async def _receive(request: Request) -> dict:
        form = await read_form(request, settings.max_upload_bytes)
        upload, model = form.get("file"), form.get("model")
        if not isinstance(upload, UploadFile):
            raise UploadError(400, "no file in the upload (the form field is 'file')")
        if not isinstance(model, str) or model not in models.models:
            raise UploadError(400, f"model {model!r}: choose one of {', '.join(models.models)}")
        enhance = str(form.get("enhance", "")).lower() in TRUE
        if enhance and not can_enhance():
            raise UploadError(400, "enhance: no StemProver model ships with this installation")
        name = display_name(upload.filename)
        job_id, folder = store.new_folder()
        try:
            await run_in_threadpool(save_upload, upload, folder / "input")
            await run_in_threadpool(check_audio, folder / "input", name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            await upload.close()
        store.add(job_id, model, enhance, name)
        workers.wake()
        return {"id": job_id, "url": f"/api/jobs/{job_id}"}

    @app.get("/api/jobs/{job_id}")
    async def get_job(job_id: str):
        """Status, progress (0..1), position in the queue, and the stems once done (and the
        detected events, ``[{onset, offset, label, confidence}]`` in seconds, for a job of the
        detector's separator)."""
        return job_view(find_job(job_id), store)

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(job_id: str):
        """Server-sent events: the job's view each time it changes, until done or failed."""
        find_job(job_id)

        async def events():
            last = None
            while True:
                job = store.get(job_id)
                view = job_view(job, store) if job else {"id": job_id, "status": "removed"}
                if view != last:
                    last = view
                    yield f"data: {json.dumps(view)}\n\n"
                if view["status"] not in ("queued", "running"):
                    return
                await asyncio.sleep(0.25)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/api/jobs/{job_id}/stems/{stem}")
    async def get_stem(job_id: str, stem: str):
        """One stem as 32-bit float WAV at the upload's rate."""
        path = find_stem_file(find_job(job_id), stem)
        return FileResponse(path, media_type="audio/wav", filename=f"{stem}.wav")

    @app.get("/api/jobs/{job_id}/zip")
    async def get_zip(job_id: str):
        """Every stem of the job in one zip (``<stem>.wav`` each)."""
        job = find_job(job_id)
        files = {s: find_stem_file(job, s) for s in job.result.get("stems", [])}
        target = store.folder(job.id) / "stems.zip"
        if not target.exists():
            await run_in_threadpool(_write_zip, files, target)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(job.name).stem)[:60] or "stems"
        return FileResponse(target, media_type="application/zip", filename=f"{stem}-stems.zip")

    @app.websocket("/api/live")
    async def live(ws: WebSocket):
        await serve_live(ws, models, live_limit, settings.engine)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _write_zip(files: dict[str, Path], target: Path) -> None:
    """The zip, written beside ``target`` under a name of its own and renamed into place (two
    requests at once each write one; the last rename wins, both whole)."""
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".zip-")
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z,
        ):
            for stem, path in files.items():
                z.write(path, f"{stem}.wav")
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
