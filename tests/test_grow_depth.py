"""scripts/grow_depth.py: the deepened model separates exactly as its source, its new blocks
learn (their zeroed projections get gradients), the checkpoint says where it came from, and bad
invocations write nothing."""

from __future__ import annotations

import torch

from deepsampler.models import DeepSampler, load_checkpoint, preset_config, save_checkpoint
from tests.scripts_loader import load_script

grow_depth = load_script("grow_depth")


def _source(tmp_path):
    torch.manual_seed(0)
    model = DeepSampler(preset_config("tiny", depth=1, attn_window=6)).eval()
    # random weights stand in for trained ones: every residual branch of the source is non-zero
    path = tmp_path / "src.pt"
    save_checkpoint(path, model, training={"steps": 1}, metadata={"name": "tiny-src"})
    return model, path


def test_grown_model_equals_its_source_and_its_new_block_learns(tmp_path):
    model, _ = _source(tmp_path)
    grown = grow_depth.grow(model, 3)
    assert grown.config.depth == 3 and len(grown.latent.blocks) == 3
    assert grow_depth.same_function(model, grown) == 0.0
    new = grown.latent.blocks[2].time
    assert new.attn.out.weight.abs().sum() == 0 and new.attn.qkv.weight.abs().sum() > 0
    # the zeroed projections are where the gradient enters: one step moves them
    grown.train()
    x = torch.randn(1, model.config.audio_channels, 4000) * 0.1
    grown(x).square().mean().backward()
    assert new.attn.out.weight.grad.abs().sum() > 0
    assert grown.latent.blocks[1].band.ff.net[4].weight.grad.abs().sum() > 0


def test_cli_writes_a_loadable_checkpoint_and_refuses_bad_runs(tmp_path, capsys):
    model, src = _source(tmp_path)
    out = tmp_path / "grown.pt"
    assert grow_depth.main([str(src), "--depth", "2", "--out", str(out)]) == 0
    loaded = load_checkpoint(out)
    assert loaded.model.config.depth == 2
    assert loaded.training["grown"] == {"from": str(src), "depth": 2, "seed": 0}
    assert loaded.metadata["name"] == "tiny-src-d2"
    assert grow_depth.same_function(model, loaded.model) == 0.0
    capsys.readouterr()
    # an existing --out, or no deeper than the source: one error line, nothing (re)written
    before = out.read_bytes()
    assert grow_depth.main([str(src), "--depth", "3", "--out", str(out)]) == 2
    assert out.read_bytes() == before and "exists" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    assert grow_depth.main([str(src), "--depth", "1", "--out", str(other)]) == 2
    assert not other.exists() and "already has 1 block" in capsys.readouterr().err
