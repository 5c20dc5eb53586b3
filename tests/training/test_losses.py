"""Training losses against references and their invariances."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.evaluation.metrics import si_sdr
from deepsampler.training.losses import multisrc_neg_si_sdr, segment_si_sdr


def stems(seed: int, shape=(3, 2, 1, 800)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(shape, generator=g)
    est = ref + 0.3 * torch.randn(shape, generator=g) + 0.05
    return est, ref


def test_segment_si_sdr_equals_the_evaluation_metric():
    est, ref = stems(0)
    ours = segment_si_sdr(est.double(), ref.double())  # [b, s]
    for b in range(ref.shape[0]):
        expected = si_sdr(ref[b].double().numpy(), est[b].double().numpy())
        np.testing.assert_allclose(ours[b].numpy(), expected, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.01, 100.0), st.floats(-1.0, 1.0), st.integers(0, 1000))
def test_si_sdr_ignores_the_estimates_scale_and_offset(scale, offset, seed):
    est, ref = stems(seed)
    base = segment_si_sdr(est.double(), ref.double())
    moved = segment_si_sdr(scale * est.double() + offset, ref.double())
    torch.testing.assert_close(moved, base, atol=1e-6, rtol=1e-6)


def test_neg_si_sdr_scores_loud_stems_only_and_has_finite_gradients():
    est, ref = stems(1)
    ref[:, 1] = 0.0  # a silent source in every example: left out
    est.requires_grad_(True)
    loss = multisrc_neg_si_sdr(est, ref)
    expected = -segment_si_sdr(est, ref)[:, [0]].mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(est.grad).all() and est.grad[:, 1].abs().max() == 0
    silent = torch.zeros_like(ref)
    assert multisrc_neg_si_sdr(est, silent).item() == 0.0
    # a better estimate has a lower loss
    assert multisrc_neg_si_sdr(ref + 0.01, ref) < multisrc_neg_si_sdr(est.detach(), ref)
