"""One model-file format for every model deepsampler writes and ships.

A model file is a ``torch.save`` of a plain dict (loaded with ``weights_only=True``, so no code
runs on load)::

    format          "deepsampler.model"
    format_version  1
    package_version the deepsampler version that wrote it
    model           the model class: "DeepSampler" (a separator), "SDEModel" (a sound-event
                    detector), "StemProver" (the artifact refiner), "RegressionNet" (StemProver's
                    one-pass regression control); see MODEL_KINDS
    config          what rebuilds the network before its weights load (a ModelConfig /
                    SDEConfig as a dict; for StemProver files its config, adapter ranks and
                    guide digest)
    state_dict      the weights, a flat name -> tensor dict
    training        what trained it (steps, data, hours...) or None for untrained weights
    metadata        free-form (name, model card summary, caveats, stages done)
    digest          sha256 over everything above

The digest detects corruption and edits made without recomputing it; it does not prove who made
the file (anyone can recompute a hash), so the body is also checked for types and shapes.
Anything else (a foreign file, a newer format, an old StemProver file, edited weights or config,
weights that do not fit the config) is refused with a one-line :class:`CheckpointError` saying
why, and so is a file of another kind than the caller asked for (a detector given where a
separator is expected).

How each model class is written and rebuilt is its :class:`Codec`. Separators and detectors are
registered here; classes of other packages register theirs with :func:`register_codec` from the
module named in :data:`MODEL_KINDS`, imported the first time a file of that class is read (so
``models`` imports nothing of ``stemprover``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepsampler.atomic import atomic_torch_save
from deepsampler.config import from_dict, to_dict
from deepsampler.errors import CheckpointError, ConfigError
from deepsampler.models.config import ModelConfig
from deepsampler.models.deepsampler import DeepSampler
from deepsampler.models.sde import SDEConfig, SDEModel

FORMAT = "deepsampler.model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelKind:
    """One model class that model files hold: the kind the registry lists it as, how messages
    name it, what to pass where it is expected, and the module that registers its codec."""

    model: str
    kind: str
    what: str
    hint: str
    module: str = __name__


#: every model class a model file may hold (the file's ``model`` field), by class name
MODEL_KINDS: dict[str, ModelKind] = {
    k.model: k
    for k in (
        ModelKind(
            "DeepSampler",
            "separator",
            "a separator",
            "pass a separator (see `deepsampler models`); a detector names its own separator",
        ),
        ModelKind(
            "SDEModel",
            "detector",
            "a sound-event detector",
            "pass a detector checkpoint (`deepsampler train --config configs/siren-sde.yaml` "
            "writes one)",
        ),
        ModelKind(
            "StemProver",
            "stemprover",
            "a StemProver model",
            "pass a StemProver model (shipped: stemprover; `deepsampler stemprover train` writes "
            "RUN/stemprover.pt)",
            "deepsampler.stemprover.checkpoint",
        ),
        ModelKind(
            "RegressionNet",
            "stemprover-regression",
            "a StemProver regression control",
            "pass the regression control trained beside its StemProver model (RUN/regression.pt "
            "or pretrained/stemprover/<name>-regression.pt)",
            "deepsampler.stemprover.checkpoint",
        ),
    )
}
#: what each model class is, for the message that refuses a file of the wrong kind
KINDS = {name: (k.what, k.hint) for name, k in MODEL_KINDS.items()}
#: formats deepsampler wrote before this one -> the script that converts such a file
LEGACY_FORMATS = {
    "deepsampler-stemprover-v1": "scripts/convert_stemprover.py",
    "deepsampler-stemprover-regression-v1": "scripts/convert_stemprover.py",
}
USE_HINT = (
    "pass a shipped model name (see `deepsampler models`) "
    "or a .pt file written by deepsampler train"
)

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Codec:
    """How one model class is written to a file and rebuilt from one.

    ``encode(model) -> (config, state_dict)``: a plain (JSON-safe) config and flat weights.
    ``decode(config, state_dict) -> model``: the network with those weights; it raises
    :class:`CheckpointError` (without the path, which the loader adds) or :class:`ConfigError`
    for a config or weights it cannot use.
    """

    encode: Callable[[Any], tuple[dict[str, Any], State]]
    decode: Callable[[dict[str, Any], State], Any]


_CODECS: dict[str, Codec] = {}


def register_codec(model: str, codec: Codec) -> None:
    """Make files of model class ``model`` (a :data:`MODEL_KINDS` name) readable and writable."""
    if model not in MODEL_KINDS:
        raise ValueError(f"unknown model class {model!r}; add it to MODEL_KINDS first")
    _CODECS[model] = codec


def codec_for(model: str) -> Codec:
    """The codec of model class ``model``, importing the module that registers it if needed."""
    if model not in _CODECS and model in MODEL_KINDS:
        importlib.import_module(MODEL_KINDS[model].module)
    if model not in _CODECS:
        raise CheckpointError(f"unknown model class {model!r}; known: {sorted(MODEL_KINDS)}")
    return _CODECS[model]


def model_class(kind: str) -> str:
    """A model class name, or a registry kind (``separator``, ``stemprover``...) -> class name."""
    if kind in MODEL_KINDS:
        return kind
    for name, k in MODEL_KINDS.items():
        if k.kind == kind:
            return name
    raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MODEL_KINDS)}")


def load_exact(module: torch.nn.Module, state: State) -> None:
    """Load ``state`` into ``module`` if names and shapes match exactly, else raise a
    :class:`CheckpointError` that says how they differ."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        raise CheckpointError(
            f"weights do not match its config (missing {missing[:2]}, unexpected "
            f"{unexpected[:2]}, other shape {reshaped[:2]}); "
            "it was saved by an incompatible version"
        )
    module.load_state_dict(state)


