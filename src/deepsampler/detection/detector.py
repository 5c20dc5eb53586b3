"""Siren detection from Python: :class:`Detector` (offline) and :class:`StreamingDetector`.

Pipeline at the detector's rate (its separator's): the separator's stems ``[s, c, n]``, then
per frame the :class:`~deepsampler.models.sde.SDEModel`'s probability, then events by
hysteresis (:mod:`deepsampler.detection.events`).

What the network reads as *the mixture* is the sum of the separated stems (channels averaged),
not the input itself. A listener of ``deepsampler stream`` gets the stems only
(``StreamProcessor.on_output`` and ``record_live``'s listeners hand on separated blocks), the
separator's sources add up to its input (siren + background) up to what its masks leave out,
and training computes the same sum, so the detector sees the same thing offline, from its own
streaming engine and behind ``stream``. A detector without a separator (``use_separation``
off: the baseline that shows what separation adds) reads the input, averaged to mono.

Offline and streaming give the same probabilities (to float rounding): offline separation goes
through :class:`~deepsampler.detection.separation.CausalChunks`, which equals the streaming
engine's output, and both paths then feed the network the same way (whole frames, explicit
state), offline in large blocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepsampler.audio import resample
from deepsampler.detection.checkpoint import (
    DEFAULT_DETECTOR,
    TRAIN_HINT,
    DetectionSettings,
    load_detector,
)
from deepsampler.detection.events import (
    Alert,
    Event,
    EventConfig,
    EventTracker,
    FrameAlert,
    find_events,
)
from deepsampler.detection.separation import CausalChunks
from deepsampler.errors import CheckpointError, DeepSamplerError
from deepsampler.models.registry import resolve_model, shipped_models
from deepsampler.separator import BlockProcessor, Separator

OFFLINE_BLOCK = 1 << 16  # samples per block fed through the offline path


def resolve_detector(name_or_path: str | Path) -> Path:
    """A detector's checkpoint path; the default name says in one line that none ships yet."""
    if str(name_or_path) == DEFAULT_DETECTOR and DEFAULT_DETECTOR not in shipped_models():
        raise CheckpointError(f"no siren detector is shipped yet; {TRAIN_HINT}")
    return resolve_model(name_or_path)


