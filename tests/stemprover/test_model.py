"""StemProver networks: zero-conv control, LoRA adapters, latent edits, sampling, persistence."""

from __future__ import annotations

import pytest
import torch

from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.autoencoder import SpectrogramAutoencoder
from deepsampler.stemprover.checkpoint import load_stemprover, save_stemprover
from deepsampler.stemprover.diffusion import (
    DiffusionConfig,
    diffusion_loss,
    predicted_clean,
    refinement_prediction,
    sample,
)
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.refiners import IdentityRefiner, RegressionNet, RegressionRefiner

from .conftest import RATE


def _inputs(model: StemProver, n: int = 2, samples: int = 4000):
    g = torch.Generator().manual_seed(1)
    wave = 0.1 * torch.randn(n, samples, generator=g)
    feats, phase, z = model.analyse(wave)
    x = torch.randn(z.shape, generator=g)
    t = torch.tensor([10, 700])[:n]
    return wave, feats, phase, z, x, t


def _perturb(model: StemProver, name: str, scale: float = 0.2) -> None:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in lora.adapter_parameters(model.denoiser, name):
            p.add_(scale * torch.randn(p.shape, generator=g))


def test_autoencoder_shapes_and_exact_size() -> None:
    ae = SpectrogramAutoencoder(2, 4, 8)
    x = torch.randn(3, 2, 129, 63)
    z = ae.encode(x)
    assert z.shape == (3, 4, 33, 16)
    assert ae.decode(z, 129, 63).shape == x.shape
    with pytest.raises(ValueError, match="expected features"):
        ae.encode(torch.randn(3, 1, 129, 63))


@torch.no_grad()
def test_fresh_control_and_zero_lora_leave_the_base_output(tiny_model: StemProver) -> None:
    _, _, phase, z, x, t = _inputs(tiny_model)
    base = tiny_model.denoiser(x, t)
    control = tiny_model.condition(z, phase)
    assert all(torch.count_nonzero(c) == 0 for c in control)
    assert torch.equal(tiny_model.denoiser(x, t, control), base)
    tiny_model.add_adapter("bleed")
    tiny_model.add_adapter("band_limit")
    tiny_model.set_adapter_weights({"bleed": 1.0, "band_limit": 0.7})
    torch.testing.assert_close(tiny_model.denoiser(x, t, control), base, rtol=0, atol=1e-6)


