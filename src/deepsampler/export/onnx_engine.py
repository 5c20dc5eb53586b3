"""ONNX export of the streaming step and an onnxruntime engine with the StreamingSeparator API.

The exported graph (:class:`~deepsampler.export.step_graph.StepGraph`) takes one frame's
magnitude and the explicit state and returns the masks of the frame being synthesised and the
new state. This runner does what depends on the stream position in numpy: framing and STFT,
rotary angles (float64, wrapped to 2*pi), which cache slots are valid, mask application with the
mixture phase, iSTFT overlap-add and the fixed output delay.

An export is self-describing: its ``metadata_props`` hold the model's config and what a user of
the file needs to know of the model (:class:`ExportMetadata`: name, size, training record, the
digest of the checkpoint it came from, the versions that wrote it) plus a checksum, so a .onnx
file can stand in for the checkpoint wherever the model is only streamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsampler.audio.stft import ENVELOPE_FLOOR, end_pad
from deepsampler.config import from_dict, to_dict
from deepsampler.errors import ConfigError, DeepSamplerError
from deepsampler.export.step_graph import StepGraph, state_shapes
from deepsampler.models.config import ModelConfig
from deepsampler.models.deepsampler import DeepSampler

OPSET = 18
FIXED_INPUTS = ["mag", "angles_new", "angles_out", "key_mask0", "key_mask", "valid"]
# metadata_props keys: every key this package writes starts with the prefix
PREFIX = "deepsampler."
FORMAT = "deepsampler.onnx-step"
FORMAT_VERSION = 1
EXPORT_HINT = "export one with `deepsampler export onnx --model MODEL -o FILE.onnx`"


def _versions() -> dict[str, str]:
    """The versions that shape an export: deepsampler (the graph), torch (the exporter), onnx."""
    import onnx

    from deepsampler import __version__

    return {
        "package_version": __version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
    }


def weights_digest(model: DeepSampler) -> str:
    """SHA-256 (hex) over ``model``'s config and weights: names, dtypes, shapes and bytes; it
    identifies a model that has no checkpoint digest (an in-memory one)."""
    h = hashlib.sha256(json.dumps(to_dict(model.config), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checkpoint_digest(path: str | Path) -> str | None:
    """The digest stored in a checkpoint file (``deepsampler.models.checkpoint``), or None
    where it has none or cannot be read.

    :class:`~deepsampler.models.LoadedModel` does not keep it, so the file's small pickle is read
    again; ``mmap`` leaves the weights on disk (about 10 ms for music4-rt). Only call it for a
    file that ``load_checkpoint`` has verified.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # anything torch refuses: the caller falls back to weights_digest
        return None
    digest = payload.get("digest") if isinstance(payload, dict) else None
    return digest if isinstance(digest, str) and digest else None


@dataclass(frozen=True)
class ExportMetadata:
    """What an exported file says of the model it holds, besides its config.

    ``digest`` is the source checkpoint's own digest (``digest_source == "checkpoint"``: compare
    it with the .pt file's) or, for a model that came from no checkpoint, :func:`weights_digest`
    (``"weights"``). The versions are those of the process that exported it.
    """

    name: str
    parameters: int
    training: dict[str, Any] | None
    digest: str
    digest_source: str
    model_metadata: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    torch_version: str = ""
    onnx_version: str = ""

    @property
    def trained(self) -> bool:
        """Whether the weights have a training record (as ``LoadedModel.trained``)."""
        return bool(self.training)

    @classmethod
    def for_model(
        cls,
        model: DeepSampler,
        *,
        name: str = "",
        training: dict[str, Any] | None = None,
        model_metadata: dict[str, Any] | None = None,
        digest: str | None = None,
    ) -> ExportMetadata:
        """The metadata of an export of ``model`` made by this process (``digest``: the source
        checkpoint's; None hashes the weights instead)."""
        return cls(
            name=name,
            parameters=model.num_parameters(),
            training=training,
            digest=digest or weights_digest(model),
            digest_source="checkpoint" if digest else "weights",
            model_metadata=dict(model_metadata or {}),
            **_versions(),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-safe) of the fields, with ``trained``."""
        return {**to_dict(self), "trained": self.trained}

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` entries (strings; dicts as JSON) this metadata is stored as."""
        d = self.as_dict()
        return {
            PREFIX + k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
            for k, v in d.items()
        }

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ExportMetadata:
        """Read :meth:`to_props`'s entries back; ValueError/TypeError/KeyError if malformed."""
        values = {}
        for f in cls.__dataclass_fields__.values():
            raw = props[PREFIX + f.name]
            values[f.name] = raw if f.type == "str" else json.loads(raw)
        meta = cls(**values)
        well_formed = (
            type(meta.parameters) is int
            and isinstance(meta.training, (dict, type(None)))
            and isinstance(meta.model_metadata, dict)
            and meta.digest_source in ("checkpoint", "weights")
        )
        if not well_formed:
            raise TypeError("metadata of the wrong types")
        return meta


