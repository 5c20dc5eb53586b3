"""training/transfer.py: starting a model from weights trained on another frequency grid."""

from __future__ import annotations

import pytest
import torch

from deepsampler.errors import ConfigError
from deepsampler.models import DeepSampler, preset_config, save_checkpoint
from deepsampler.training.config import load_train_config
from deepsampler.training.trainer import Trainer
from deepsampler.training.transfer import (
    FREQUENCY_INDEXED,
    resample_frequency_rows,
    transfer_weights,
)
from tests.training.test_training import base_config, corpus, write_yaml  # noqa: F401


def tiny(**overrides) -> DeepSampler:
    torch.manual_seed(len(overrides))
    return DeepSampler(preset_config("tiny", **overrides))


def test_resampling_takes_the_cell_holding_each_centre():
    rows = torch.arange(4.0)[:, None]  # 4 cells of [0, 1): centres 1/8, 3/8, 5/8, 7/8
    assert resample_frequency_rows(rows, 8)[:, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # centres 1/4 and 3/4 sit on cell boundaries: the cell that starts there holds them
    assert resample_frequency_rows(rows, 2)[:, 0].tolist() == [1, 3]
    assert resample_frequency_rows(rows, 4)[:, 0].tolist() == [0, 1, 2, 3]
    # a new tensor, not a view: training the copy leaves the source alone
    out = resample_frequency_rows(rows, 4)
    out += 1
    assert rows[:, 0].tolist() == [0, 1, 2, 3]


def test_same_grid_loads_every_tensor_unchanged():
    src, dst = tiny(), tiny(causal=False)
    assert transfer_weights(src.state_dict(), dst) == []
    for name, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[name], value), name


def test_finer_grid_keeps_shared_tensors_and_resamples_the_frequency_ones():
    src, dst = tiny(), tiny(n_fft=512, hop=256, causal=False)
    resampled = transfer_weights(src.state_dict(), dst)
    assert sorted(r.split()[0] for r in resampled) == sorted(FREQUENCY_INDEXED)
    assert "input_scale 128->256" in resampled
    got, want = dst.state_dict(), src.state_dict()
    for name in got:
        if name in FREQUENCY_INDEXED:
            # a grid twice as fine: every old row is repeated twice, in order
            torch.testing.assert_close(got[name], want[name].repeat_interleave(2, dim=0))
        else:
            assert torch.equal(got[name], want[name]), name
    # the resampled model runs
    assert dst(torch.randn(1, 2, 4096)).shape == (1, 4, 2, 4096)


def test_other_mismatches_are_refused_with_the_tensor_named():
    with pytest.raises(ConfigError, match=r"latent\.split\.weight|dim"):
        transfer_weights(tiny().state_dict(), tiny(dim=64))
    with pytest.raises(ConfigError, match="missing"):
        transfer_weights(tiny().state_dict(), tiny(depth=2))


def test_init_from_a_coarser_checkpoint_trains(corpus, tmp_path):  # noqa: F811
    coarse = tiny()
    ckpt = tmp_path / "coarse.pt"
    save_checkpoint(ckpt, coarse, training={"steps": 1})
    cfg = base_config(corpus, model={"n_fft": 512, "hop": 256}, init_from=str(ckpt), steps=1)
    config = load_train_config(write_yaml(tmp_path / "c.yaml", cfg))
    trainer = Trainer(config, tmp_path / "run", progress=False)
    trainer._build()
    torch.testing.assert_close(
        trainer.model.state_dict()["encoder.0.freq.weight"],
        coarse.state_dict()["encoder.0.freq.weight"],
    )
    assert trainer.model.state_dict()["input_scale"].shape[0] == 256
    bad = base_config(corpus, model={"dim": 64}, init_from=str(ckpt), steps=1)
    with pytest.raises(ConfigError, match="init_from"):
        Trainer(load_train_config(write_yaml(tmp_path / "b.yaml", bad)), tmp_path / "r2")._build()