@torch.no_grad()
def test_switching_and_weighting_adapters(tiny_model: StemProver) -> None:
    _, _, _, _, x, t = _inputs(tiny_model)
    base = tiny_model.denoiser(x, t)
    tiny_model.add_adapter("bleed")
    tiny_model.add_adapter("phase_smear")
    _perturb(tiny_model, "bleed")
    tiny_model.set_adapter_weights({"bleed": 1.0})
    with_bleed = tiny_model.denoiser(x, t)
    assert (with_bleed - base).abs().max() > 1e-3
    # an untouched adapter, a zero weight, or no adapters: the base output
    for weights in ({"phase_smear": 1.0}, {"bleed": 0.0}, {}):
        tiny_model.set_adapter_weights(weights)
        torch.testing.assert_close(tiny_model.denoiser(x, t), base, rtol=0, atol=1e-6)
    # a weight scales exactly that adapter's low-rank update, layer by layer
    layer = tiny_model.denoiser.mid_attn.time_attn.to_qkv
    h = torch.randn(5, layer.in_features)
    tiny_model.set_adapter_weights({})
    off = layer(h)
    tiny_model.set_adapter_weights({"bleed": 1.0})
    one = layer(h)
    tiny_model.set_adapter_weights({"bleed": 0.5, "phase_smear": 1.0})
    torch.testing.assert_close(layer(h) - off, 0.5 * (one - off), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown adapters"):
        tiny_model.set_adapter_weights({"reverb": 1.0})


def test_adapter_weighting_keeps_requires_grad(tiny_model: StemProver) -> None:
    tiny_model.add_adapter("bleed")
    params = lora.adapter_parameters(tiny_model.denoiser, "bleed")
    lora.freeze_all_but(tiny_model, params)
    tiny_model.set_adapter_weights({})
    tiny_model.set_adapter_weights({"bleed": 1.0})
    assert all(p.requires_grad for p in params)
    assert not any(p.requires_grad for p in tiny_model.control.parameters())


@torch.no_grad()
def test_save_and_load_round_trip(tiny_model: StemProver, tmp_path) -> None:
    _, _, phase, z, x, t = _inputs(tiny_model)
    tiny_model.add_adapter("bleed")
    tiny_model.add_adapter("musical_noise", rank=3)
    _perturb(tiny_model, "bleed")
    _perturb(tiny_model, "musical_noise")
    path = save_stemprover(tmp_path / "sp.pt", tiny_model, {"note": "x"})
    loaded, extra = load_stemprover(path)
    assert extra == {"note": "x"}
    assert loaded.adapter_ranks == {"bleed": 2, "musical_noise": 3}
    for weights in ({}, {"bleed": 1.0}, {"bleed": 0.3, "musical_noise": 1.0}):
        tiny_model.set_adapter_weights(weights)
        loaded.set_adapter_weights(weights)
        control = tiny_model.condition(z, phase)
        torch.testing.assert_close(
            loaded.denoiser(x, t, loaded.condition(z, phase)), tiny_model.denoiser(x, t, control)
        )
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(Exception):  # noqa: B017 (torch raises an UnpicklingError)
        load_stemprover(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_stemprover(tmp_path / "missing.pt")


@torch.no_grad()
def test_unchanged_latent_returns_the_input(tiny_model: StemProver) -> None:
    wave, feats, _, z, _, _ = _inputs(tiny_model)
    out = tiny_model.apply_latent_edit(feats, z, z, wave.shape[-1])
    torch.testing.assert_close(out, wave, rtol=0, atol=1e-5)
    torch.testing.assert_close(IdentityRefiner(RATE)(wave), wave)


@torch.no_grad()
def test_refine_is_seeded_and_computes_control_once(tiny_model: StemProver) -> None:
    wave = _inputs(tiny_model)[0]
    calls = []
    hook = tiny_model.control.register_forward_hook(lambda *a: calls.append(1))
    a = tiny_model.refine(wave, steps=3, generator=torch.Generator().manual_seed(0))
    hook.remove()
    assert len(calls) == 1  # the condition's residuals are reused at all 3 steps
    b = tiny_model.refine(wave, steps=3, generator=torch.Generator().manual_seed(0))
    assert a.shape == wave.shape and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="mono segments"):
        tiny_model.refine(wave[None])


@torch.no_grad()
def test_sampler_steps_and_strength() -> None:
    cfg = DiffusionConfig(steps=3, strength=0.5)
    calls: list[int] = []

    class Probe(torch.nn.Module):
        def forward(self, x, t, control=None):
            calls.append(int(t[0]))
            return torch.zeros_like(x)

    start = torch.randn(1, 2, 4, 4)
    sample(Probe(), start, None, cfg, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 3 and calls == sorted(calls, reverse=True)
    assert 400 <= calls[0] <= 600  # strength 0.5 starts half-way into the schedule
    calls.clear()
    sample(Probe(), start, None, cfg, steps=2, strength=1.0)
    assert len(calls) == 2 and calls[0] > 900
    with pytest.raises(ValueError):
        sample(Probe(), start, None, cfg, steps=0)
    with pytest.raises(ValueError):
        DiffusionConfig(strength=0.0)


def test_diffusion_loss_trains_the_denoiser(tiny_model: StemProver) -> None:
    """A few steps on one fixed latent lower the v-prediction loss (the objective is wired)."""
    torch.manual_seed(0)
    z0 = torch.randn(4, 4, 9, 8)
    cfg = tiny_model.config.diffusion
    opt = torch.optim.Adam(tiny_model.denoiser.parameters(), lr=3e-3)

    def eval_loss() -> float:
        with torch.no_grad():
            return float(
                sum(
                    diffusion_loss(
                        tiny_model.denoiser, z0, cfg, generator=torch.Generator().manual_seed(s)
                    )
                    for s in range(4)
                )
            )

    before = eval_loss()
    for s in range(80):
        loss = diffusion_loss(
            tiny_model.denoiser, z0, cfg, generator=torch.Generator().manual_seed(s)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.85 * before


@torch.no_grad()
def test_regression_refiner_same_size_and_shape(tiny_model: StemProver) -> None:
    net = RegressionNet(tiny_model)
    size = sum(p.numel() for p in net.parameters())
    diffusion = sum(p.numel() for p in tiny_model.denoiser.parameters()) + sum(
        p.numel() for p in tiny_model.control.parameters()
    )
    assert size == diffusion
    wave = _inputs(tiny_model)[0]
    assert RegressionRefiner(tiny_model, net)(wave).shape == wave.shape


@torch.no_grad()
def test_mixture_reaches_the_control_and_the_stem_stands_in_without_one(tiny_model) -> None:
    assert tiny_model.config.mixture_condition
    wave, _, _, _, _, _ = _inputs(tiny_model)
    g = torch.Generator().manual_seed(5)
    for p in tiny_model.control.parameters():
        p.add_(0.1 * torch.randn(p.shape, generator=g))
    mix = wave + 0.1 * torch.randn(wave.shape, generator=g)
    _, phase, z = tiny_model.analyse(wave)
    z_stem = tiny_model.mixture_latent(z, tiny_model.features(wave[:, None]))
    pairs = zip(tiny_model.condition(z, phase), tiny_model.condition(z, phase, z_stem), strict=True)
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    seed = [torch.Generator().manual_seed(0) for _ in range(2)]
    alone = tiny_model.refine(wave, 2, 0.5, seed[0])
    other = tiny_model.refine(wave, 2, 0.5, seed[1], mixture=mix)
    assert not torch.allclose(alone, other, atol=1e-5)
    with pytest.raises(ValueError, match="mixture segments"):
        tiny_model.refine(wave, 1, 0.5, mixture=wave[:, :-1])
    with pytest.raises(ValueError, match="context channels"):
        tiny_model.control(z, phase, None)


def test_predicted_clean_inverts_the_velocity() -> None:
    cfg = DiffusionConfig()
    sched = cfg.scheduler()
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(4, 3, 5, 6, generator=g)
    noise = torch.randn(z0.shape, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    noisy = sched.add_noise(z0, noise, t)
    v = sched.get_velocity(z0, noise, t)
    torch.testing.assert_close(predicted_clean(cfg, noisy, v, t), z0, rtol=1e-4, atol=1e-4)


def test_refinement_rows_start_where_the_sampler_starts() -> None:
    cfg = DiffusionConfig(strength=0.3)
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x, t, control=None):
            seen["x"], seen["t"] = x, t
            return torch.zeros_like(x)

    z0 = torch.zeros(64, 2, 3, 3)
    z_deg = torch.ones(64, 2, 3, 3)
    g = torch.Generator().manual_seed(0)
    v_loss, x0, from_deg, weight = refinement_prediction(Spy(), z0, z_deg, cfg, None, 1.0, g)
    assert from_deg.all() and float(v_loss) == 0.0
    top = round(0.3 * 999)
    assert int(seen["t"].max()) <= top and int(seen["t"].min()) >= top // 2
    # weights 1 / (1 - alpha_bar): more for less noise
    order = torch.argsort(seen["t"])
    assert torch.all(weight[order][:-1] >= weight[order][1:]) and float(weight.min()) > 1
    # zero velocity: the implied clean latent is sqrt(a) * x_t, whose mean follows the degraded
    a = cfg.scheduler().alphas_cumprod[seen["t"]].view(-1, 1, 1, 1)
    torch.testing.assert_close(x0, a.sqrt() * seen["x"])
    assert float(seen["x"].mean()) > 0.5
    _, _, from_deg, _ = refinement_prediction(Spy(), z0, z_deg, cfg, None, 0.0, g)
    assert not from_deg.any()
