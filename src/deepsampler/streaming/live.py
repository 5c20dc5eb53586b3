"""Live audio through PortAudio (``sounddevice``): device in -> separation -> device out / files.

The audio callback only moves samples and calls the engine. A block whose compute takes longer
than its duration is counted as a missed deadline, and the driver's over/underflow flags as
xruns; neither stops the stream. The stream object is passed in, so tests drive the callback
with a fake stream (CI has no sound card).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from deepsampler.errors import DeepSamplerError
from deepsampler.streaming.stats import HopStats


class Engine(Protocol):
    """What the live loop needs of a streaming engine (PyTorch or onnxruntime)."""

    latency_samples: int

    def init_state(self, batch: int = 1) -> Any: ...

    def step(self, samples: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


def import_sounddevice():
    """The sounddevice module, or a one-line error saying how to get it and PortAudio."""
    try:
        import sounddevice
    except ImportError:
        raise DeepSamplerError(
            "live audio needs the 'sounddevice' package: pip install 'deepsampler[live]'"
        ) from None
    except OSError:
        raise DeepSamplerError(
            "live audio needs PortAudio: apt-get install libportaudio2 (scripts/setup.sh does)"
        ) from None
    return sounddevice


def list_devices() -> str:
    """PortAudio's device table, or a sentence saying there is none."""
    devices = import_sounddevice().query_devices()
    if len(devices) == 0:
        return (
            "no audio devices found (PortAudio sees no sound card or sound server; on Linux "
            "check that ALSA or PulseAudio runs and that this user may use it)"
        )
    return str(devices)