def _checksum(proto: Any, props: dict[str, str]) -> str:
    """SHA-256 over the model without its metadata_props (graph, weights, opsets, functions)
    and this package's props but the checksum itself: a file cut or changed anywhere fails it."""
    import onnx

    body = onnx.ModelProto()
    body.CopyFrom(proto)
    del body.metadata_props[:]
    h = hashlib.sha256(body.SerializeToString(deterministic=True))
    ours = {k: v for k, v in props.items() if k.startswith(PREFIX) and k != PREFIX + "checksum"}
    h.update(json.dumps(ours, sort_keys=True).encode())
    return h.hexdigest()


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


def export_onnx_bytes(model: DeepSampler, metadata: ExportMetadata | None = None) -> bytes:
    """The streaming step of a causal ``model`` as an ONNX model (bytes), carrying its config,
    ``metadata`` (default: :meth:`ExportMetadata.for_model` of an unnamed, untrained model) and
    a checksum in its ``metadata_props``."""
    if not model.config.causal:
        raise DeepSamplerError("only causal models stream; this model is offline")
    import onnx

    metadata = metadata or ExportMetadata.for_model(model)
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
    props = {
        PREFIX + "format": FORMAT,
        PREFIX + "format_version": str(FORMAT_VERSION),
        PREFIX + "config": json.dumps(to_dict(model.config)),
        **metadata.to_props(),
    }
    props[PREFIX + "checksum"] = _checksum(proto, props)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def export_onnx(
    model: DeepSampler, path: str | Path, metadata: ExportMetadata | None = None
) -> Path:
    """Write the streaming step of ``model`` to ``path`` (atomically); see
    :func:`export_onnx_bytes` for ``metadata``."""

    from deepsampler.atomic import atomic_write_bytes

    Path(path).parent.mkdir(parents=True, exist_ok=True)  # an unusable folder fails at once
    # exported before the temporary file is made: export takes seconds
    return atomic_write_bytes(export_onnx_bytes(model, metadata), path)


@dataclass(frozen=True)
class OnnxExport:
    """A checked DeepSampler export: the file's bytes, the model's config and metadata."""

    data: bytes
    config: ModelConfig
    metadata: ExportMetadata


