"""The training configuration: a YAML preset (``configs/<name>.yaml``) validated into
:class:`TrainConfig`, with ``key=value`` command-line overrides (dotted keys reach nested
sections: ``optim.lr=3e-4``, ``data.segment_seconds=2``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from deepsampler.config import from_dict, load_yaml, to_dict, yaml_load
from deepsampler.data.dataset import DatasetConfig
from deepsampler.detection.events import EventConfig
from deepsampler.errors import ConfigError
from deepsampler.models.config import PRESETS, ModelConfig, preset_config
from deepsampler.models.sde import SDEConfig


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up over ``warmup_steps`` then a cosine decay to
    ``lr * min_lr_ratio`` at the last step; gradients clipped to norm ``grad_clip`` (0: off)."""

    lr: float = 1e-3
    weight_decay: float = 1e-2
    betas: tuple[float, ...] = (0.9, 0.99)
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0 and weight_decay >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1 or self.grad_clip < 0:
            raise ValueError("warmup_steps >= 0, min_lr_ratio in [0, 1], grad_clip >= 0")


@dataclass(frozen=True)
class LossConfig:
    """Weights of the losses in :mod:`deepsampler.training.losses` (0 switches one off)."""

    waveform_l1: float = 1.0
    multires_stft: float = 0.0
    stft_resolutions: tuple[int, ...] = (2048, 512)
    # weight per dB of minus the SI-SDR (0.01 makes 10 dB about the size of a typical L1 term)
    si_sdr: float = 0.0

    def __post_init__(self) -> None:
        if self.waveform_l1 < 0 or self.multires_stft < 0 or self.si_sdr < 0:
            raise ValueError("loss weights must be >= 0")
        if self.waveform_l1 == 0 and self.multires_stft == 0 and self.si_sdr == 0:
            raise ValueError("at least one loss weight must be > 0")
        if self.multires_stft and (
            not self.stft_resolutions or any(n < 16 for n in self.stft_resolutions)
        ):
            raise ValueError("stft_resolutions must be FFT sizes >= 16")


