"""ONNX export of the streaming step and an onnxruntime engine with the StreamingSeparator API.

The exported graph (:class:`~deepsampler.export.step_graph.StepGraph`) takes one frame's
magnitude and the explicit state and returns the masks of the frame being synthesised and the
new state. This runner does what depends on the stream position in numpy: framing and STFT,
rotary angles (float64, wrapped to 2*pi), which cache slots are valid, mask application with the
mixture phase, iSTFT overlap-add and the fixed output delay. The model's config travels inside
the ONNX file (metadata ``deepsampler.config``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepsampler.audio.stft import ENVELOPE_FLOOR, end_pad
from deepsampler.config import from_dict, to_dict
from deepsampler.errors import DeepSamplerError
from deepsampler.export.step_graph import StepGraph, state_shapes
from deepsampler.models.config import ModelConfig
from deepsampler.models.deepsampler import DeepSampler

OPSET = 18
FIXED_INPUTS = ["mag", "angles_new", "angles_out", "key_mask0", "key_mask", "valid"]


def _example_inputs(model: DeepSampler) -> tuple[torch.Tensor, ...]:
    cfg = model.config
    e = cfg.dim // cfg.heads
    m1 = cfg.attn_window if cfg.depth > 1 else 1
    fixed = (
        torch.rand(1, cfg.audio_channels, cfg.n_fft // 2 + 1),
        torch.zeros(1, e),
        torch.zeros(1, e),
        torch.ones(cfg.attn_window + cfg.lookahead, dtype=torch.bool),
        torch.ones(m1, dtype=torch.bool),
        torch.ones(1),
    )
    return fixed + tuple(torch.zeros(s) for s in state_shapes(model).values())


def export_onnx_bytes(model: DeepSampler) -> bytes:
    """The streaming step of a causal ``model`` as an ONNX model (bytes)."""
    if not model.config.causal:
        raise DeepSamplerError("only causal models stream; this model is offline")
    import onnx

    graph = StepGraph(model.eval())
    names = list(state_shapes(model))
    buf = io.BytesIO()
    # the exporter narrates its passes on stdout and warns about unrelated packages
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(
            graph,
            _example_inputs(model),
            buf,
            input_names=FIXED_INPUTS + names,
            output_names=["masks", *[f"new_{n}" for n in names]],
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    meta = proto.metadata_props.add()
    meta.key, meta.value = "deepsampler.config", json.dumps(to_dict(model.config))
    return proto.SerializeToString()


def export_onnx(model: DeepSampler, path: str | Path) -> Path:
    """Write the streaming step of ``model`` to ``path`` (atomically)."""
    from deepsampler.atomic import temp_path_beside

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(path)
    try:
        tmp.write_bytes(export_onnx_bytes(model))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class OnnxStreamState:
    """The runner's state: graph state tensors plus the position bookkeeping (numpy)."""

    graph: dict[str, np.ndarray]
    inbuf: np.ndarray  # [b, c, m] padded samples not yet framed
    spec_queue: list[np.ndarray]  # complex [b, c, F+1] of frames awaiting synthesis
    ola: np.ndarray  # [b, s, c, n_fft]
    ola_weight: np.ndarray  # [n_fft]
    outq: np.ndarray  # [b, s, c, q]
    next_frame: int = 0
    to_drop: int = 0
    samples_in: int = 0
    samples_out: int = 0
    last_frame: int | None = None  # set by flush: index of the stream's last real frame
    flushed: bool = False


