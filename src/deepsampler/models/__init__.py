"""The DeepSampler separation model, its configuration, checkpoints and shipped models."""

from deepsampler.models.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from deepsampler.models.config import PRESETS, ModelConfig, preset_config
from deepsampler.models.deepsampler import DeepSampler
from deepsampler.models.registry import ShippedModel, resolve_model, shipped, shipped_models

__all__ = [
    "PRESETS",
    "DeepSampler",
    "LoadedModel",
    "ModelConfig",
    "ShippedModel",
    "load_checkpoint",
    "preset_config",
    "resolve_model",
    "save_checkpoint",
    "shipped",
    "shipped_models",
]