@dataclass(frozen=True)
class DetectTrainConfig:
    """A detector run (``task: detect``): the siren detector network (``model``: SDEConfig
    overrides; its sample rate follows ``data.sample_rate``) on the stems of the frozen
    ``separator`` (a shipped name or checkpoint; None: the mixture alone, the baseline).

    Frame labels come from the corpus's own ``label`` stem: a frame (the network's framing) is
    positive where that stem's energy is at least ``label_floor_db`` dBFS (mean power) and
    within ``label_ratio_db`` dB of the mixture's. Each training example is, with probability
    ``negative_probability``, a negative: its ``label`` stem silenced, the mixture the rest
    (validation: every second segment). ``gate_probability``: the share of the positive
    training examples whose ``label`` stem is gated (switched on part-way, off before the
    end, or both, with ramps of 20 ms to 2 s), so that onsets fall inside the examples as they
    do in a stream (validation is never gated). ``pos_weight`` weighs positive frames in the
    binary cross-entropy. ``events``: the thresholds written into the detector checkpoint.
    """

    separator: str | None = "siren-rt"
    label: str = "siren"
    model: dict[str, Any] = field(default_factory=dict)
    negative_probability: float = 0.5
    gate_probability: float = 0.0
    label_ratio_db: float = -20.0
    label_floor_db: float = -60.0
    pos_weight: float = 1.0
    events: EventConfig = EventConfig()

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.model, dict):
            problems.append("detect.model must be a mapping of SDEConfig overrides")
        elif {"sample_rate", "use_separation"} & set(self.model):
            problems.append(
                "detect.model.sample_rate and use_separation follow data.sample_rate and "
                "detect.separator; set them there"
            )
        if not 0 <= self.negative_probability < 1:
            problems.append("negative_probability must be in [0, 1)")
        if not 0 <= self.gate_probability <= 1:
            problems.append("gate_probability must be in [0, 1]")
        if not self.pos_weight > 0:
            problems.append("pos_weight must be > 0")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    ``data_root`` is a corpus in the MUSDB18-HQ layout (``deepsampler data synth`` writes one),
    read with ``data`` (its sources, sample rate and channels also fix the model's); the model is
    the size preset ``model_preset`` with the ``model`` overrides (e.g. ``causal: false``).
    ``steps`` optimizer steps of ``batch_size`` examples per process; validation SDR on
    ``valid_split`` every ``valid_every`` steps (the best is kept), a resumable checkpoint every
    ``checkpoint_every`` steps. ``ema_decay`` > 0 keeps an exponential moving average of the
    weights, which is what validation scores and checkpoints ship. ``amp`` uses bfloat16
    autocast on CUDA (ignored on CPU). ``init_from`` starts from a shipped model's or a
    checkpoint's weights instead of random ones. ``threads`` 0 keeps torch's default.
    """

    name: str
    data_root: str
    model_preset: str = "small"
    model: dict[str, Any] = field(default_factory=dict)
    data: DatasetConfig = DatasetConfig()
    train_split: str = "train"
    valid_split: str = "valid"
    steps: int = 10_000
    batch_size: int = 4
    num_workers: int = 1
    threads: int = 0
    seed: int = 0
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    ema_decay: float = 0.999
    valid_every: int = 500
    checkpoint_every: int = 100
    log_every: int = 20
    audio_examples: int = 2
    amp: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init_from: str | None = None
    task: Literal["separate", "detect"] = "separate"
    detect: DetectTrainConfig = DetectTrainConfig()

    def __post_init__(self) -> None:
        problems = []
        if self.task == "detect" and (self.model or self.init_from):
            problems.append(
                "model and init_from set the separator; a detect run sets its network in "
                "detect.model"
            )
        if not self.name or "/" in self.name:
            problems.append(f"name must be a plain non-empty name, got {self.name!r}")
        if self.model_preset not in PRESETS:
            problems.append(f"model_preset must be one of {sorted(PRESETS)}")
        if not isinstance(self.model, dict):
            problems.append("model must be a mapping of ModelConfig overrides")
        else:
            fixed = {"sources", "sample_rate", "audio_channels"} & set(self.model)
            if fixed:
                problems.append(
                    f"model.{sorted(fixed)[0]} comes from the data section (data.sources, "
                    "data.sample_rate, data.channels); set it there"
                )
        for key in ("steps", "batch_size", "valid_every", "checkpoint_every", "log_every"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be >= 1")
        if self.num_workers < 0 or self.threads < 0 or self.audio_examples < 0:
            problems.append("num_workers, threads and audio_examples must be >= 0")
        if not 0 <= self.ema_decay < 1:
            problems.append("ema_decay must be in [0, 1) (0: no EMA)")
        if problems:
            raise ValueError("; ".join(problems))

    def model_config(self) -> ModelConfig:
        """The model this run trains: preset + overrides, with the data's sources and format."""
        return preset_config(
            self.model_preset,
            **self.model,
            sources=list(self.data.sources),
            sample_rate=self.data.sample_rate,
            audio_channels=self.data.channels,
        )

    def detector_config(self) -> SDEConfig:
        """The detector network a ``task: detect`` run trains."""
        d = self.detect
        return from_dict(
            SDEConfig,
            {
                **d.model,
                "sample_rate": self.data.sample_rate,
                "use_separation": d.separator is not None,
            },
            prefix="detect.model.",
        )

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "model.causal=false"]`` -> a nested dict; values are YAML scalars
    or lists (``data.sources=[speech,noise]``)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override {item!r}: expected key=value (e.g. optim.lr=3e-4)")
        try:
            value = yaml_load(text) if text else ""
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: value is not valid YAML") from None
        _set_dotted(tree, key, value)
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_train_config(
    path: str | Path | None, overrides: list[str] | None = None, base: dict | None = None
) -> TrainConfig:
    """Read the YAML preset at ``path`` (or start from ``base``), apply ``overrides``, validate.

    Relative ``data_root`` paths stay relative to the working directory (where the corpus was
    written), not to the YAML file.
    """
    data = dict(base or {}) if path is None else load_yaml(path)
    data = _merge(data, parse_overrides(list(overrides or [])))
    for key in ("name", "data_root"):
        if key not in data:
            raise ConfigError(f"training config needs '{key}'")
    config = from_dict(TrainConfig, data)
    try:
        if config.task == "detect":
            config.detector_config()
        else:
            config.model_config()
    except ConfigError as exc:
        raise ConfigError(
            f"{'detect.' if config.task == 'detect' else ''}model section: {exc}"
        ) from None
    return config


def config_to_yaml(config: TrainConfig) -> str:
    """The resolved config as YAML that :func:`load_train_config` reads back unchanged."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
