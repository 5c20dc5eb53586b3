"""Enhancer: refine a whole separated stem (array or file) with a StemProver model.

Steps: resample to the model's rate; detect artifacts (with the mixture when given) to choose and
weight the LoRA adapters (``adapters="auto"``) unless the caller names them; cut the stem (and the
mixture with it, at the same places) at quiet places away from transients
(``segments.adaptive_boundaries``); refine the segments in batches, every channel as its own row,
the mixture's matching channel beside it; cross-fade them back together; resample back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepsampler.audio import audio_info, read_audio, resample, write_audio
from deepsampler.errors import DeepSamplerError
from deepsampler.models.registry import STEMPROVER_DIR, resolve_stemprover
from deepsampler.sources import source_from_filename
from deepsampler.stemprover.checkpoint import load_stemprover
from deepsampler.stemprover.detectors import ARTIFACTS, DetectionReport, detect_artifacts
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.segments import SegmentConfig, process_in_segments

__all__ = [  # STEMPROVER_DIR and resolve_stemprover: the registry's, kept importable from here
    "DEFAULT_STEMPROVER",
    "STEMPROVER_DIR",
    "EnhanceResult",
    "Enhancer",
    "adapter_weights",
    "default_steps",
    "read_mixture",
    "resolve_stemprover",
]

DEFAULT_STEMPROVER = "stemprover"


def default_steps(model: StemProver, metadata: Mapping) -> int:
    """The sampling steps a model runs unless told: its file's ``inference.steps`` (written by
    ``scripts/ship_stemprover.py --steps``, chosen on validation; 0 = the predictive stage
    alone), else its diffusion config's."""
    inference = metadata.get("inference", {})
    if not isinstance(inference, Mapping) or set(inference) - {"steps"}:
        raise DeepSamplerError(
            f"StemProver inference metadata {inference!r}: only 'steps' is known"
        )
    steps = inference.get("steps", model.config.diffusion.steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise DeepSamplerError(f"StemProver inference steps {steps!r}: need a whole number >= 0")
    return steps


def read_mixture(path: str | Path, sample_rate: int) -> np.ndarray:
    """The mixture file as ``[channels, samples]`` at ``sample_rate`` Hz (resampled if needed)."""
    mix, rate = read_audio(path)
    return resample(mix, rate, sample_rate) if rate != sample_rate else mix


def adapter_weights(
    adapters: str | Sequence[str] | Mapping[str, float],
    available: Sequence[str],
    report: DetectionReport | None,
) -> dict[str, float]:
    """Resolve the ``adapters`` choice: ``"auto"`` (detector weights), ``"none"``, a comma list
    or sequence of names (weight 1 each), or an explicit ``{name: weight}`` mapping."""
    if isinstance(adapters, Mapping):
        weights = {str(k): float(v) for k, v in adapters.items()}
    elif isinstance(adapters, str) and adapters == "auto":
        if report is None:
            raise ValueError("adapters='auto' needs a detection report")
        weights = {k: w for k, w in report.weights.items() if w > 0 and k in available}
    elif isinstance(adapters, str) and adapters in ("none", ""):
        weights = {}
    else:
        names = adapters.split(",") if isinstance(adapters, str) else list(adapters)
        weights = {n.strip(): 1.0 for n in names if n.strip()}
    unknown = sorted(set(weights) - set(available))
    if unknown:
        raise DeepSamplerError(
            f"unknown adapter(s) {unknown}; this model has {list(available)} "
            f"(artifact types: {list(ARTIFACTS)}); use auto, none or a comma list"
        )
    bad = [k for k, w in weights.items() if not (0.0 <= w <= 2.0)]
    if bad:
        raise DeepSamplerError(f"adapter weights must lie in [0, 2]; check {bad}")
    return weights


@dataclass
class EnhanceResult:
    """A refined stem ``[channels, samples]`` at ``sample_rate`` Hz and how it was made."""

    audio: np.ndarray
    sample_rate: int
    weights: dict[str, float]
    report: DetectionReport | None
    seconds: float
    steps: int
    segments: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def real_time_factor(self) -> float:
        return self.seconds / max(self.audio.shape[-1] / self.sample_rate, 1e-9)


class Enhancer:
    """Loads a StemProver model once and refines stems with it.

    Args:
        model: shipped name, path, or an in-memory ``StemProver``.
        steps: DDIM steps (quality/speed knob; 0: the predictive stage alone); default: the
            model's (``default_steps``).
        strength: how far the degraded latent is noised before denoising; default: the model's.
        segments: segmentation settings (lengths in seconds).
        batch_size: segments refined per forward pass.
        device: ``cpu`` or ``cuda``.
        seed: seeds the sampler's noise, so runs are repeatable.
        refiner: replaces the diffusion sampler: ``refiner(segments, mixture)`` with mono
            segments ``[n, samples]`` and their mixture segments (same shape, or None) -> refined
            segments, e.g. the benchmark's identity and regression controls; segmentation is
            unchanged.
    """

    def __init__(
        self,
        model: str | Path | StemProver = DEFAULT_STEMPROVER,
        *,
        steps: int | None = None,
        strength: float | None = None,
        segments: SegmentConfig | None = None,
        batch_size: int = 4,
        device: str = "cpu",
        seed: int = 0,
        refiner: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None,
    ) -> None:
        if isinstance(model, StemProver):
            self.model, self.metadata = model.eval(), {}
        else:
            self.model, self.metadata = load_stemprover(resolve_stemprover(model))
        if steps is None:
            steps = default_steps(self.model, self.metadata)
        if steps < 0:
            raise DeepSamplerError(f"--steps {steps}: use 0 (predictive stage only) or more")
        if steps == 0 and self.model.predictor is None:
            raise DeepSamplerError(
                "--steps 0 runs the predictive stage alone, and this StemProver model has none; "
                "use 1 or more"
            )
        if strength is not None and not 0.0 < strength <= 1.0:
            raise DeepSamplerError(f"strength {strength}: use a value in (0, 1]")
        if batch_size < 1:
            raise DeepSamplerError(f"batch size {batch_size}: use 1 or more")
        if device == "cuda" and not torch.cuda.is_available():
            raise DeepSamplerError("--device cuda: no CUDA device; use --device cpu")
        self.device = torch.device(device)
        self.model.to(self.device)
        self.steps = steps
        self.strength = strength
        self.segments = segments or SegmentConfig()
        self.batch_size = batch_size
        self.seed = seed
        self.refiner = refiner

    @property
    def sample_rate(self) -> int:
        return self.model.config.sample_rate

    def _refine_batch(
        self, pieces: list[np.ndarray], channels: int, with_mixture: bool, gen: torch.Generator
    ) -> list[np.ndarray]:
        # a piece is [channels (+ channels of mixture), n]; every stem channel is one mono row,
        # with the mixture's matching channel in a second tensor; pieces share one padded length
        length = max(p.shape[-1] for p in pieces)
        rows = len(pieces) * channels
        x = torch.zeros(rows, length)
        mix = torch.zeros(rows, length) if with_mixture else None
        for i, p in enumerate(pieces):
            x[i * channels : (i + 1) * channels, : p.shape[-1]] = torch.from_numpy(
                np.ascontiguousarray(p[:channels])
            )
            if mix is not None:
                mix[i * channels : (i + 1) * channels, : p.shape[-1]] = torch.from_numpy(
                    np.ascontiguousarray(p[channels:])
                )
        x = x.to(self.device)
        mix = None if mix is None else mix.to(self.device)
        if self.refiner is not None:
            y = self.refiner(x, mix).cpu().numpy()
        else:
            y = self.model.refine(x, self.steps, self.strength, gen, mixture=mix).cpu().numpy()
        out = []
        for i, p in enumerate(pieces):
            refined = y[i * channels : (i + 1) * channels, : p.shape[-1]].astype(np.float32)
            # the mixture rows ride along unchanged, so the piece keeps its shape
            out.append(np.concatenate([refined, p[channels:]]) if with_mixture else refined)
        return out

    def enhance(
        self,
        stem: np.ndarray,
        sample_rate: int,
        *,
        mixture: np.ndarray | None = None,
        adapters: str | Sequence[str] | Mapping[str, float] = "auto",
        progress: bool = False,
        source: str | None = None,
    ) -> EnhanceResult:
        """Refine ``stem`` ``[channels, samples]`` (or ``[samples]``) at ``sample_rate`` Hz.

        ``mixture`` (same shape and rate) lets the detectors find bleed and lost highs.
        ``source``: the stem's source, when known. A model whose predictive stage is guided by a
        separator refines only stems of that separator's sources (its domain: the guide of the
        music model makes speech worse); others come back unchanged, with ``extra["skipped"]``
        saying why.
        """
        stem = np.asarray(stem, dtype=np.float32)
        mono_in = stem.ndim == 1
        if mono_in:
            stem = stem[None]
        if stem.ndim != 2 or stem.shape[-1] == 0:
            raise DeepSamplerError(f"expected a [channels, samples] stem, got {stem.shape}")
        if not np.isfinite(stem).all():
            raise DeepSamplerError("stem contains NaN/Inf samples; pass finite audio")
        if mixture is not None:
            mixture = np.asarray(mixture, dtype=np.float32)
            mixture = mixture[None] if mixture.ndim == 1 else mixture
            if mixture.shape[-1] != stem.shape[-1]:
                raise DeepSamplerError(
                    f"mixture has {mixture.shape[-1]} samples, the stem {stem.shape[-1]}; "
                    f"pass the mixture the stem was separated from"
                )
        domain = self.domain
        source = None if source is None else source.strip().lower()
        if source is not None and domain is not None and source not in domain:
            return EnhanceResult(
                audio=(stem[0] if mono_in else stem).copy(),
                sample_rate=sample_rate,
                weights={},
                report=None,
                seconds=0.0,
                steps=0,
                extra={
                    "skipped": f"a {source} stem is outside this model's domain "
                    f"({', '.join(domain)}): left unchanged"
                },
            )
        if self.steps == 0 and mixture is None:
            raise DeepSamplerError(
                "0 sampling steps (the predictive stage alone, this run's setting) read the "
                "mixture: pass --mixture (the file the stem was separated from), or --steps 1 "
                "or more"
            )
        start = time.perf_counter()
        rate = self.sample_rate
        x = resample(stem, sample_rate, rate) if sample_rate != rate else stem
        mix = None
        if mixture is not None:
            mix = resample(mixture, sample_rate, rate) if sample_rate != rate else mixture
            if mix.shape[0] != x.shape[0]:
                mix = np.broadcast_to(mix.mean(0, keepdims=True), x.shape)
        report = None
        if self.steps == 0:  # no latent edit: no adapters to choose
            weights = {}
        else:
            if adapters == "auto":
                report = detect_artifacts(x, rate, mixture=mix)
            weights = adapter_weights(adapters, self.model.adapters, report)
        self.model.set_adapter_weights(weights)
        gen = torch.Generator().manual_seed(self.seed)
        counter = {"segments": 0}

        channels = x.shape[0]
        # the refiner reads the mixture through the control branch and/or the predictive stage
        c = self.model.config
        with_mixture = mix is not None and (c.mixture_condition or c.predictor is not None)

        def batch_fn(pieces: list[np.ndarray]) -> list[np.ndarray]:
            counter["segments"] += len(pieces)
            return self._refine_batch(pieces, channels, with_mixture, gen)

        y = process_in_segments(
            np.concatenate([x, mix]) if with_mixture else x,
            rate,
            None,
            self.segments,
            batch_size=self.batch_size,
            batch_fn=batch_fn,
            progress=progress,
        )[:channels]
        if sample_rate != rate:
            y = resample(y, rate, sample_rate)[..., : stem.shape[-1]]
        y = np.asarray(y, dtype=np.float32)
        return EnhanceResult(
            audio=y[0] if mono_in else y,
            sample_rate=sample_rate,
            weights=weights,
            report=report,
            seconds=time.perf_counter() - start,
            steps=self.steps,
            segments=counter["segments"],
        )

    @property
    def domain(self) -> tuple[str, ...] | None:
        """The sources this model refines (its predictive stage's guide's); None: any."""
        predictor = self.model.predictor
        return None if predictor is None else predictor.guide_sources

    def enhance_file(
        self,
        path: str | Path,
        output: str | Path,
        *,
        mixture: str | Path | None = None,
        adapters: str | Sequence[str] | Mapping[str, float] = "auto",
        progress: bool = False,
        source: str | None = None,
    ) -> tuple[Path, EnhanceResult]:
        """Refine the stem file ``path``; write ``output`` (a file, or a folder to hold
        ``<name>.wav``) atomically as 32-bit float WAV. Returns (written path, result).

        ``source``: as in :meth:`enhance`; None: the file's name when it names a source our
        separators write (``vocals.wav``, ``speech.wav``), else unknown."""
        path = Path(path)
        info = audio_info(path)  # one-line error for a missing or unreadable file
        stem, sr = read_audio(path)
        mix = None
        if mixture is not None:
            mix = read_mixture(mixture, sr)
            if mix.shape[-1] != stem.shape[-1]:
                raise DeepSamplerError(
                    f"{mixture}: {mix.shape[-1]} samples at {sr} Hz, but {path} has "
                    f"{stem.shape[-1]}; pass the mixture the stem was separated from"
                )
        if source is None:
            source = source_from_filename(str(path))
        result = self.enhance(
            stem, sr, mixture=mix, adapters=adapters, progress=progress, source=source
        )
        out = Path(output)
        if out.suffix.lower() not in (".wav", ".flac"):
            out = out / f"{path.stem}.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        fmt = "flac" if out.suffix.lower() == ".flac" else "wav"
        written = write_audio(out, result.audio.reshape(info.channels, -1), sr, fmt)
        return written, result
