"""Shipped models: checkpoints in ``deepsampler/pretrained/<name>.pt`` with a model card
``<name>.md`` beside each, selected by name."""

from __future__ import annotations

from pathlib import Path

from deepsampler.errors import CheckpointError

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def shipped_models() -> dict[str, Path]:
    """Name -> checkpoint path of every model that ships with the package."""
    return {p.stem: p for p in sorted(PRETRAINED_DIR.glob("*.pt"))}


def resolve_model(name_or_path: str | Path) -> Path:
    """A shipped model's name, or a path to a checkpoint file -> the checkpoint's path."""
    text = str(name_or_path)
    models = shipped_models()
    if text in models:
        return models[text]
    path = Path(text).expanduser()
    if path.is_file():
        return path
    looks_like_path = path.suffix or "/" in text or "\\" in text
    if looks_like_path:
        raise CheckpointError(f"{path}: checkpoint not found")
    known = ", ".join(models) or "none yet"
    raise CheckpointError(
        f"unknown model {text!r}; shipped models: {known} (or pass a path to a checkpoint)"
    )
