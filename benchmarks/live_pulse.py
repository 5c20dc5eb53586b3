#!/usr/bin/env python
"""Live streaming through a real audio stack: per-hop compute, missed deadlines and xruns of
`deepsampler stream --input-device pulse` sessions, for both engines and two thread counts.

A private PulseAudio server (tests/pulse_server.py: a null sink whose monitor is the default
source, nothing of the machine's own audio touched) carries the bundled song, played on a
loop with paplay; each configuration runs in a child process, as the CLI would:

* torch engine, torch's default thread count (what `--threads 0` gives);
* torch engine, 1 thread (`--threads 1`);
* onnx engine, onnxruntime's default threads (`--engine onnx`);
* onnx engine, 1 thread (`--engine onnx --threads 1`).

A child sets the threads as the CLI does, builds the engine, opens the input stream with
`open_device_stream(session, rate, hop, "pulse", None)` and runs a LiveSession for --seconds
of wall time, handing each separated block to a ThreadedWriter whose writes go nowhere (the
callback-side cost of `--output DIR`, without the disk). Like the CLI there is no warm-up, so
the first blocks' slow steps count. The ONNX step graph is exported once by this process and
loaded by each onnx child with `OnnxStreamingSeparator.from_file` (`from_model` is the same
export followed by the same constructor; exporting takes tens of seconds).

RTF is the median compute per hop over the hop's duration (p50 / hop); `RTF mean` is total
compute over audio processed. A missed deadline is a block whose compute took longer than the
block lasts; xruns are PortAudio's over/underflow flags (through the pulse plugin an input
overflow can go unreported: an engine that falls behind loses input without an xrun).
`first block` is the wall time from starting the stream to the first callback: through the
ALSA pulse plugin the first stream a process opens (each child opens one) gets nothing for
about 1.6 s, whatever its latency setting; later streams in the same process start within
~30 ms. The session's --seconds include that wait, as the CLI's do.

    .venv/bin/python benchmarks/live_pulse.py --seconds 8 --json experiments/bench/live_pulse.json

Needs pulseaudio, pulseaudio-utils and libasound2-plugins (packaging/apt-dev.txt) and the
`live` extra (sounddevice, PortAudio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [  # (engine, threads); 0 = the library's default
    ("torch", 0),
    ("torch", 1),
    ("onnx", 0),
    ("onnx", 1),
]


# ---- child: one live session ----------------------------------------------------------------
class FirstBlockClock:
    """Wraps an engine to note when the first block reaches it (one comparison per block)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.latency_samples = engine.latency_samples
        self.first: float | None = None

    def init_state(self, batch: int = 1) -> Any:
        return self.engine.init_state(batch)

    def step(self, samples: Any, state: Any) -> tuple[Any, Any]:
        if self.first is None:
            self.first = time.perf_counter()
        return self.engine.step(samples, state)

    def flush(self, state: Any) -> tuple[Any, Any]:
        return self.engine.flush(state)


