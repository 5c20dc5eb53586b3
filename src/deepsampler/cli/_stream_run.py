"""How ``deepsampler stream`` runs once set up: a file hop by hop, or a live device until
``--seconds`` or a stop, feeding the listeners (live captions, siren alerts) on the way and
printing the summary lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from deepsampler.cli._common import Say, refuse_overwriting_inputs


def _fan_out(listeners: Sequence) -> Callable | None:
    """One ``on_output`` callable feeding every listener, or None without any."""
    if not listeners:
        return None

    def push(y) -> None:
        for listener in listeners:
            listener.push(y)

    return push


def _close_captions(captions) -> int | None:
    """Finish live captions: the number of utterances with words (None without captions); none
    heard is said in one line on stderr."""
    if captions is None:
        return None
    heard = sum(1 for e in captions.close() if e.kind == "final" and e.text)
    if heard == 0:
        print("captions: no speech recognised", file=sys.stderr, flush=True)
    return heard


def _close_alerts(listeners: Sequence, say: Say) -> None:
    """Finish siren alerts (if streaming with --detect): the stream's end closes an open event;
    a summary line follows."""
    from deepsampler.detection.live import LiveAlerts

    for listener in listeners:
        if isinstance(listener, LiveAlerts):
            events = sum(1 for a in listener.close() if a.kind == "end")
            say(f"detection: {events} siren event(s)")


def stream_file(
    sep,
    engine,
    input_path: str,
    output: str | None,
    *,
    block: int,
    stems: list[str] | None,
    fmt: str,
    realtime: bool,
    progress: bool,
    captions,
    listeners: Sequence,
    say: Say,
) -> int | None:
    """``stream --input FILE``: stems to ``output`` (if given), captions and/or siren alerts.
    Returns the number of captioned utterances (None without captions)."""
    from deepsampler.streaming.processor import StreamProcessor

    cfg = sep.config
    if output is not None:
        refuse_overwriting_inputs([Path(input_path)], Path(output), stems or cfg.sources, fmt)
    processor = StreamProcessor(
        engine, cfg.sample_rate, cfg.hop, block, realtime, on_output=_fan_out(listeners)
    )
    if output is not None:
        result = sep.separate_file(
            input_path,
            output,
            stems=stems,
            fmt=fmt,
            # captions print on stdout as they come: a bar beside them would garble both
            progress=progress and captions is None,
            processor=processor,
        )
        seconds, compute = result.audio_seconds, result.compute_seconds
        where = f" -> {Path(output) / result.track} (stems aligned: latency removed)"
    else:
        from deepsampler.audio import read_audio

        x, sr = read_audio(input_path)
        start = time.perf_counter()
        sep.separate(x, sr, processor=processor)
        seconds, compute = x.shape[-1] / sr, time.perf_counter() - start
        where = ""
    heard = _close_captions(captions)
    _close_alerts(listeners, say)
    say(f"{Path(input_path).name}: {seconds:.1f} s streamed in {compute:.2f} s{where}")
    say(
        f"latency {engine.latency_samples / cfg.sample_rate * 1000:.1f} ms | "
        f"{processor.stats.line()}"
    )
    return heard


def stream_live(
    sep,
    engine,
    input_device: int | str | None,
    output_device: int | str | None,
    output: str | None,
    *,
    block: int,
    stems: list[str] | None,
    play: list[str],
    fmt: str,
    seconds: float | None,
    captions,
    listeners: Sequence,
    say: Say,
) -> None:
    """``stream --input-device``: until ``seconds`` or a stop; stems played, written to
    ``output`` and captioned."""
    from deepsampler.streaming.recording import record_live

    cfg = sep.config

    def ready(folder: Path | None) -> None:
        say(
            f"live: latency {engine.latency_samples / cfg.sample_rate * 1000:.1f} ms + device "
            f"buffers; block {block} samples"
            + (f"; recording to {folder}" if folder else "")
            + "; Ctrl-C to stop"
        )

    result = record_live(
        engine,
        sample_rate=cfg.sample_rate,
        channels=cfg.audio_channels,
        sources=cfg.sources,
        hop=cfg.hop,
        block=block,
        input_device=input_device,
        output_device=output_device,
        play=play,
        output_dir=output,
        stems=stems,
        fmt=fmt,
        seconds=seconds,
        on_ready=ready,
        listeners=listeners,
    )
    _close_captions(captions)
    _close_alerts(listeners, say)
    if result.stopped_by:
        say(f"stopped by {result.stopped_by}; kept what was recorded")
    if result.files:
        say(f"wrote {', '.join(str(p) for p in result.files)} (delayed by the latency)")
    say(result.stats.line())
