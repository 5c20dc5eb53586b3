"""Detector checkpoints: the one model-file format (``deepsampler.models.checkpoint``:
format name, version, digest, config), holding an :class:`SDEModel` and, in
``metadata["detection"]``, what the network alone does not say (:class:`DetectionSettings`):
the separator whose stems it reads and that separator's digest, the detected source, and the
event thresholds. The digest covers the metadata, so none of it changes unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsampler.config import from_dict, to_dict
from deepsampler.detection.events import EventConfig
from deepsampler.errors import CheckpointError, ConfigError
from deepsampler.models.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from deepsampler.models.sde import SDEModel

KIND = "detector"  # the registry kind of an SDEModel file
#: the name a shipped detector will have; none ships yet
DEFAULT_DETECTOR = "siren-sde"
TRAIN_HINT = (
    "train one with `deepsampler train --config configs/siren-sde.yaml` and pass "
    "--model experiments/siren-sde/checkpoints/best.pt"
)


@dataclass(frozen=True)
class DetectionSettings:
    """What a detector needs besides its network.

    ``separator``: the separator whose stems it was trained on (a shipped name such as
    ``siren-rt``, or a checkpoint path), None for a detector that reads the mixture alone;
    ``separator_digest``: that separator's checkpoint digest when the detector was trained
    (a separator since retrained is refused: the detector never saw its stems; None: not
    checked); ``label``: the detected source (a source of the separator); ``events``: the
    thresholds that turn probabilities into events.
    """

    label: str = "siren"
    separator: str | None = None
    separator_digest: str | None = None
    events: EventConfig = EventConfig()


def save_detector(
    path: str | Path,
    model: SDEModel,
    settings: DetectionSettings,
    *,
    training: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a detector checkpoint atomically (``training`` None: untrained weights)."""
    if model.config.use_separation != (settings.separator is not None):
        raise ValueError("a detector reads a separator's stems exactly when use_separation")
    meta = {**(metadata or {}), "detection": to_dict(settings)}
    return save_checkpoint(path, model, training=training, metadata=meta)


def load_detector(path: str | Path) -> tuple[LoadedModel, DetectionSettings]:
    """Load and verify a detector checkpoint; a separator's (or anything else) is refused in
    one line."""
    loaded = load_checkpoint(path, kind=KIND)
    given = loaded.metadata.get("detection")
    try:
        if not isinstance(given, dict):
            raise ConfigError("no 'detection' settings")
        settings = from_dict(DetectionSettings, given)
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{path}: detector settings are unusable ({exc})") from None
    if loaded.model.config.use_separation != (settings.separator is not None):
        raise CheckpointError(
            f"{path}: its network and its settings disagree on whether it reads a separator's "
            f"stems; the file is damaged"
        )
    return loaded, settings
