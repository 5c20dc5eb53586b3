import pytest
import torch

from deepsampler.errors import ConfigError
from deepsampler.models import PRESETS, DeepSampler, ModelConfig, preset_config
from deepsampler.training.losses import multisrc_l1_waveform


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("causal", [True, False])
def test_output_shape_every_preset(name, causal):
    cfg = preset_config(name, causal=causal)
    model = DeepSampler(cfg).eval()
    samples = 3 * cfg.hop + 17  # not a multiple of the hop
    with torch.no_grad():
        y = model(torch.randn(2, cfg.audio_channels, samples))
    assert y.shape == (2, len(cfg.sources), cfg.audio_channels, samples)
    params = model.num_parameters()
    print(f"{name} causal={causal}: {params:,} parameters, latency {cfg.latency_ms:.1f} ms")
    assert params > 1000


def test_any_set_of_sources_and_mono():
    cfg = preset_config("tiny", sources=["speech", "noise", "siren"], audio_channels=1)
    y = DeepSampler(cfg)(torch.randn(1, 1, 1000))
    assert y.shape == (1, 3, 1, 1000)


def test_softmax_masks_sum_to_mixture():
    cfg = preset_config("tiny", mask_activation="softmax")
    model = DeepSampler(cfg).eval()
    x = torch.randn(1, 2, 4000)
    with torch.no_grad():
        y = model(x)
    assert (y.sum(1) - x).abs().max() < 1e-4


def test_silence_in_silence_out():
    model = DeepSampler(preset_config("tiny")).eval()
    with torch.no_grad():
        y = model(torch.zeros(1, 2, 5000))
    assert y.abs().max().item() == 0.0


@pytest.mark.parametrize("lookahead,depth", [(0, 1), (0, 2), (1, 1), (1, 2), (2, 3)])
def test_causal_model_reach_equals_reported_latency(lookahead, depth):
    """Output sample n depends on input up to n + latency and no further (gradient test, as
    audiocraft), and the bound is tight to within one hop; n off the hop grid, where the Hann
    window is non-zero at every frame edge that matters."""
    cfg = preset_config("tiny", causal=True, lookahead=lookahead, depth=depth)
    torch.manual_seed(0)
    model = DeepSampler(cfg).eval()
    x = torch.randn(1, 2, 40 * cfg.hop, requires_grad=True)
    n = 20 * cfg.hop + cfg.hop // 2
    model(x)[..., n].sum().backward()
    grad = x.grad.abs().sum(dim=(0, 1))
    latency = cfg.latency_samples
    assert grad[n + latency :].max().item() == 0.0
    assert grad[n + latency - cfg.hop : n + latency].sum().item() > 0
    assert grad[:n].sum().item() > 0


def test_offline_model_sees_the_future():
    cfg = preset_config("tiny", causal=False)
    torch.manual_seed(0)
    model = DeepSampler(cfg).eval()
    x = torch.randn(1, 2, 40 * cfg.hop, requires_grad=True)
    model(x)[..., 5 * cfg.hop].sum().backward()
    assert x.grad[..., 30 * cfg.hop :].abs().sum().item() > 0


def test_attention_window_bounds_the_past():
    cfg = preset_config("tiny", attn_window=4, depth=1)
    torch.manual_seed(0)
    model = DeepSampler(cfg).eval()
    frames = 60
    x = torch.randn(1, 2, frames * cfg.hop, requires_grad=True)
    n = 50 * cfg.hop
    model(x)[..., n].sum().backward()
    grad = x.grad.abs().sum(dim=(0, 1))
    # receptive field: attention window + conv kernels (encoder and decoder) + STFT window
    reach = (cfg.attn_window + 2 * len(cfg.enc_channels) * (cfg.time_kernel - 1) + 2) * cfg.hop
    assert grad[: n - reach - cfg.n_fft].max().item() == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"freq_strides": [3, 4]},
        {"hop": 999},
        {"dim": 30},
        {"sources": []},
        {"lookahead": 2, "causal": False},
        {"n_fft": 200},
    ],
)
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        preset_config("tiny", **bad)


def test_unknown_key_and_preset():
    with pytest.raises(ConfigError, match="unknown key"):
        preset_config("tiny", widht=3)
    with pytest.raises(ConfigError, match="unknown model preset"):
        preset_config("huge")


def test_latency_reports_lookahead():
    cfg = ModelConfig(lookahead=2)
    assert cfg.latency_samples == cfg.n_fft + 2 * cfg.hop
    assert round(ModelConfig().latency_ms, 1) == 23.2


def test_tiny_model_overfits_one_mixture():
    """Loss falls by >= 90% within a few hundred steps on one synthetic mixture."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    cfg = preset_config("tiny", sources=["low", "high"], audio_channels=1)
    sr, n = cfg.sample_rate, cfg.sample_rate // 2
    t = torch.arange(n) / sr
    low = 0.5 * torch.sin(2 * torch.pi * 220 * t) * (1 + 0.5 * torch.sin(2 * torch.pi * 3 * t))
    high = 0.3 * torch.sign(torch.sin(2 * torch.pi * 7 * t)) * torch.sin(2 * torch.pi * 3000 * t)
    ref = torch.stack([low, high])[None, :, None]  # [b, s, c, n]
    mix = ref.sum(1)
    model = DeepSampler(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = multisrc_l1_waveform(model(mix), ref)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] <= 0.1 * losses[0]:
            break
    assert min(losses) <= 0.1 * losses[0], (losses[0], losses[-10:])
    print(f"overfit: loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} steps")