class LiveSession:
    """Separate a live input stream block by block.

    Args:
        engine: the streaming engine (its ``step`` takes ``[c, n]`` and returns ``[s, c, n]``).
        sample_rate: the device rate (the model's).
        channels: the model's channel count; a mono device is duplicated.
        sources: the engine's source names, in output order.
        play: sources summed into the output device (ignored without one).
        hop: the model's hop, to report compute per hop.
        on_output: called with each separated block ``[s, c, n]`` (e.g. to write files).
    """

    def __init__(
        self,
        engine: Engine,
        sample_rate: int,
        channels: int,
        sources: tuple[str, ...],
        play: list[str],
        hop: int,
        on_output: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        self.engine = engine
        self.state = engine.init_state()
        self.channels = channels
        self.play_index = [sources.index(s) for s in play]
        self.on_output = on_output
        self.stats = HopStats(sample_rate, hop)
        self.error: BaseException | None = None

    def duplex_callback(
        self,
        indata: np.ndarray,
        outdata: np.ndarray | None,
        frames: int,
        time_info: Any,
        status: Any,
    ) -> None:
        """PortAudio callback: ``indata [frames, in_channels]``, ``outdata [frames, out_ch]``."""
        if status:
            self.stats.xruns += 1
        if self.error is not None:
            if outdata is not None:
                outdata.fill(0)
            return
        start = time.perf_counter()
        try:
            x = np.ascontiguousarray(indata.T, dtype=np.float32)
            if x.shape[0] == 1 and self.channels > 1:
                x = np.repeat(x, self.channels, axis=0)
            y, self.state = self.engine.step(torch.from_numpy(x), self.state)
            y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
            if outdata is not None:
                mix = y[self.play_index].sum(0) if self.play_index else np.zeros_like(y[0])
                if mix.shape[0] != outdata.shape[1]:
                    mix = np.repeat(mix.mean(0, keepdims=True), outdata.shape[1], axis=0)
                outdata[:] = mix.T
            if self.on_output is not None:
                self.on_output(y)
        except Exception as exc:  # never raise into the audio thread: stop and report instead
            self.error = exc
            if outdata is not None:
                outdata.fill(0)
            return
        self.stats.add(time.perf_counter() - start, frames)

    def input_callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self.duplex_callback(indata, None, frames, time_info, status)

    def run(self, stream: Any, seconds: float | None, catch_stop: bool = True) -> HopStats:
        """Run ``stream`` (a started-on-enter context manager) for ``seconds`` (None: until
        Ctrl-C or until the stream stops by itself); return the timing statistics.

        A stop (Ctrl-C, or SIGTERM once :mod:`deepsampler.interrupts` handles it) ends the run
        normally; with ``catch_stop=False`` it is re-raised after the stream has stopped, so
        the caller knows why the run ended."""
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            with stream:
                while self.error is None and (deadline is None or time.monotonic() < deadline):
                    if not getattr(stream, "active", True):  # the device went away, or ended
                        break
                    time.sleep(0.02)
        except KeyboardInterrupt:
            if not catch_stop:
                raise
        except Exception as exc:  # PortAudio errors when starting or stopping the device
            raise DeepSamplerError(f"audio device: {exc}") from None
        if self.error is not None:
            raise DeepSamplerError(f"live processing stopped: {self.error}") from None
        return self.stats

    def finish(self) -> np.ndarray | None:
        """The stream's last ``latency_samples`` samples ``[s, c, n]`` (engines with flush)."""
        flush = getattr(self.engine, "flush", None)
        if flush is None:
            return None
        tail, self.state = flush(self.state)
        tail = tail.cpu().numpy() if isinstance(tail, torch.Tensor) else np.asarray(tail)
        return tail[0] if tail.ndim == 4 else tail


class ThreadedWriter:
    """Writes blocks handed over by the audio callback on a thread of its own, so disk I/O never
    delays the callback. ``write`` enqueues; ``close`` drains the queue and joins; ``abort``
    joins without writing what is still queued (the run failed)."""

    def __init__(self, write: Callable[[np.ndarray], None]) -> None:
        self._write = write
        self._queue: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self._discard = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None and not self._discard:
                try:
                    self._write(item)
                except BaseException as exc:  # reported by close()
                    self.error = exc

    def write(self, block: np.ndarray) -> None:
        self._queue.put(block.copy())

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """End the thread without writing what is queued; errors are dropped."""
        self._discard = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class ThreadedListener:
    """A consumer of the separated stream that works on a thread of its own (live captions,
    siren alerts): ``push`` queues a copy of each ``[s, c, n]`` block and returns at once;
    ``close`` drains the queue, finishes and returns every event made; ``abort`` ends without
    using what is queued (the run failed; errors are dropped). Each event goes to ``show``
    from the worker thread, in order. Subclasses say what a block and the end make
    (``_feed``, ``_finish``) and name what they finish (``finished``, for the error line)."""

    finished = "the listener"

    def __init__(self, show: Callable[[Any], None]) -> None:
        self.show = show
        self.events: list[Any] = []
        self._worker = ThreadedWriter(self._consume)
        self._closed = False
        self._aborted = False

    def _feed(self, y: np.ndarray) -> list[Any]:
        raise NotImplementedError

    def _finish(self) -> list[Any]:
        raise NotImplementedError

    def _emit(self, events: list[Any]) -> None:
        for event in events:
            self.events.append(event)
            self.show(event)

    def _consume(self, y: np.ndarray) -> None:
        if not self._aborted:
            self._emit(self._feed(y))

    def push(self, y: np.ndarray) -> None:
        """Queue one separated block ``[s, c, n]``."""
        if self._closed:
            raise DeepSamplerError(f"push after close(): {self.finished} is finished")
        self._worker.write(y)

    def close(self) -> list[Any]:
        """Wait for the queued audio, finish, and return all events (an error on the worker
        thread is raised here)."""
        if not self._closed:
            self._closed = True
            self._worker.close()
            self._emit(self._finish())
        return self.events

    def abort(self) -> None:
        """End without using what is still queued (the run failed); errors are dropped."""
        self._aborted = True
        if not self._closed:
            self._closed = True
            self._worker.abort()


def open_device_stream(
    session: LiveSession, sample_rate: int, block: int, input_device: Any, output_device: Any
) -> Any:
    """A sounddevice stream for ``session``: duplex with an output device, else input only."""
    sd = import_sounddevice()
    try:
        info = sd.query_devices(input_device, "input")
        in_ch = min(int(info["max_input_channels"]), session.channels)
        common = dict(samplerate=sample_rate, blocksize=block, dtype="float32")
        if output_device is None:
            return sd.InputStream(
                device=input_device, channels=in_ch, callback=session.input_callback, **common
            )
        out = sd.query_devices(output_device, "output")
        out_ch = min(int(out["max_output_channels"]), 2)
        return sd.Stream(
            device=(input_device, output_device),
            channels=(in_ch, out_ch),
            callback=session.duplex_callback,
            **common,
        )
    except (ValueError, sd.PortAudioError) as exc:
        raise DeepSamplerError(
            f"audio device: {exc}; see `deepsampler stream --list-devices`"
        ) from None