def parse_export(data: bytes, source: str | Path) -> OnnxExport:
    """Check ``data`` (an exported file's bytes, from ``source``, named in errors) and read its
    config and metadata; anything that is not an intact DeepSampler export of a format this
    version reads is a one-line :class:`DeepSamplerError`."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        from deepsampler.audio.io import looks_like_text

        what = "it is text" if looks_like_text(data[:512]) else "it does not parse as ONNX"
        raise DeepSamplerError(
            f"{source}: not an ONNX file, or a damaged one ({what}); {EXPORT_HINT}"
        ) from None
    props = {p.key: p.value for p in proto.metadata_props}
    if PREFIX + "config" not in props:
        what = "an empty file" if not data else "an ONNX file without DeepSampler metadata"
        raise DeepSamplerError(
            f"{source}: not a DeepSampler streaming export ({what}); {EXPORT_HINT}"
        )
    version = props.get(PREFIX + "format_version")
    if props.get(PREFIX + "format") != FORMAT or version is None:
        raise DeepSamplerError(
            f"{source}: exported by an older deepsampler, without the metadata this one needs; "
            f"export it again (`deepsampler export onnx`)"
        )
    if version != str(FORMAT_VERSION):
        raise DeepSamplerError(
            f"{source}: export format v{version} written by deepsampler "
            f"{props.get(PREFIX + 'package_version', '?')}; this deepsampler reads "
            f"v{FORMAT_VERSION}; use a matching deepsampler version or export it again"
        )
    if props.get(PREFIX + "checksum") != _checksum(proto, props):
        raise DeepSamplerError(
            f"{source}: damaged DeepSampler export (its content does not match the checksum "
            f"it was written with); copy or export it again"
        )
    try:
        config = from_dict(ModelConfig, json.loads(props[PREFIX + "config"]))
        metadata = ExportMetadata.from_props(props)
    except (ConfigError, KeyError, ValueError, TypeError) as exc:
        raise DeepSamplerError(
            f"{source}: its metadata does not fit this deepsampler ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); export it again with this "
            f"version"
        ) from None
    return OnnxExport(data, config, metadata)


def load_export(path: str | Path) -> OnnxExport:
    """Read and check an exported .onnx file (see :func:`parse_export`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DeepSamplerError(f"{path}: file not found; {EXPORT_HINT}") from None
    except OSError as exc:
        raise DeepSamplerError(
            f"{path}: cannot be read ({exc.strerror or exc}); check the path and permissions"
        ) from None
    return parse_export(data, path)


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
    """Same calls as :class:`deepsampler.streaming.StreamingSeparator`, run by onnxruntime.

    Args:
        onnx_model: the exported step (:func:`export_onnx_bytes`).
        config: the model's config (the runner needs its STFT and attention sizes).
        threads: onnxruntime intra-op threads (0: onnxruntime's default, all cores; one frame
            is little work, so 1 is usually fastest).
        metadata: what the export says of its model (``None`` where it is not known).
        origin: where the graph came from, for messages (a path, the cache, memory).
    """

    kind = "onnx"  # which engine this is, for messages (the torch engine is "torch")

    def __init__(
        self,
        onnx_model: bytes,
        config: ModelConfig,
        threads: int = 0,
        metadata: ExportMetadata | None = None,
        origin: str = "exported in memory",
    ) -> None:
        import onnxruntime as ort

        self.config = config
        self.metadata = metadata
        self.origin = origin
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        probe = DeepSampler(config)
        self.state_names = list(state_shapes(probe))
        self.state_shapes = state_shapes(probe)
        try:
            self.session = ort.InferenceSession(
                onnx_model, opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise DeepSamplerError(
                f"{origin}: onnxruntime cannot load this graph ({reason or type(exc).__name__}); "
                f"export it again with this deepsampler"
            ) from None
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != FIXED_INPUTS + self.state_names:
            raise DeepSamplerError(
                f"{origin}: the graph's inputs do not match its config (an export of another "
                f"deepsampler version?); export it again with this one"
            )
        inv = probe.latent.blocks[0].time.attn.rope.freqs.detach().double().numpy()
        self.inv_freq = inv
        self.window = probe.stft.window.numpy().astype(np.float64)

    @classmethod
    def from_model(
        cls, model: DeepSampler, threads: int = 0, metadata: ExportMetadata | None = None
    ) -> OnnxStreamingSeparator:
        """Export ``model`` now, in memory (seconds for a real model; see :meth:`cached`)."""
        return cls(export_onnx_bytes(model, metadata), model.config, threads, metadata)

    @classmethod
    def cached(
        cls, model: DeepSampler, metadata: ExportMetadata | None = None, threads: int = 0
    ) -> OnnxStreamingSeparator:
        """The export of ``model`` from the on-disk cache (:mod:`deepsampler.export.cache`):
        exported and stored on the first call for these weights and versions, loaded after."""
        from deepsampler.export.cache import cached_onnx

        metadata = metadata or ExportMetadata.for_model(model)
        entry = cached_onnx(model, metadata)
        return cls(entry.data, model.config, threads, metadata, origin=entry.describe())

    @classmethod
    def from_export(
        cls, export: OnnxExport, threads: int = 0, origin: str = ""
    ) -> OnnxStreamingSeparator:
        """The engine of a checked export (:func:`load_export`)."""
        return cls(export.data, export.config, threads, export.metadata, origin or "export")

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0) -> OnnxStreamingSeparator:
        """The engine of an exported .onnx file; anything else is a one-line error."""
        return cls.from_export(load_export(path), threads, origin=str(path))

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