def _dataclass_codec(model_cls: type, config_cls: type) -> Codec:
    """The codec of a network built from one config dataclass (separators, detectors)."""

    def encode(model: Any) -> tuple[dict[str, Any], State]:
        return to_dict(model.config), dict(model.state_dict())

    def decode(config: dict[str, Any], state: State) -> Any:
        model = model_cls(from_dict(config_cls, config))
        load_exact(model, state)
        return model

    return Codec(encode, decode)


register_codec("DeepSampler", _dataclass_codec(DeepSampler, ModelConfig))
register_codec("SDEModel", _dataclass_codec(SDEModel, SDEConfig))


def _package_version() -> str:
    from deepsampler import __version__

    return __version__


def _digest(payload: dict[str, Any]) -> str:
    h = hashlib.sha256()
    keys = (
        "format",
        "format_version",
        "package_version",
        "model",
        "config",
        "training",
        "metadata",
    )
    header = {k: payload.get(k) for k in keys}
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name in sorted(payload["state_dict"]):
        tensor = payload["state_dict"][name].detach().cpu().contiguous()
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    """Say what a file that torch.load refused is.

    torch's own reason describes its parser, not the file: "hello" gives KeyError '101' (the
    'h' read as a pickle opcode that looks up memo entry 101, the 'e'), so the file's first bytes
    are looked at instead.
    """
    from deepsampler.audio.io import looks_like_text, sniff_audio  # only this message needs them

    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as err:
        return CheckpointError(f"{path}: cannot be read ({err.strerror or err}); check permissions")
    torch_reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    refused_objects = "Weights only load failed" in torch_reason
    if head.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):  # a cut file loses the directory at its end
            return CheckpointError(
                f"{path}: truncated or damaged checkpoint (its zip directory is missing or "
                f"broken); copy or download it again"
            )
        is_torch = any(n.endswith("/data.pkl") for n in names)
        what = None if is_torch else "it is a zip archive of other files"
    elif head.startswith(b"\x80"):  # a pickle: torch's legacy format, or a plain Python pickle
        what = None
    elif not head:
        what = "it is empty"
    elif kind := sniff_audio(head):
        what = f"it is {kind} audio"
    elif looks_like_text(head):
        what = "it is text"
    else:
        what = "unknown content"
    if what is not None:
        return CheckpointError(
            f"{path}: not a DeepSampler model file (not a PyTorch checkpoint: {what}); {USE_HINT}"
        )
    if refused_objects:  # weights_only=True refused it: torch would have to run its code
        return CheckpointError(
            f"{path}: not a DeepSampler model file (a pickle that torch loads only by trusting it "
            f"to run code, which deepsampler never does); {USE_HINT}"
        )
    reason = torch_reason or type(exc).__name__
    return CheckpointError(
        f"{path}: truncated or damaged PyTorch checkpoint (torch: {reason}); copy or download it "
        f"again"
    )


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A model file that is not there (also a FileNotFoundError, for callers that catch one)."""


@dataclass
class LoadedModel:
    """A model restored from a checkpoint, in eval mode, with what the checkpoint said of it."""

    model: Any  # DeepSampler, SDEModel, StemProver... (whatever load_checkpoint was asked for)
    path: Path
    training: dict[str, Any] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    digest: str = ""  # the file's verified digest ("" for a model not loaded from a file)

    @property
    def trained(self) -> bool:
        return bool(self.training)

    @property
    def kind(self) -> str:
        """What the registry calls this model (``separator``, ``detector``, ``stemprover``...)."""
        k = MODEL_KINDS.get(type(self.model).__name__)
        return k.kind if k is not None else type(self.model).__name__


def save_checkpoint(
    path: str | Path,
    model: Any,
    *,
    training: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` atomically to ``path`` (temporary file in the same folder, then rename).

    ``training`` must describe how the weights were trained; leave it None for untrained weights,
    which :class:`deepsampler.Separator` then refuses to present as a separation.
    """
    path = Path(path)
    name = type(model).__name__
    config, state = codec_for(name).encode(model)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "model": name,
        "config": config,
        "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()},
        "training": training,
        "metadata": metadata or {},
    }
    payload["digest"] = _digest(payload)
    return atomic_torch_save(payload, path)