def _as_audio(x: np.ndarray | torch.Tensor, channels: int, name: str) -> np.ndarray:
    """``[n]`` or ``[c, n]`` finite float audio -> ``[channels, n]`` float32 (any other channel
    count is averaged: a detector listens for a siren, not for the stereo image)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise DeepSamplerError(f"{name}: expected [samples] or [channels, samples], got {x.shape}")
    if not np.isfinite(x).all():
        raise DeepSamplerError(f"{name}: contains NaN/Inf samples; pass finite audio")
    if x.shape[0] != channels:
        x = np.repeat(x.mean(axis=0, keepdims=True), channels, axis=0)
    return x


class Detector:
    """A siren detector: its network, its separator (if it reads one) and its thresholds.

    Args:
        model: a shipped detector's name or a detector checkpoint path; the checkpoint names
            the separator it reads, which is loaded too.
        device: ``cpu`` or ``cuda[:N]`` (offline; streaming runs where the model is).
        allow_untrained: accept untrained weights (pipeline tests only).
        events: other event thresholds than the checkpoint's.
        chunk_seconds: offline separation chunk (memory, not results: see ``CausalChunks``).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_DETECTOR,
        *,
        device: str = "cpu",
        allow_untrained: bool = False,
        events: EventConfig | None = None,
        chunk_seconds: float = 10.0,
    ) -> None:
        path = resolve_detector(model)
        loaded, self.settings = load_detector(path)
        self.name = str(loaded.metadata.get("name", path.stem))
        self.path = path
        self.loaded = loaded
        if not loaded.trained and not allow_untrained:
            raise DeepSamplerError(
                f"detector {self.name}: has untrained weights, so its probabilities mean "
                f"nothing; {TRAIN_HINT}"
            )
        self.config = loaded.model.config
        self.events = events or self.settings.events
        self.chunk_seconds = chunk_seconds
        self.separator = self._load_separator(self.settings, device, allow_untrained)
        self.model = loaded.model.to(self.separator.device if self.separator else device).eval()
        self.label = self.settings.label

    def _load_separator(
        self, settings: DetectionSettings, device: str, allow_untrained: bool
    ) -> Separator | None:
        if settings.separator is None:
            return None
        name = settings.separator
        # one plain pass, averaged channels: what the streaming engine does
        sep = Separator(
            name, device=device, downmix=True, shifts=1, flip=False, allow_untrained=allow_untrained
        )
        problem = None
        if sep.model is None:
            problem = "is an .onnx file; the detector needs its .pt checkpoint"
        elif not sep.config.causal:
            problem = "is an offline (bidirectional) separator; a detector needs a causal one"
        elif settings.label not in sep.sources:
            problem = f"has no {settings.label!r} stem (it gives {', '.join(sep.sources)})"
        elif sep.sample_rate != self.config.sample_rate:
            problem = f"runs at {sep.sample_rate} Hz, the detector at {self.config.sample_rate} Hz"
        elif settings.separator_digest and sep.loaded.digest != settings.separator_digest:
            problem = (
                f"is not the version the detector was trained on (digest "
                f"{sep.loaded.digest[:12]}, trained on {settings.separator_digest[:12]}); "
                f"retrain the detector on it"
            )
        if problem:
            raise CheckpointError(f"detector {self.name}: its separator {name} {problem}")
        return sep

    # ---- what it is ----------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """Hz: the rate the detector (and its separator) runs at."""
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        """Channels a stream block is fitted to (the separator's; 1 without one)."""
        return self.separator.config.audio_channels if self.separator else 1

    @property
    def separator_latency_samples(self) -> int:
        return self.separator.config.latency_samples if self.separator else 0

    @property
    def latency_seconds(self) -> float:
        """Algorithmic latency of the streaming path: a frame's probability is known once its
        last sample has come out of the separator, i.e. ``n_fft`` samples (one analysis
        frame) plus the separator's latency after the frame's first sample went in."""
        return (self.config.n_fft + self.separator_latency_samples) / self.sample_rate

    def describe(self) -> str:
        """One line: name, what it reads, rate, latency, size, thresholds."""
        e = self.events
        reads = f"{self.label} stem of {self.settings.separator}" if self.separator else "mixture"
        return (
            f"detector {self.name}: {self.label} from the {reads} | "
            f"{self.sample_rate / 1000:g} kHz | latency {self.latency_seconds * 1000:.0f} ms | "
            f"{self.model.num_parameters() / 1e3:.0f} k parameters | on {e.on_threshold:g} / "
            f"off {e.off_threshold:g}, events >= {e.min_event_seconds:g} s, gaps < "
            f"{e.min_gap_seconds:g} s merged"
            + (
                f", onsets back over p > {e.onset_threshold:g} (<= {e.onset_lookback_seconds:g} s)"
                if e.onset_threshold is not None
                else ""
            )
        )

    # ---- offline -------------------------------------------------------------------------
    def probabilities(
        self, x: np.ndarray | torch.Tensor, sample_rate: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``x`` ``[n]`` or ``[c, n]`` at ``sample_rate`` Hz -> ``(times [t], prob [t])``:
        frame centres in seconds from the first sample and each frame's probability."""
        audio = _as_audio(x, self.channels, "input")
        if audio.shape[-1] == 0:
            raise DeepSamplerError("input: no samples")
        audio = resample(audio, sample_rate, self.sample_rate)
        processor = (
            CausalChunks(self.separator.model, self.chunk_seconds, self.separator.device)
            if self.separator is not None and self.separator.model is not None
            else None
        )
        stream = StreamingDetector(self, processor, latency_samples=0)
        probs = []
        for i in range(0, audio.shape[-1], OFFLINE_BLOCK):
            stream.push(audio[:, i : i + OFFLINE_BLOCK])
            probs.append(stream.last_probabilities)
        stream.finish()
        probs.append(stream.last_probabilities)
        prob = np.concatenate(probs)
        times = np.asarray(self.config.frame_centre(np.arange(prob.size)), dtype=np.float64)
        return times, prob

    def to_event(self, start: int, end: int, confidence: float) -> Event:
        """Frames ``[start, end)`` -> an :class:`Event` in seconds."""
        cfg = self.config
        return Event(
            float(cfg.frame_boundary(start)), float(cfg.frame_boundary(end)), self.label, confidence
        )

    def events_of(self, prob: np.ndarray) -> list[Event]:
        """The events of a probability curve ``[t]`` from :meth:`probabilities`."""
        found = find_events(prob, self.events, self.config.frame_seconds)
        return [self.to_event(*e) for e in found]

    def detect(self, x: np.ndarray | torch.Tensor, sample_rate: int) -> list[Event]:
        """Events in ``x`` ``[n]`` or ``[c, n]`` at ``sample_rate`` Hz, in order."""
        return self.events_of(self.probabilities(x, sample_rate)[1])

    # ---- streaming -----------------------------------------------------------------------
    def stream(self, engine: str = "auto", threads: int = 1) -> StreamingDetector:
        """A streaming detector: ``push([c, n] at sample_rate) -> [Alert]``, ``finish()``.

        ``engine`` and ``threads``: the separator's streaming engine (``Separator.
        streaming_engine``: auto, torch or onnx)."""
        if self.separator is None:
            return StreamingDetector(self, None, latency_samples=0)
        from deepsampler.streaming.processor import StreamProcessor

        sep = self.separator
        eng = sep.streaming_engine(engine, threads)
        processor = StreamProcessor(eng, sep.sample_rate, sep.config.hop)
        return StreamingDetector(self, processor, latency_samples=eng.latency_samples)

    def stem_stream(self, latency_samples: int) -> StreamingDetector:
        """A streaming detector fed with stems another engine separated: ``push_stems([s, c,
        n])``, aligned (latency removed) at ``sample_rate``, from this detector's separator,
        whose engine has ``latency_samples`` of delay (for the alerts' times)."""
        if self.separator is None:
            raise DeepSamplerError(
                f"detector {self.name} reads the mixture alone, not a separator's stems; use "
                f"Detector.stream() (or `deepsampler detect`)"
            )
        return StreamingDetector(self, None, latency_samples=latency_samples)


class StreamingDetector:
    """Siren alerts from a stream, with explicit state (separator engine state, the network's
    :class:`~deepsampler.models.sde.SDEState`, the :class:`EventTracker`).

    ``push(block)`` takes ``[c, n]`` (or ``[n]``) samples at the detector's rate and returns
    the alerts they decided; ``finish()`` ends the stream. ``push_stems`` takes separated
    ``[s, c, n]`` blocks instead (a detector made by :meth:`Detector.stem_stream`).
    ``last_probabilities`` holds the probabilities of the frames the last call completed, and
    ``frames`` counts them all.

    An alert's ``time`` is the stream time at which the frame that decided it was complete
    after separation (``n_fft`` + the separator's latency after its first sample); blocks longer
    than a hop return it up to one block later. Alerts decided by the end of the stream have
    its length as time.
    """

    def __init__(
        self, detector: Detector, processor: BlockProcessor | None, latency_samples: int
    ) -> None:
        self.detector = detector
        self.processor = processor
        self.latency_samples = latency_samples
        self.state = detector.model.init_state()
        self.tracker = EventTracker(detector.events, detector.config.frame_seconds)
        self.label_index = (
            detector.separator.sources.index(detector.label) if detector.separator else None
        )
        self.samples = 0  # stream samples seen (input, or stems for push_stems)
        self.frames = 0
        self.last_probabilities = np.zeros(0, np.float32)
        self.finished = False

    @property
    def sample_rate(self) -> int:
        return self.detector.sample_rate

    def _check_open(self) -> None:
        if self.finished:
            raise DeepSamplerError("this detection stream is finished; start a new one")

    def _alert(self, a: FrameAlert) -> Alert:
        cfg, sr = self.detector.config, self.detector.sample_rate
        if a.frame is None:  # decided by the end of the stream
            time = self.samples / sr
        else:
            time = (a.frame * cfg.hop + cfg.n_fft + self.latency_samples) / sr
        onset = float(cfg.frame_boundary(a.start))
        offset = None if a.end is None else float(cfg.frame_boundary(a.end))
        return Alert(a.kind, time, onset, a.confidence, self.detector.label, offset)

    def _frames(self, mixture: np.ndarray, siren: np.ndarray | None) -> list[Alert]:
        """Aligned mono ``[m]`` mixture (and siren stem) samples -> alerts."""
        model = self.detector.model
        dev = model.proj.weight.device
        mix = torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)).to(dev)[None]
        sir = None
        if siren is not None:
            sir = torch.from_numpy(np.ascontiguousarray(siren, dtype=np.float32)).to(dev)[None]
        logits, self.state = model.step(mix, sir, self.state)
        prob = logits[0].sigmoid().float().cpu().numpy()
        self.last_probabilities = prob
        self.frames += prob.size
        return [self._alert(a) for a in self.tracker.push(prob)]

    def _from_stems(self, blocks: list[np.ndarray]) -> list[Alert]:
        if not blocks:
            self.last_probabilities = np.zeros(0, np.float32)
            return []
        stems = np.concatenate(blocks, axis=-1)  # [s, c, m]
        # the mixture the network reads is the sum of the stems (see the module docstring)
        mixture = stems.sum(axis=0).mean(axis=0)
        return self._frames(mixture, stems[self.label_index].mean(axis=0))

    def push(self, block: np.ndarray | torch.Tensor) -> list[Alert]:
        """Feed ``[c, n]`` (or ``[n]``) samples at the detector's rate; return new alerts."""
        self._check_open()
        x = _as_audio(block, self.detector.channels, "block")
        self.samples += x.shape[-1]
        if self.detector.separator is None:
            return self._frames(x.mean(axis=0), None)
        if self.processor is None:
            raise DeepSamplerError("this detection stream takes stems: use push_stems")
        return self._from_stems(self.processor.push(x))

    def push_stems(self, stems: np.ndarray) -> list[Alert]:
        """Feed separated ``[s, c, n]`` stems (aligned, at the detector's rate); return new
        alerts."""
        self._check_open()
        if self.processor is not None or self.label_index is None:
            raise DeepSamplerError("this detection stream separates itself: use push")
        stems = np.asarray(stems, dtype=np.float32)
        if stems.ndim != 3 or stems.shape[0] != len(self.detector.separator.sources):
            raise DeepSamplerError(
                f"push_stems: expected [{len(self.detector.separator.sources)}, channels, "
                f"samples], got {stems.shape}"
            )
        self.samples += stems.shape[-1]
        return self._from_stems([stems])

    def finish(self) -> list[Alert]:
        """End the stream: the separator's last samples, then the events still open."""
        self._check_open()
        alerts = []
        if self.processor is not None:
            alerts = self._from_stems(self.processor.finish())
        else:
            self.last_probabilities = np.zeros(0, np.float32)
        self.finished = True
        return alerts + [self._alert(a) for a in self.tracker.finish()]