def play_loop(path: Path, stop: threading.Event) -> None:
    """Play ``path`` into the default sink again and again until ``stop`` is set (a live
    source never pauses, and audio arriving before the first callback is dropped, not
    queued, so starting before the stream opens is what a microphone does)."""
    while not stop.is_set():
        proc = subprocess.Popen(["paplay", str(path)], stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            if stop.wait(0.05):
                proc.terminate()
                proc.wait()
                return


def run_child(args: argparse.Namespace) -> None:
    """One configuration, as `deepsampler stream --input-device pulse` would run it."""
    import torch

    # as the CLI's _set_threads: 0 leaves torch's default
    if args.threads:
        torch.set_num_threads(args.threads)
    from deepsampler.separator import Separator
    from deepsampler.streaming import StreamingSeparator
    from deepsampler.streaming.live import LiveSession, ThreadedWriter, open_device_stream

    sep = Separator(args.model, shifts=1, flip=False)
    cfg = sep.config
    if args.engine == "onnx":
        from deepsampler.export.onnx_engine import OnnxStreamingSeparator

        inner: Any = OnnxStreamingSeparator.from_file(args.onnx, threads=args.threads)
    else:
        inner = StreamingSeparator(sep.model)
    engine = FirstBlockClock(inner)
    writer = ThreadedWriter(lambda block: None)
    session = LiveSession(
        engine,
        cfg.sample_rate,
        cfg.audio_channels,
        cfg.sources,
        [],
        cfg.hop,
        on_output=writer.write,
    )
    stop = threading.Event()
    player = threading.Thread(target=play_loop, args=(args.audio, stop), daemon=True)
    player.start()
    time.sleep(0.3)  # the source is playing before the stream opens, like a microphone
    stream = open_device_stream(session, cfg.sample_rate, cfg.hop, "pulse", None)
    start = time.perf_counter()
    stats = session.run(stream, args.seconds)
    stop.set()
    writer.close()
    player.join(timeout=5)
    summary = stats.summary()
    ort_threads = 0
    if args.engine == "onnx":
        ort_threads = int(inner.session.get_session_options().intra_op_num_threads)
    result = {
        "engine": args.engine,
        "threads_asked": args.threads,
        "torch_threads": torch.get_num_threads(),
        "onnx_intra_op_threads": ort_threads,  # 0: onnxruntime picks (one per physical core)
        **summary,
        "rtf_median": summary["p50_ms"] / summary["hop_ms"],
        "audio_seconds": stats.total_samples / cfg.sample_rate,
        "first_block_s": None if engine.first is None else engine.first - start,
    }
    args.out.write_text(json.dumps(result))


# ---- parent: server, audio, one child per configuration ------------------------------------
def write_song(path: Path, sample_rate: int, channels: int) -> None:
    """The bundled song at the model's rate and channel count, as a float32 wav (the null sink
    is float32, so nothing on the way quantises)."""
    import soundfile as sf

    import deepsampler
    from deepsampler.audio import resample

    song = Path(deepsampler.__file__).parent / "examples" / "synth_rock.flac"
    audio, sr = sf.read(str(song), dtype="float32", always_2d=True)
    audio = audio.T
    if sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
    if audio.shape[0] != channels:
        audio = np.repeat(audio.mean(0, keepdims=True), channels, axis=0)
    sf.write(str(path), audio.T, sample_rate, subtype="FLOAT")


def label(engine: str, threads: int) -> str:
    return f"{engine}, {'default' if threads == 0 else threads} thread{'s' if threads != 1 else ''}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="wall time per live session")
    ap.add_argument("--model", default="music4-rt")
    ap.add_argument("--json", type=Path, help="write the results here")
    # the child's arguments (one configuration, run with the server's environment)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", choices=["torch", "onnx"], help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--onnx", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return

    import torch

    sys.path.insert(0, str(ROOT))
    from tests.pulse_server import PulseServer, missing_reason

    from deepsampler.export.onnx_engine import export_onnx
    from deepsampler.separator import Separator

    sep = Separator(args.model, shifts=1, flip=False)
    cfg = sep.config
    rows = []
    with tempfile.TemporaryDirectory(prefix="live-pulse-bench-") as tmp_name:
        tmp = Path(tmp_name)
        write_song(tmp / "song.wav", cfg.sample_rate, cfg.audio_channels)
        print("exporting the ONNX step graph ...", flush=True)
        export_onnx(sep.model, tmp / "step.onnx")
        reason = missing_reason()
        if reason is not None:
            sys.exit(f"live_pulse: {reason}")
        with PulseServer(cfg.sample_rate, cfg.audio_channels) as server:
            for engine, threads in CONFIGS:
                out = tmp / f"{engine}-{threads}.json"
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    "--engine",
                    engine,
                    "--threads",
                    str(threads),
                    "--model",
                    args.model,
                    "--seconds",
                    str(args.seconds),
                    "--onnx",
                    str(tmp / "step.onnx"),
                    "--audio",
                    str(tmp / "song.wav"),
                    "--out",
                    str(out),
                ]
                done = subprocess.run(
                    cmd, env=server.child_env(), capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    sys.exit(f"{label(engine, threads)} failed:\n{done.stdout}\n{done.stderr}")
                rows.append(json.loads(out.read_text()))
                print(f"done {label(engine, threads)}", flush=True)

    cpus = os.cpu_count()
    print(
        f"\nLive sessions of {args.seconds:g} s through PulseAudio (null sink monitor -> ALSA "
        f"pulse plugin -> PortAudio), {args.model}, block = hop; {platform.machine()}, "
        f"{cpus} CPUs, torch {torch.__version__}\n"
    )
    print(
        "| engine, threads | blocks | audio | first block | p50 | p99 | hop | RTF (p50/hop) "
        "| RTF mean | missed deadlines | xruns |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        threads = r["threads_asked"] or (
            r["torch_threads"] if r["engine"] == "torch" else r["onnx_intra_op_threads"]
        )
        name = label(r["engine"], r["threads_asked"])
        if r["threads_asked"] == 0 and threads:
            name += f" ({threads})"
        first = "-" if r["first_block_s"] is None else f"{r['first_block_s']:.2f} s"
        missed_pct = 100 * r["missed_deadlines"] / max(r["blocks"], 1)
        print(
            f"| {name} | {r['blocks']} | {r['audio_seconds']:.1f} s | {first} | "
            f"{r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['hop_ms']:.2f} ms | "
            f"{r['rtf_median']:.3f} | {r['rtf']:.3f} | {r['missed_deadlines']} "
            f"({missed_pct:.0f}%) | {r['xruns']} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "results": rows,
            "seconds": args.seconds,
            "model": args.model,
            "cpus": cpus,
            "machine": platform.machine(),
            "torch": torch.__version__,
        }
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
