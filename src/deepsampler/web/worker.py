"""The web app's separation workers: threads that take queued jobs from the :class:`JobStore`
and run the :class:`~deepsampler.separator.Separator` API on them (never the CLI).

Each model is loaded once and kept (:class:`ModelCache`); StemProver too, on the first job
that asks for it, and the siren detector (if the server has one) at the server's start. A job's
files: ``input`` (the upload), ``stems/<stem>.wav`` (32-bit float, the input's rate and length)
and, once asked for, ``stems.zip``. A job of the detector's separator also gets the detector's
events on the uploaded mixture, kept in its result (``result["events"]``) like its stems' names.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from deepsampler.audio import audio_info, read_audio
from deepsampler.errors import DeepSamplerError
from deepsampler.web.jobs import Job, JobStore

log = logging.getLogger("deepsampler.web")

STEMS = "stems"  # the track folder separate_file writes a job's stems into


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class ModelCache:
    """Separators by name, each loaded on first use and kept; ``models``: name -> file.

    ``detects``: model name -> the label its jobs' events have (the detector's separator only);
    :meth:`load_detector` fills it."""

    def __init__(self, models: dict[str, Path]) -> None:
        self.models = dict(models)
        self._loaded: dict = {}
        self._engines: dict = {}
        self._lock = threading.Lock()
        self._enhancer = None
        self._detector = None
        self.detects: dict[str, str] = {}

    def load_detector(self, spec: str | Path) -> None:
        """Load the siren detector ``spec`` (a shipped name or a checkpoint path) now, and offer
        its separator (added to the models under its own name if not offered already); a
        detector that cannot serve is one line (:class:`DeepSamplerError`)."""
        from deepsampler.detection import Detector
        from deepsampler.models.registry import resolve_model

        try:
            det = Detector(spec)
        except DeepSamplerError as exc:
            raise DeepSamplerError(f"--detector {spec}: {exc}") from None
        except Exception as exc:  # a damaged file: still one line, not a traceback
            raise DeepSamplerError(
                f"--detector {spec}: could not load it ({type(exc).__name__}: {exc})"
            ) from None
        wanted = det.settings.separator
        if wanted is None:
            raise DeepSamplerError(
                f"--detector {spec}: detector {det.name} reads the mixture alone; the web app "
                f"runs a detector on the jobs of the separator it reads"
            )
        path = resolve_model(wanted)
        name = next((n for n, f in self.models.items() if n == wanted or _same_file(f, path)), None)
        if name is None:  # not on offer yet: offer it, under a name of its own
            base = name = wanted if "/" not in wanted and "\\" not in wanted else path.stem
            i = 2
            while name in self.models:
                name, i = f"{base}-{i}", i + 1
            self.models[name] = path
        self._detector = det
        self.detects = {name: det.label}

    @property
    def detector(self):
        """The loaded :class:`~deepsampler.detection.Detector`, or None."""
        return self._detector

    def separator(self, name: str):
        from deepsampler.separator import Separator

        if name not in self.models:
            raise DeepSamplerError(f"unknown model {name!r}; choose one of {sorted(self.models)}")
        with self._lock:
            if name not in self._loaded:
                # one pass: the web app separates on the server's CPU, and the streaming
                # engines (live mode) run one pass too
                self._loaded[name] = Separator(self.models[name], shifts=1, flip=False)
            return self._loaded[name]

    def engine(self, name: str, kind: str = "auto"):
        """The model's streaming engine, shared: a live session keeps its own state
        (``engine.init_state()``) and the engine's ``step`` holds none."""
        sep = self.separator(name)
        with self._lock:
            if name not in self._engines:
                self._engines[name] = sep.streaming_engine(kind, threads=1)
            return self._engines[name]

    def enhancer(self):
        """The shipped StemProver, loaded on the first job that asks for it."""
        from deepsampler.stemprover.enhancer import Enhancer

        with self._lock:
            if self._enhancer is None:
                self._enhancer = Enhancer()
            return self._enhancer


def event_dicts(events) -> list[dict]:
    """:class:`~deepsampler.detection.Event` s as the API gives them."""
    return [
        {"onset": e.onset, "offset": e.offset, "label": e.label, "confidence": e.confidence}
        for e in events
    ]


def run_job(job: Job, store: JobStore, models: ModelCache) -> dict:
    """Separate one job into its folder (and enhance its stems if asked; detect sirens in its
    mixture if its model is the detector's separator); what the job gives: ``{"stems": [...],
    "sample_rate": Hz, "seconds": s, "channels": c}`` and ``"events": [...]`` if detected."""
    folder = store.folder(job.id)
    source = folder / "input"
    sep = models.separator(job.model)
    info = audio_info(source)
    total = max(1, info.frames)  # input samples, at the upload's rate
    detect = job.model in models.detects and models.detector is not None
    # the bar: separation, then StemProver (as long again), then detection (a fifth of it)
    parts = 1.0 + (1.0 if job.enhance else 0.0) + (0.2 if detect else 0.0)
    share = 1.0 / parts
    step = max(1, total // 100)
    done, last = [0], [0]

    def on_samples(n: int) -> None:
        done[0] += n
        if done[0] - last[0] >= step:
            last[0] = done[0]
            store.set_progress(job.id, 0.99 * share * min(done[0] / total, 1.0))

    result = sep.separate_file(source, folder, track=STEMS, fmt="wav", on_samples=on_samples)
    if job.enhance:
        enhancer = models.enhancer()
        for i, (name, path) in enumerate(result.stems.items()):
            out, _ = enhancer.enhance_file(
                path, folder / "enhanced" / f"{name}.wav", mixture=source, source=name
            )
            os.replace(out, path)  # the served stem is the refined one
            store.set_progress(job.id, share * (1 + (i + 1) / len(result.stems)))
    out = {
        "stems": list(result.stems),
        "sample_rate": info.sample_rate,
        "seconds": info.seconds,
        "channels": 1 if info.channels == 1 else sep.config.audio_channels,
    }
    if detect:
        # the detector's own pipeline on the upload (its separator, its rate): the events
        # `Detector.detect` gives for this audio
        x, sr = read_audio(source)
        out["events"] = event_dicts(models.detector.detect(x, sr))
    return out


def public_message(exc: BaseException, folder: Path, name: str) -> str:
    """An error's one line with the server's paths replaced by the upload's name."""
    text = str(exc) or type(exc).__name__
    return text.replace(str(folder / "input"), name).replace(str(folder), name)


class Workers:
    """``count`` threads separating queued jobs, one job each at a time; :meth:`wake` after a
    job is queued, :meth:`stop` to end them (a running job finishes first)."""

    def __init__(self, store: JobStore, models: ModelCache, count: int = 1) -> None:
        self.store = store
        self.models = models
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads = [
            threading.Thread(target=self._loop, name=f"deepsampler-web-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim()
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            try:
                result = run_job(job, self.store, self.models)
            except Exception as exc:  # a job's failure is its own, never the worker's
                if not isinstance(exc, DeepSamplerError):
                    log.exception("job %s failed", job.id)
                message = public_message(exc, self.store.folder(job.id), job.name)
                self.store.fail(job.id, message)
            else:
                self.store.finish(job.id, result)