class OnnxStreamingSeparator:
    """Same calls as :class:`deepsampler.streaming.StreamingSeparator`, run by onnxruntime."""

    def __init__(self, onnx_model: bytes, config: ModelConfig, threads: int = 0) -> None:
        import onnxruntime as ort

        self.config = config
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_model, opts, providers=["CPUExecutionProvider"])
        probe = DeepSampler(config)
        self.state_names = list(state_shapes(probe))
        self.state_shapes = state_shapes(probe)
        inv = probe.latent.blocks[0].time.attn.rope.freqs.detach().double().numpy()
        self.inv_freq = inv
        self.window = probe.stft.window.numpy().astype(np.float64)

    @classmethod
    def from_model(cls, model: DeepSampler, threads: int = 0) -> OnnxStreamingSeparator:
        return cls(export_onnx_bytes(model), model.config, threads)

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0) -> OnnxStreamingSeparator:
        import onnx

        data = Path(path).read_bytes()
        props = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
        if "deepsampler.config" not in props:
            raise DeepSamplerError(f"{path}: not a DeepSampler streaming export")
        return cls(data, from_dict(ModelConfig, json.loads(props["deepsampler.config"])), threads)

    @property
    def latency_samples(self) -> int:
        return self.config.latency_samples

    @property
    def latency_ms(self) -> float:
        return self.config.latency_ms

    def init_state(self, batch: int = 1) -> OnnxStreamState:
        if batch != 1:
            raise ValueError("the ONNX engine runs one stream (batch 1)")
        cfg = self.config
        n, s, c = cfg.n_fft, len(cfg.sources), cfg.audio_channels
        return OnnxStreamState(
            graph={k: np.zeros(v, np.float32) for k, v in self.state_shapes.items()},
            inbuf=np.zeros((1, c, n // 2), np.float32),
            spec_queue=[],
            ola=np.zeros((1, s, c, n)),
            ola_weight=np.zeros(n),
            outq=np.zeros((1, s, c, self.latency_samples), np.float32),
            to_drop=n // 2,
        )

    def _angles(self, position: int) -> np.ndarray:
        a = np.remainder(position * self.inv_freq, 2 * np.pi).astype(np.float32)
        return np.repeat(a, 2)[None]

    @staticmethod
    def _slot_mask(slots: int, newest: int, last_frame: int | None) -> np.ndarray:
        """Slot j of a cache whose newest entry is frame ``newest`` holds frame
        ``newest - slots + 1 + j``; it counts if that frame exists (``0 <= frame``, and
        ``frame <= last_frame`` once the stream has ended)."""
        pos = newest - slots + 1 + np.arange(slots)
        ok = pos >= 0
        if last_frame is not None:
            ok &= pos <= last_frame
        return ok

    def _run_frame(self, mag: np.ndarray, state: OnnxStreamState) -> np.ndarray:
        cfg = self.config
        f = state.next_frame
        i = f - cfg.lookahead
        m0 = cfg.attn_window + cfg.lookahead
        m1 = cfg.attn_window if cfg.depth > 1 else 1
        feeds = {
            "mag": mag.astype(np.float32),
            "angles_new": self._angles(f),
            "angles_out": self._angles(i),
            "key_mask0": self._slot_mask(m0, f, state.last_frame),
            "key_mask": self._slot_mask(m1, i, state.last_frame),
            "valid": np.array([1.0 if i >= 0 else 0.0], np.float32),
            **state.graph,
        }
        outs = self.session.run(None, feeds)
        state.graph = dict(zip(self.state_names, outs[1:], strict=True))
        state.next_frame += 1
        return outs[0]

    def _synthesise(self, masks: np.ndarray, state: OnnxStreamState) -> None:
        cfg = self.config
        spec = state.spec_queue.pop(0)  # [1, c, F+1]
        masks = np.concatenate([masks, masks[..., -1:]], axis=-1)  # Nyquist reuses the top bin
        frames = np.fft.irfft(spec[:, None] * masks, n=cfg.n_fft) * self.window
        state.ola += frames
        state.ola_weight += self.window**2
        self._emit(state, cfg.hop)

    def _emit(self, state: OnnxStreamState, count: int) -> None:
        w = state.ola_weight[:count]
        # as the torch engine: kept samples have an envelope >= 0.5, the floor guards the rest
        done = state.ola[..., :count] / np.maximum(w, ENVELOPE_FLOOR)
        state.ola = np.concatenate(
            [state.ola[..., count:], np.zeros_like(state.ola[..., :count])], -1
        )
        state.ola_weight = np.concatenate([state.ola_weight[count:], np.zeros_like(w)])
        drop = min(state.to_drop, count)
        state.to_drop -= drop
        state.outq = np.concatenate([state.outq, done[..., drop:].astype(np.float32)], -1)

    def _analyse_ready(self, state: OnnxStreamState) -> None:
        cfg = self.config
        n, hop = cfg.n_fft, cfg.hop
        while state.inbuf.shape[-1] >= n:
            spec = np.fft.rfft(state.inbuf[..., :n] * self.window)
            state.inbuf = state.inbuf[..., hop:]
            state.spec_queue.append(spec)
            masks = self._run_frame(np.abs(spec), state)
            if state.next_frame - 1 - cfg.lookahead >= 0:
                self._synthesise(masks, state)

    def step(self, samples, state: OnnxStreamState):
        """``[c, m]`` or ``[1, c, m]`` samples -> as many separated samples ``[(1,) s, c, m]``."""
        x = samples.numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
        squeeze = x.ndim == 2
        x = x[None] if squeeze else x
        if state.flushed:
            raise RuntimeError("this stream was flushed; start a new one with init_state()")
        if x.ndim != 3 or x.shape[:2] != (1, self.config.audio_channels):
            raise ValueError(f"expected [1, {self.config.audio_channels}, samples], got {x.shape}")
        m = x.shape[-1]
        state.samples_in += m
        state.inbuf = np.concatenate([state.inbuf, x.astype(np.float32)], -1)
        self._analyse_ready(state)
        out, state.outq = state.outq[..., :m], state.outq[..., m:]
        state.samples_out += m
        out = torch.from_numpy(np.ascontiguousarray(out))
        return (out[0] if squeeze else out), state

    def flush(self, state: OnnxStreamState):
        cfg = self.config
        # the offline STFT's pad to a whole number of hops, then its centring pad
        tail = end_pad(state.samples_in, cfg.hop) + cfg.n_fft // 2
        pad = np.zeros((*state.inbuf.shape[:-1], tail), np.float32)
        state.inbuf = np.concatenate([state.inbuf, pad], -1)
        self._analyse_ready(state)
        state.last_frame = state.next_frame - 1
        # drain the look-ahead: dummy frames past the end (masked out of attention) until the
        # last real frame is synthesised; a stream shorter than the look-ahead has frames to
        # synthesise only from index 0 on
        silence = np.zeros((1, cfg.audio_channels, cfg.n_fft // 2 + 1))
        while state.next_frame - cfg.lookahead <= state.last_frame:
            index = state.next_frame - cfg.lookahead
            masks = self._run_frame(silence, state)
            if index >= 0:
                self._synthesise(masks, state)
        self._emit(state, state.ola.shape[-1])
        total = state.samples_in + self.latency_samples
        tail = state.outq[..., : total - state.samples_out]
        state.samples_out = total
        state.flushed = True
        return torch.from_numpy(np.ascontiguousarray(tail)), state
