"""A live run from start to end: open the device, then the stem files, separate until stopped,
finalise what was recorded.

Order matters for what is left on disk. The device is opened before any file exists, so a
device that cannot be opened leaves nothing behind; a run that fails once files exist removes
them (and the folder it made); a run stopped by Ctrl-C, SIGTERM or ``seconds`` keeps what was
recorded, finalised with the engine's last ``latency_samples`` while further stops wait
(:func:`deepsampler.interrupts.deferred_stops`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from deepsampler.audio import (
    AtomicAudioWriter,
    commit_all,
    created_dirs,
    ensure_writable_dir,
    remove_empty_dirs,
)
from deepsampler.interrupts import deferred_stops, signal_name, stop_name
from deepsampler.streaming.live import Engine, LiveSession, ThreadedWriter, open_device_stream
from deepsampler.streaming.stats import HopStats


class BlockListener(Protocol):
    """Something else fed the separated stream (live captions): ``push`` gets each ``[s, c, n]``
    block from the audio callback and must return at once; ``close`` ends it after the run."""

    def push(self, y: np.ndarray) -> Any: ...

    def close(self) -> Any: ...


@dataclass
class LiveResult:
    """What a live run did: its timing, the stem files written and why it stopped."""

    stats: HopStats
    files: list[Path] = field(default_factory=list)
    stopped_by: str | None = None  # "Ctrl-C", "SIGTERM", ... or None (time up, stream ended)


def record_live(
    engine: Engine,
    *,
    sample_rate: int,
    channels: int,
    sources: Sequence[str],
    hop: int,
    block: int,
    input_device: Any,
    output_device: Any = None,
    play: Sequence[str] | None = None,
    output_dir: str | Path | None = None,
    stems: Sequence[str] | None = None,
    fmt: str = "wav",
    seconds: float | None = None,
    open_stream: Callable[..., Any] = open_device_stream,
    on_ready: Callable[[Path | None], None] | None = None,
    listeners: Sequence[BlockListener] = (),
) -> LiveResult:
    """Separate ``input_device`` live until ``seconds`` pass or a stop (Ctrl-C, SIGTERM).

    Args:
        engine: a streaming engine (torch or onnx) for a model at ``sample_rate`` Hz with
            ``channels`` channels giving ``sources``.
        hop, block: the model's hop and the device's block, in samples.
        output_device: device to play ``play`` (sources summed) to; None plays nothing.
        output_dir: write ``stems`` (default: all) as ``output_dir/live-<time>/<stem>.<fmt>``,
            delayed by the engine's latency; None writes nothing.
        open_stream: how the device stream is opened (a fake one in tests).
        on_ready: called with the recording folder once the device is open and files exist.
        listeners: also fed every separated block, the engine's tail included, and closed
            when the run ends (after a stop too).
    """
    sources = tuple(sources)
    session = LiveSession(
        engine, sample_rate, channels, sources, list(sources if play is None else play), hop
    )
    # the device first: if it cannot be opened, no file or folder was made
    stream = open_stream(session, sample_rate, block, input_device, output_device)
    writers: list[AtomicAudioWriter] = []
    new_dirs: list[Path] = []
    folder = None
    writer: ThreadedWriter | None = None
    try:
        if output_dir is not None:
            folder = Path(output_dir) / time.strftime("live-%Y%m%d-%H%M%S")
            new_dirs = created_dirs(folder)
            ensure_writable_dir(folder)
            writers = [
                AtomicAudioWriter(folder / f"{s}.{fmt}", sample_rate, channels, fmt)
                for s in (stems or sources)
            ]
        index = [sources.index(w.path.stem) for w in writers]

        def write(y: np.ndarray) -> None:
            for w, i in zip(writers, index, strict=True):
                w.write(y[i])

        writer = ThreadedWriter(write) if writers else None  # disk I/O off the audio thread
        outputs = ([writer.write] if writer else []) + [w.push for w in listeners]

        def output(y: np.ndarray) -> None:
            for out in outputs:
                out(y)

        session.on_output = output if outputs else None
        if on_ready is not None:
            on_ready(folder)
        stopped_by = None
        try:
            stats = session.run(stream, seconds, catch_stop=False)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was recorded
            stopped_by = stop_name(exc)
            stats = session.stats
        # a stop now would throw away what was recorded: it is noted, and the run ends anyway
        with deferred_stops(reraise=False) as late_stops:
            files: list[Path] = []
            if writer is not None:
                writer.close()
            if outputs:
                tail = session.finish()  # the last latency_samples still in the engine
                if tail is not None:
                    if writers:
                        write(tail)
                    for listener in listeners:
                        listener.push(tail)
            for listener in listeners:
                listener.close()
            if writers:
                files = commit_all(writers)
        if late_stops and stopped_by is None:
            stopped_by = signal_name(late_stops[0])
    except BaseException:
        if writer is not None:
            writer.abort()  # else its thread waits forever on a queue nobody closes
        for w in writers:
            w.abort()
        remove_empty_dirs(new_dirs)
        raise
    return LiveResult(stats, files, stopped_by)
