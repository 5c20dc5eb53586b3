"""Shipped models: every model file in ``deepsampler/pretrained/``, with its kind.

* ``pretrained/<name>.pt``: separators and detectors, side by side (what ``--model`` takes and
  ``deepsampler models`` lists); the kind is read from the file's header.
* ``pretrained/stemprover/<name>.pt``: StemProver models (kind ``stemprover``), and
  ``<name>-regression.pt`` beside one, its regression control (kind ``stemprover-regression``).

A model card ``<name>.md`` sits beside each model (a regression control shares its model's).
Every file is in the one format of :mod:`deepsampler.models.checkpoint` and loads through
``load_checkpoint(entry.path, kind=entry.kind)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepsampler.errors import CheckpointError
from deepsampler.models.checkpoint import MODEL_KINDS, read_header

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: the folder of the shipped StemProver files (the functions below read PRETRAINED_DIR anew)
STEMPROVER_DIR = PRETRAINED_DIR / "stemprover"
REGRESSION_SUFFIX = "-regression"
#: the kinds of the files in STEMPROVER_DIR: [model, regression control]
STEMPROVER_KINDS = ("stemprover", "stemprover-regression")
#: every kind a shipped model may have
SHIPPED_KINDS = tuple(k.kind for k in MODEL_KINDS.values())


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model file: its name (what selects it), kind and path."""

    name: str
    kind: str
    path: Path

    @property
    def card(self) -> Path | None:
        """The model card beside it (a regression control's is its model's), None if none."""
        stem = self.name.removesuffix(REGRESSION_SUFFIX)
        card = self.path.with_name(f"{stem}.md")
        return card if card.is_file() else None


def _stemprover_dir() -> Path:
    return PRETRAINED_DIR / "stemprover"


def shipped_models() -> dict[str, Path]:
    """Name -> path of the shipped separators and detectors (``pretrained/*.pt``: what
    ``--model`` takes); :func:`shipped` lists every shipped model, StemProver's too."""
    return {p.stem: p for p in sorted(PRETRAINED_DIR.glob("*.pt"))}


def shipped(kind: str | None = None) -> list[ShippedModel]:
    """Every shipped model with its kind (``separator``, ``detector``, ``stemprover``,
    ``stemprover-regression``), or those of ``kind``; sorted by folder, then name."""
    if kind is not None and kind not in SHIPPED_KINDS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {list(SHIPPED_KINDS)}")
    entries = []
    if kind not in STEMPROVER_KINDS:  # the header says which: separators and detectors mix
        for name, path in shipped_models().items():
            model = read_header(path).get("model")
            if model not in MODEL_KINDS:
                raise CheckpointError(f"{path}: unknown model class {model!r}")
            entries.append(ShippedModel(name, MODEL_KINDS[model].kind, path))
    for path in sorted(_stemprover_dir().glob("*.pt")):
        regression = path.stem.endswith(REGRESSION_SUFFIX)
        entries.append(ShippedModel(path.stem, STEMPROVER_KINDS[regression], path))
    return [e for e in entries if kind is None or e.kind == kind]


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


def resolve_stemprover(model: str | Path) -> Path:
    """A shipped StemProver model's name (``pretrained/stemprover/<name>.pt``) or a path to a
    StemProver file -> the file's path."""
    path = Path(model)
    if path.suffix == ".pt" or path.exists():
        if not path.is_file():
            raise CheckpointError(f"{path}: no such StemProver model file")
        return path
    names = {e.name: e.path for e in shipped("stemprover")}
    if str(model) in names:
        return names[str(model)]
    if not names:
        raise CheckpointError(
            f"unknown StemProver model {model!r}: no StemProver model ships yet; train one "
            f"(deepsampler stemprover train --config configs/stemprover.yaml) and pass its "
            f"file (--stemprover-model experiments/stemprover/stemprover.pt)"
        )
    raise CheckpointError(f"unknown StemProver model {model!r}; shipped: {sorted(names)}")
