"""Artifact-specific LoRA adapters on the latent denoiser, through ``peft``.

One adapter per artifact type (``detectors.ARTIFACTS``) is injected into the denoiser's attention
projections and residual-block convolutions. Several adapters can be active at once, each with
its own weight (the detector's confidence): peft's per-adapter ``scaling`` is multiplied by the
weight, so weight 0 switches an adapter off and an adapter whose ``B`` is zero (fresh) changes
nothing. Adapters are saved and loaded one by one as small state dicts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

# the denoiser's module names that get LoRA: attention projections and residual-block convs
TARGET_MODULES = ["to_qkv", "to_out", "conv1", "conv2"]


def lora_layers(model: nn.Module) -> list[LoraLayer]:
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapters injected into ``model`` (in injection order)."""
    names: list[str] = []
    for layer in lora_layers(model):
        for name in layer.lora_A.keys():
            if name not in names:
                names.append(name)
    return names


def add_adapter(model: nn.Module, name: str, rank: int = 8, alpha: float | None = None) -> None:
    """Inject a fresh LoRA adapter ``name`` (``B = 0``, so the model's output is unchanged)."""
    if name in adapter_names(model):
        raise ValueError(f"adapter {name!r} already exists")
    config = LoraConfig(
        r=rank, lora_alpha=alpha if alpha is not None else rank, target_modules=TARGET_MODULES
    )
    with warnings.catch_warnings():
        # peft warns that a second adapter joins the first: that is the design here
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        inject_adapter_in_model(config, model, adapter_name=name)
    # peft activates only the newest adapter; keep every adapter active, weights decide
    set_adapter_weights(model, {n: 1.0 for n in adapter_names(model)})


def set_adapter_weights(model: nn.Module, weights: Mapping[str, float]) -> None:
    """Activate exactly the adapters in ``weights`` with those weights (others are off).

    Unknown names are an error; a weight of 0 leaves the adapter inactive.
    """
    known = adapter_names(model)
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ValueError(f"unknown adapters {unknown}; this model has {known}")
    active = [n for n in known if weights.get(n, 0.0) != 0.0]
    for layer in lora_layers(model):
        # set_adapter also flips requires_grad on; freezing is the trainer's decision
        grads = {n: [p.requires_grad for p in _adapter_params(layer, n)] for n in known}
        layer.set_adapter(active)
        for n in active:
            layer.set_scale(n, float(weights[n]))  # scaling = weight * alpha / r
        for n, flags in grads.items():
            for p, flag in zip(_adapter_params(layer, n), flags, strict=True):
                p.requires_grad_(flag)


def _adapter_params(layer: LoraLayer, name: str) -> list[torch.nn.Parameter]:
    return [*layer.lora_A[name].parameters(), *layer.lora_B[name].parameters()]


def adapter_parameters(model: nn.Module, name: str) -> list[torch.nn.Parameter]:
    """The trainable parameters (A and B matrices) of adapter ``name``."""
    params = [p for layer in lora_layers(model) for p in _adapter_params(layer, name)]
    if not params:
        raise ValueError(f"no adapter {name!r} in this model")
    return params


def adapter_state_dict(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """State dict of adapter ``name`` alone (keys as in the model)."""
    marks = (f".lora_A.{name}.", f".lora_B.{name}.")
    state = {
        k: v.detach().clone() for k, v in model.state_dict().items() if any(m in k for m in marks)
    }
    if not state:
        raise ValueError(f"no adapter {name!r} in this model")
    return state


def load_adapter(model: nn.Module, name: str, state: Mapping[str, torch.Tensor], rank: int) -> None:
    """Inject adapter ``name`` of rank ``rank`` and load its weights from ``state``."""
    add_adapter(model, name, rank=rank)
    expected = set(adapter_state_dict(model, name))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(
            f"adapter {name!r} does not fit this model: missing {missing[:3]}, extra {extra[:3]}"
        )
    model.load_state_dict(dict(state), strict=False)


def freeze_all_but(model: nn.Module, trainable: Iterable[torch.nn.Parameter]) -> None:
    """Set ``requires_grad`` on exactly the given parameters of ``model``."""
    keep = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict without adapters, keyed as before any adapter was injected."""
    state = {}
    for key, value in model.state_dict().items():
        if ".lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value.detach().clone()
    return state
