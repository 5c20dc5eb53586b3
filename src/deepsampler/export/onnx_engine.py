"""ONNX export of the model's frame step and an onnxruntime engine with the StreamingSeparator API.

The exported graph is :class:`~deepsampler.models.frame_step.FrameStepGraph`, the very function
the PyTorch engine runs eagerly (``DeepSampler.step_frame``): one frame's magnitude, a
``present`` flag and the fixed-size state in; the masks of the frame being synthesised and the
new state out. Everything else (framing, mask application with the mixture phase, overlap-add,
the fixed delay) is :class:`~deepsampler.streaming.engine.FrameEngine`'s, shared with PyTorch;
this engine runs it on numpy arrays, as onnxruntime takes and gives them, and keeps the graph's
state as the flat list of arrays the graph returned (:class:`OnnxFrameState`), so that no hop
converts between torch and numpy (a third of the time per hop when it did).

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

from deepsampler.config import from_dict, to_dict
from deepsampler.errors import ConfigError, DeepSamplerError
from deepsampler.models.config import ModelConfig
from deepsampler.models.deepsampler import DeepSampler
from deepsampler.models.frame_step import FrameStepGraph, frame_state_specs
from deepsampler.streaming.engine import FrameEngine

# 23: RMSNormalization, Gelu and Attention as single operators (406 -> 294 nodes for speech-rt,
# less time per frame: benchmarks/frame_cost.py --variant opset=18); needs onnxruntime >= 1.23
OPSET = 23
FIXED_INPUTS = ["mag", "present"]
# metadata_props keys: every key this package writes starts with the prefix
PREFIX = "deepsampler."
FORMAT = "deepsampler.onnx-step"
# 2: the model's frame step with ring caches and the position inside (1: angles and slot masks
# came from the runner)
FORMAT_VERSION = 2
# the exported graph's nodes, for the export cache: a change that keeps the inputs, outputs and
# results but makes the step cheaper re-exports cached models (2: ScatterND rings without
# transposes and a MatMul pair swap in the rotary embedding, 294 -> 238 nodes for speech-rt)
GRAPH_REVISION = 2
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
    fixed = (torch.rand(1, cfg.audio_channels, cfg.n_fft // 2 + 1), torch.ones(1, dtype=torch.bool))
    return fixed + tuple(model.initial_frame_state(1).tensors())


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """Raise ``names``' loggers to ERROR for the block, then restore their levels."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx_bytes(
    model: DeepSampler, metadata: ExportMetadata | None = None, opset: int = OPSET
) -> bytes:
    """The frame step of a causal ``model`` as an ONNX model (bytes), carrying its config,
    ``metadata`` (default: :meth:`ExportMetadata.for_model` of an unnamed, untrained model) and
    a checksum in its ``metadata_props``. ``opset``: the default (the cache's) unless comparing
    (benchmarks/frame_cost.py); 18 runs on onnxruntime < 1.23 as well."""
    if not model.config.causal:
        raise DeepSamplerError("only causal models stream; this model is offline")
    import onnx

    metadata = metadata or ExportMetadata.for_model(model)
    graph = FrameStepGraph(model.eval())
    names = list(frame_state_specs(model.config))
    buf = io.BytesIO()
    # the exporter narrates its passes on stdout and warns about unrelated packages; onnx_ir
    # logs a warning per empty attribute list (ScatterND's), which it then types correctly
    with (
        torch.no_grad(),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        _quiet_loggers("torch.onnx", "onnx_ir"),
    ):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            _example_inputs(model),
            buf,
            input_names=FIXED_INPUTS + names,
            output_names=["masks", *[f"new_{n}" for n in names]],
            opset_version=opset,
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
class OnnxFrameState:
    """The frame step's state as the graph takes it: numpy arrays in
    :func:`~deepsampler.models.frame_step.frame_state_specs` order (position first)."""

    arrays: list[np.ndarray]

    @property
    def position(self) -> np.ndarray:
        """``[1]`` int64, index of the next frame to analyse."""
        return self.arrays[0]

    def tensors(self) -> list[torch.Tensor]:
        """The arrays as tensors (sharing memory), as ``FrameState.tensors`` lists them."""
        return [torch.from_numpy(a) for a in self.arrays]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


class OnnxStreamingSeparator(FrameEngine):
    """Same calls as :class:`deepsampler.streaming.StreamingSeparator`, the frame step run by
    onnxruntime (one stream: batch 1).

    Args:
        onnx_model: the exported step (:func:`export_onnx_bytes`).
        config: the model's config (the engine needs its STFT and state sizes).
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

        super().__init__(config, torch.hann_window(config.n_fft, periodic=True).numpy())
        self.metadata = metadata
        self.origin = origin
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.state_names = list(frame_state_specs(config))
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

    def initial_frame_state(self, batch: int) -> OnnxFrameState:
        if batch != 1:
            raise ValueError("the ONNX engine runs one stream (batch 1)")
        specs = frame_state_specs(self.config).values()
        return OnnxFrameState([torch.zeros(shape, dtype=dtype).numpy() for shape, dtype in specs])

    def step_frame(
        self, spectrum: np.ndarray, present: np.ndarray, state: OnnxFrameState
    ) -> tuple[np.ndarray, OnnxFrameState]:
        """``spectrum [1, c, F]`` complex64, ``present [1]`` bool (numpy) -> masks
        ``[1, s, c, F]`` and the new state."""
        feeds = dict(zip(self.state_names, state.arrays, strict=True))
        feeds["mag"] = np.abs(spectrum)
        feeds["present"] = present
        masks, *new = self.session.run(None, feeds)
        return masks, OnnxFrameState(new)
