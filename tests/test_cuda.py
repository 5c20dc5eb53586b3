"""The CUDA paths: training with bfloat16 autocast, exact resume on the GPU, the shipped models
separating on the GPU as they do on the CPU, and streaming on the GPU equal to offline there.

CI has no GPU, so these skip there; they run on a machine that has one (the README says how).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepsampler.models import DeepSampler, load_checkpoint, preset_config
from deepsampler.separator import Separator
from deepsampler.streaming import StreamingSeparator
from deepsampler.training.config import load_train_config
from deepsampler.training.trainer import Trainer
from tests.data.test_dataset import make_corpus
from tests.training.test_training import (
    assert_same_weights,
    base_config,
    final_weights,
    train_whole_and_split,
    write_yaml,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    noise = float(np.sum((estimate - reference) ** 2))
    return 10 * math.log10(float(np.sum(reference**2)) / max(noise, 1e-30))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root, tracks=3, split="train")
    make_corpus(root, tracks=2, split="valid")
    return root


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    """4 s of stereo 'music' at 44.1 kHz: tones with vibrato, a bass line and noise bursts."""
    rng = np.random.default_rng(0)
    t = np.arange(4 * 44100) / 44100
    tones = sum(0.1 * np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5 * t)) for f in (220, 660))
    bass = 0.2 * np.sin(2 * np.pi * 55 * t)
    bursts = 0.1 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.9)
    mono = tones + bass + bursts
    return np.stack([mono, 0.8 * mono + 0.02 * rng.standard_normal(t.size)]).astype(np.float32)


def test_two_step_run_on_cuda_with_bf16_autocast(corpus, tmp_path):
    config = load_train_config(
        write_yaml(tmp_path / "c.yaml", base_config(corpus, device="cuda", amp=True))
    )
    run = tmp_path / "run"
    trainer = Trainer(config, run, progress=False)
    assert trainer.use_amp and trainer.device.type == "cuda"
    result = trainer.run()
    assert result.finished and math.isfinite(result.last_loss)
    # the checkpoint holds CPU tensors (read here with no map_location), so a machine without
    # CUDA loads and separates with it
    raw = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in raw["state_dict"].values())
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert torch.cuda.get_device_name(0) in best.training["hardware"]
    torch.manual_seed(config.seed)
    init = DeepSampler(config.model_config()).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in final_weights(run).items())


def test_bf16_autocast_forward_stays_close_to_float32():
    torch.manual_seed(0)
    model = DeepSampler(preset_config("small")).cuda().eval()
    x = 0.1 * torch.randn(2, 2, 3 * 44100, device="cuda")
    with torch.no_grad():
        full = model(x).float().cpu().numpy()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = model(x).float().cpu().numpy()
    # bf16 keeps 8 bits of mantissa (~48 dB per rounding); the model stacks many of them
    assert snr_db(half, full) > 20.0


def test_cuda_resume_equals_uninterrupted(corpus, tmp_path):
    # amp off: the check is about the saved state (RNG, data position, optimizer), not rounding
    cfg = base_config(corpus, device="cuda", amp=False, steps=6, valid_every=3, checkpoint_every=4)
    train_whole_and_split(cfg, tmp_path)
    # cuDNN's kernels may sum in another order from run to run: a tolerance, not equality
    assert_same_weights(
        final_weights(tmp_path / "whole"), final_weights(tmp_path / "split"), atol=1e-4
    )


@pytest.mark.parametrize("name", ["music4-rt", "music4-hq"])
def test_shipped_model_separates_on_cuda_as_on_cpu(name, music):
    cpu = Separator(name, device="cpu", chunk_seconds=3.0, overlap_seconds=0.5)
    gpu = Separator(name, device="cuda", chunk_seconds=3.0, overlap_seconds=0.5)
    a = cpu.separate(music, 44100)
    b = gpu.separate(music, 44100)
    for source in cpu.sources:
        assert b[source].shape == a[source].shape == music.shape
        # TF32 convolutions on the GPU round at ~1e-3: far from equal bits, far above an error
        assert snr_db(b[source], a[source]) > 40.0, source


def test_streaming_on_cuda_equals_offline_on_cuda(music):
    model = load_checkpoint(Separator("music4-rt").loaded.path).model.cuda().eval()
    sep = StreamingSeparator(model)
    x = torch.from_numpy(music[:, : 2 * 44100])[None].cuda()
    state = sep.init_state(1)
    outs = []
    for pos in range(0, x.shape[-1], 441):  # 10 ms blocks, as a live audio callback sends
        y, state = sep.step(x[..., pos : pos + 441], state)
        outs.append(y)
    tail, state = sep.flush(state)
    streamed = torch.cat([*outs, tail], -1)[..., sep.latency_samples :]
    with torch.no_grad():
        offline = model(x)
    assert streamed.device.type == "cuda"
    assert snr_db(streamed.cpu().numpy(), offline.cpu().numpy()) > 40.0