def _torch_load(path: Path, map_location: str | torch.device, mmap: bool = False) -> Any:
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:
        raise _unreadable(path, exc) from None


def _check_header(path: Path, payload: Any) -> None:
    """Refuse anything but this format and version, in one line."""
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if isinstance(fmt, str) and fmt in LEGACY_FORMATS:
        script = LEGACY_FORMATS[fmt]
        raise CheckpointError(
            f"{path}: old model-file format {fmt!r} (no version or digest); convert it with "
            f"`.venv/bin/python {script} {path}`"
        )
    if fmt != FORMAT:
        raise CheckpointError(f"{path}: not a DeepSampler checkpoint (no '{FORMAT}' header)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format v{version} written by deepsampler "
            f"{payload.get('package_version', '?')}; this deepsampler ({_package_version()}) "
            f"reads v{FORMAT_VERSION} — use a matching deepsampler version"
        )


def read_header(path: str | Path) -> dict[str, Any]:
    """A model file's fields other than its weights, read cheaply (the weights stay on disk)
    and not verified: for listing files, never for using them."""
    path = Path(path)
    payload = _torch_load(path, "cpu", mmap=True)
    _check_header(path, payload)
    return {k: v for k, v in payload.items() if k != "state_dict"}


def read_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", kind: str | None = None
) -> dict[str, Any]:
    """The verified contents of a model file (format, version, types, kind, digest), without
    building its model: for tools that read parts of one. ``kind`` as in
    :func:`load_checkpoint`."""
    path = Path(path)
    payload = _torch_load(path, map_location)
    _check_header(path, payload)
    missing = {"model", "config", "state_dict", "training", "metadata", "digest"} - set(payload)
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {sorted(missing)}; it is incomplete")
    state = payload["state_dict"]
    well_formed = (
        isinstance(payload["config"], dict)
        and isinstance(payload["metadata"], dict)
        and isinstance(payload["training"], (dict, type(None)))
        and isinstance(state, dict)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
        and isinstance(payload["digest"], str)
    )
    if not well_formed:
        raise CheckpointError(f"{path}: checkpoint body is malformed (wrong types); it is damaged")
    if payload["model"] not in MODEL_KINDS:
        raise CheckpointError(
            f"{path}: unknown model class {payload['model']!r}; known: {sorted(MODEL_KINDS)}"
        )
    if kind is not None:
        expected_class = model_class(kind)
        if payload["model"] != expected_class:
            what = MODEL_KINDS[payload["model"]].what
            expected = MODEL_KINDS[expected_class]
            raise CheckpointError(
                f"{path}: {what} checkpoint, not {expected.what}; {expected.hint}"
            )
    if _digest(payload) != payload["digest"]:
        raise CheckpointError(
            f"{path}: integrity check failed (weights or config changed after saving); "
            f"do not use it, restore the original file"
        )
    return payload


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", kind: str | None = "DeepSampler"
) -> LoadedModel:
    """Load and verify a model file of ``kind`` (a model class such as ``DeepSampler``, or a
    registry kind such as ``separator``, ``detector``, ``stemprover``; None: any); raise
    :class:`CheckpointError` if it cannot be trusted or is of another kind."""
    path = Path(path)
    payload = read_checkpoint(path, map_location, kind)
    codec = codec_for(payload["model"])
    try:
        model = codec.decode(payload["config"], payload["state_dict"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its config does not fit this deepsampler ({exc})") from None
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    model.eval()
    return LoadedModel(
        model=model,
        path=path,
        training=payload["training"],
        metadata=dict(payload["metadata"]),
        package_version=str(payload.get("package_version", "")),
        digest=payload["digest"],
    )
