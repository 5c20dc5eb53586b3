"""Self-describing model checkpoints.

A checkpoint is a ``torch.save`` of a plain dict (loaded with ``weights_only=True``, so no code
runs on load)::

    format          "deepsampler.model"
    format_version  1
    package_version the deepsampler version that wrote it
    model           "DeepSampler" (a separator) or "SDEModel" (a sound-event detector)
    config          its ModelConfig / SDEConfig as a dict
    state_dict      the weights
    training        what trained it (steps, data, hours...) or None for untrained weights
    metadata        free-form (name, model card summary, caveats)
    digest          sha256 over everything above

The digest detects corruption and edits made without recomputing it; it does not prove who made
the file (anyone can recompute a hash), so the body is also checked for types and shapes.
Anything else (a foreign file, a newer format, edited weights or config, weights that do not fit
the config) is refused with a one-line :class:`CheckpointError` saying why, and so is a file of
the other kind than the caller asked for (a detector given where a separator is expected).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
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
MODEL_CLASSES: dict[str, tuple[type, type]] = {
    "DeepSampler": (DeepSampler, ModelConfig),
    "SDEModel": (SDEModel, SDEConfig),
}
#: what each model class is, for the message that refuses a file of the wrong kind
KINDS = {
    "DeepSampler": (
        "a separator",
        "pass a separator (see `deepsampler models`); a detector names its own separator",
    ),
    "SDEModel": (
        "a sound-event detector",
        "pass a detector checkpoint (`deepsampler train --config configs/siren-sde.yaml` "
        "writes one)",
    ),
}
USE_HINT = (
    "pass a shipped model name (see `deepsampler models`) "
    "or a .pt file written by deepsampler train"
)


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


@dataclass
class LoadedModel:
    """A model restored from a checkpoint, in eval mode, with what the checkpoint said of it."""

    model: Any  # DeepSampler, or SDEModel where load_checkpoint was asked for one
    path: Path
    training: dict[str, Any] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    digest: str = ""  # the file's verified digest ("" for a model not loaded from a file)

    @property
    def trained(self) -> bool:
        return bool(self.training)


def save_checkpoint(
    path: str | Path,
    model: DeepSampler | SDEModel,
    *,
    training: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` atomically to ``path`` (temporary file in the same folder, then rename).

    ``training`` must describe how the weights were trained; leave it None for untrained weights,
    which :class:`deepsampler.Separator` then refuses to present as a separation.
    """
    path = Path(path)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "model": type(model).__name__,
        "config": to_dict(model.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "training": training,
        "metadata": metadata or {},
    }
    payload["digest"] = _digest(payload)
    return atomic_torch_save(payload, path)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", kind: str | None = "DeepSampler"
) -> LoadedModel:
    """Load and verify a checkpoint of model class ``kind`` (``DeepSampler``: a separator,
    ``SDEModel``: a detector, None: either); raise :class:`CheckpointError` if it cannot be
    trusted or is of another kind."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a DeepSampler checkpoint (no '{FORMAT}' header)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format v{version} written by deepsampler "
            f"{payload.get('package_version', '?')}; this deepsampler ({_package_version()}) "
            f"reads v{FORMAT_VERSION} — use a matching deepsampler version"
        )
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
    if payload["model"] not in MODEL_CLASSES:
        raise CheckpointError(
            f"{path}: unknown model class {payload['model']!r}; known: {sorted(MODEL_CLASSES)}"
        )
    if kind is not None and payload["model"] != kind:
        what, _ = KINDS.get(payload["model"], (payload["model"], ""))
        expected, hint = KINDS.get(kind, (kind, ""))
        raise CheckpointError(f"{path}: {what} checkpoint, not {expected}; {hint}")
    if _digest(payload) != payload["digest"]:
        raise CheckpointError(
            f"{path}: integrity check failed (weights or config changed after saving); "
            f"do not use it, restore the original file"
        )
    model_cls, config_cls = MODEL_CLASSES[payload["model"]]
    try:
        config = from_dict(config_cls, payload["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its config does not fit this deepsampler ({exc})") from None
    model = model_cls(config)
    expected = model.state_dict()
    given = payload["state_dict"]
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    reshaped = sorted(k for k in set(given) & set(expected) if given[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        raise CheckpointError(
            f"{path}: weights do not match its config (missing {missing[:2]}, unexpected "
            f"{unexpected[:2]}, other shape {reshaped[:2]}); "
            "it was saved by an incompatible version"
        )
    model.load_state_dict(given)
    model.eval()
    return LoadedModel(
        model=model,
        path=path,
        training=payload["training"],
        metadata=dict(payload["metadata"]),
        package_version=str(payload.get("package_version", "")),
        digest=payload["digest"],
    )
