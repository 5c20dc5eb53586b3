import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.audio import ChunkedOverlapAdd, crossfade_window


def run(proc: ChunkedOverlapAdd, x: np.ndarray, block: int) -> np.ndarray:
    outs = []
    for i in range(0, x.shape[-1], block):
        outs += proc.push(x[:, i : i + block])
    outs += proc.finish()
    return np.concatenate(outs, axis=-1) if outs else np.zeros((*x.shape[:-1], 0))


@settings(max_examples=80, deadline=None)
@given(
    length=st.integers(1, 5000),
    chunk=st.integers(1, 700),
    overlap_frac=st.floats(0, 0.95),
    block=st.integers(1, 2000),
)
def test_identity_model_returns_input(length, chunk, overlap_frac, block):
    overlap = min(chunk - 1, int(chunk * overlap_frac))
    x = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
    proc = ChunkedOverlapAdd(lambda c: c[None], chunk, overlap)  # adds a "source" axis
    y = run(proc, x, block)
    assert y.shape == (1, 2, length)
    np.testing.assert_allclose(y[0], x, atol=1e-6)
    assert proc.samples_out == length


def test_chunk_function_sees_bounded_chunks():
    sizes = []

    def fn(c):
        sizes.append(c.shape[-1])
        return c

    run(ChunkedOverlapAdd(fn, 100, 20), np.zeros((1, 1234), np.float32), 999)
    assert max(sizes) <= 100 and sum(sizes) >= 1234


def test_crossfades_between_different_chunk_outputs():
    # a function whose output depends on the chunk: a constant per call
    calls = iter(range(1, 1000))
    proc = ChunkedOverlapAdd(lambda c: np.full_like(c, next(calls)), 100, 50)
    y = run(proc, np.zeros((1, 300), np.float32), 300)[0]
    # chunks start at 0, 50, 100, ... ; away from overlaps a sample holds its one chunk's value
    assert y[0] == 1
    assert np.all(np.diff(y[50:100]) > 0)  # smooth ramp from chunk 1 to chunk 2
    assert y[-1] == pytest.approx(5.0)  # the 5th chunk (200..300) alone at the end


def test_window_is_positive():
    w = crossfade_window(10, 4)
    assert (w > 0).all() and w[4:6].tolist() == [1, 1]


def test_bad_arguments():
    with pytest.raises(ValueError):
        ChunkedOverlapAdd(lambda c: c, 10, 10)
