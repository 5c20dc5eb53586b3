"""The live mode's websocket: microphone blocks in, one separated stem out, per connection.

Protocol (``WS /api/live``):

1. the page sends ``{"model": NAME, "stem": STEM, "sample_rate": HZ}`` (text, JSON); the rate
   must be the model's (the page opens its AudioContext at that rate, so nothing resamples);
2. the server answers ``{"type": "ready", "latency_ms", "hop", "sample_rate", ...}`` or
   ``{"type": "error", "error": "..."}`` and closes;
3. then each binary message is a block of mono float32 samples (little-endian, at most one
   second), answered by a binary message of as many samples: the stem, delayed by the model's
   fixed latency (channels averaged to mono); every ``STATS_EVERY`` blocks a text message
   ``{"type": "stats", "blocks", "missed", "p50_ms", "p99_ms", "rtf"}`` follows the reply
   (``missed``: blocks whose compute took longer than the block lasts).

The model's streaming engine is shared (:meth:`ModelCache.engine`); each connection keeps its
own state, so sessions do not hear each other.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from deepsampler.audio import fit_channels
from deepsampler.errors import DeepSamplerError
from deepsampler.streaming.stats import HopStats
from deepsampler.web.worker import ModelCache

STATS_EVERY = 10


class LiveSession:
    """One connection's stream: ``process(mono block) -> mono stem block`` of the same length."""

    def __init__(self, models: ModelCache, start: dict, engine_kind: str) -> None:
        name, stem = start.get("model"), start.get("stem")
        if not isinstance(name, str) or name not in models.models:
            raise DeepSamplerError(f"unknown model {name!r}; choose one of {sorted(models.models)}")
        sep = models.separator(name)
        if not sep.config.causal:
            raise DeepSamplerError(f"model {name} is offline; the live mode needs a causal model")
        if stem not in sep.sources:
            raise DeepSamplerError(f"stem {stem!r}: model {name} gives {', '.join(sep.sources)}")
        rate = start.get("sample_rate")
        if rate != sep.sample_rate:
            raise DeepSamplerError(
                f"sample rate {rate!r}: send audio at the model's {sep.sample_rate} Hz"
            )
        self.sep = sep
        self.engine = models.engine(name, engine_kind)
        self.state = self.engine.init_state()
        self.index = sep.sources.index(stem)
        self.stats = HopStats(sep.sample_rate, sep.config.hop)
        self.ready = {
            "type": "ready",
            "model": name,
            "stem": stem,
            "sample_rate": sep.sample_rate,
            "latency_ms": round(self.engine.latency_ms, 2),
            "hop": sep.config.hop,
        }

    def process(self, block: np.ndarray) -> np.ndarray:
        x = fit_channels(block[None], self.sep.config.audio_channels)
        start = time.perf_counter()
        y, self.state = self.engine.step(torch.from_numpy(np.ascontiguousarray(x)), self.state)
        self.stats.add(time.perf_counter() - start, block.shape[-1])
        y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        return y[self.index].mean(axis=0).astype("<f4")

    def stats_message(self) -> dict:
        s = self.stats.summary()
        keys = ("blocks", "p50_ms", "p99_ms", "rtf")
        return {"type": "stats", "missed": s["missed_deadlines"], **{k: s[k] for k in keys}}


def decode_block(data: bytes, sample_rate: int) -> np.ndarray:
    """A binary message -> ``[n]`` float32 samples; refuses what is not a whole, finite block
    of up to one second."""
    if not data or len(data) % 4:
        raise DeepSamplerError("a block is mono float32 samples: a non-empty multiple of 4 bytes")
    block = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if block.size > sample_rate:
        raise DeepSamplerError(f"a block holds at most one second ({sample_rate} samples)")
    if not np.isfinite(block).all():
        raise DeepSamplerError("a block holds NaN/Inf samples")
    return block


class LiveLimit:
    """At most ``limit`` sessions at once (the event loop is one thread: a plain count)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0


async def serve_live(ws: WebSocket, models: ModelCache, limit: LiveLimit, engine: str) -> None:
    """Run one live connection to its end (see the module's protocol)."""
    await ws.accept()
    if limit.active >= limit.limit:
        await _refuse(ws, f"the server runs {limit.limit} live session(s) at most; try later")
        return
    limit.active += 1
    try:
        try:
            start = json.loads(await ws.receive_text())
            if not isinstance(start, dict):
                raise DeepSamplerError("start with a JSON object: model, stem, sample_rate")
            session = await run_in_threadpool(LiveSession, models, start, engine)
        except (DeepSamplerError, ValueError, KeyError) as exc:
            await _refuse(ws, str(exc) or "bad start message")
            return
        await ws.send_json(session.ready)
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                continue  # text after the start (e.g. a keep-alive) needs no answer
            try:
                block = decode_block(data, session.sep.sample_rate)
            except DeepSamplerError as exc:
                await _refuse(ws, str(exc))
                return
            out = await run_in_threadpool(session.process, block)
            await ws.send_bytes(out.tobytes())
            if session.stats.blocks % STATS_EVERY == 0:
                await ws.send_json(session.stats_message())
    except WebSocketDisconnect:
        return
    finally:
        limit.active -= 1


async def _refuse(ws: WebSocket, message: str) -> None:
    await ws.send_json({"type": "error", "error": message})
    await ws.close(code=1008)
