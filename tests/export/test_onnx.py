"""ONNX export of the streaming step: onnxruntime output == PyTorch streaming over a stream."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.cli import main
from deepsampler.export.onnx_engine import OnnxStreamingSeparator
from deepsampler.models import DeepSampler, preset_config
from deepsampler.streaming import StreamingSeparator
from tests.conftest import continue_from_clone, write_tone


def run(engine, x: torch.Tensor, block: int) -> torch.Tensor:
    state, outs = engine.init_state(), []
    for i in range(0, x.shape[-1], block):
        y, state = engine.step(x[..., i : i + block], state)
        outs.append(y)
    tail, state = engine.flush(state)
    return torch.cat([*outs, tail[0] if tail.dim() == 4 else tail], dim=-1)


@pytest.mark.parametrize("lookahead,depth", [(0, 2), (2, 2)])
def test_onnx_stream_matches_pytorch(lookahead, depth):
    torch.manual_seed(3)
    model = DeepSampler(preset_config("tiny", lookahead=lookahead, depth=depth, attn_window=6))
    x = torch.rand(2, 3000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ref = run(StreamingSeparator(model), x, 317)
    got = run(OnnxStreamingSeparator.from_model(model), x, 100)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-3
    with torch.no_grad():
        offline = model(x[None])[0]
    assert (got[..., model.config.latency_samples :] - offline).abs().max().item() < 1e-3


def test_export_cli_and_stream_engine_onnx(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "onnx", "--model", str(tiny_checkpoint), "-o", str(out)]) == 0
    engine = OnnxStreamingSeparator.from_file(out)
    assert engine.config.sources == ("vocals", "drums", "bass", "other")
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.8, sr=22050)
    # issue 25: the exported file itself streams (`--model m.onnx`), as the checkpoint does
    runs = {"torch": tiny_checkpoint, "onnx": tiny_checkpoint, "onnx-file": out}
    for name, model in runs.items():
        eng = name.split("-")[0]
        args = ["stream", "--engine", eng, "--input", str(song), "--output", str(tmp_path / name)]
        assert main([*args, "--model", str(model), "-q"]) == 0
    a, _ = sf.read(tmp_path / "torch" / "song" / "drums.wav")
    for name in ("onnx", "onnx-file"):
        b, _ = sf.read(tmp_path / name / "song" / "drums.wav")
        assert np.abs(a - b).max() < 1e-3


def test_export_refuses_offline_model(tmp_path, capsys):
    from deepsampler.models import save_checkpoint

    path = save_checkpoint(
        tmp_path / "o.pt",
        DeepSampler(preset_config("tiny", causal=False)),
        training={"purpose": "test"},
    )
    assert main(["export", "onnx", "--model", str(path), "-o", str(tmp_path / "x.onnx")]) == 1
    assert "offline" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_foreign_onnx_file_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"])],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(Exception, match="not a DeepSampler streaming export"):
        OnnxStreamingSeparator.from_file(path)


@pytest.mark.parametrize("length", [1, 90, 300, 600, 1000])
def test_onnx_short_streams_with_lookahead(length):
    """Streams shorter than the look-ahead: the drain must start at frame 0, not before."""
    torch.manual_seed(4)
    model = DeepSampler(preset_config("tiny", lookahead=3, depth=2, attn_window=6))
    x = torch.rand(2, length, generator=torch.Generator().manual_seed(length)) * 2 - 1
    ref = run(StreamingSeparator(model), x, 64)
    got = run(OnnxStreamingSeparator.from_model(model), x, 64)
    assert got.shape == ref.shape == (4, 2, length + model.config.latency_samples)
    assert (got - ref).abs().max().item() < 1e-3


def test_onnx_step_equals_the_model_step_far_into_a_stream():
    """The graph is the model's frame step: rotary angles from the position in float64 inside
    it, so a day into a stream (7.5 M frames) both engines still agree."""
    torch.manual_seed(5)
    model = DeepSampler(preset_config("tiny", lookahead=1, depth=2, attn_window=6)).eval()
    engine = OnnxStreamingSeparator.from_model(model)
    ours, theirs = model.initial_frame_state(), engine.initial_frame_state(1)
    ours.position = torch.tensor([7_500_001])
    theirs.position[:] = 7_500_001  # the onnx engine's state: the graph's numpy arrays
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        spec = torch.randn(1, 2, 129, generator=gen, dtype=torch.complex64)
        with torch.inference_mode():
            a, ours = model.step_frame(spec, ours)
        b, theirs = engine.step_frame(spec.numpy(), np.array([True]), theirs)
        assert isinstance(b, np.ndarray) and all(isinstance(t, np.ndarray) for t in theirs.arrays)
        assert (a - torch.from_numpy(b)).abs().max().item() < 1e-5
    assert int(theirs.position[0]) == int(ours.position) == 7_500_011


def test_onnx_engine_keeps_numpy_state_and_clones_like_the_eager_engine():
    """The onnx engine's hop never leaves numpy (buffers, spectra and the graph's state), its
    state clones and continues identically, and blocks of one sample or of many frames give
    what the eager engine gives."""
    torch.manual_seed(4)
    model = DeepSampler(preset_config("tiny", lookahead=1, depth=2, attn_window=6)).eval()
    engine = OnnxStreamingSeparator.from_model(model)
    x = torch.rand(2, 5000, generator=torch.Generator().manual_seed(6)) * 2 - 1
    state = engine.init_state()
    pieces = []
    for lo, hi in [(0, 1), (1, 4100), (4100, 4229)]:  # one sample, many frames, one hop+
        y, state = engine.step(x[..., lo:hi], state)
        assert isinstance(y, torch.Tensor) and y.shape == (4, 2, hi - lo)
        pieces.append(y)
    arrays = [state.inbuf, state.outq, state.spectra, state.ola.acc, *state.frame.arrays]
    assert all(isinstance(a, np.ndarray) for a in arrays)
    assert state.nbytes() > state.frame.nbytes() == sum(a.nbytes for a in state.frame.arrays)
    a, a_tail = continue_from_clone(engine, state, x[..., 4229:])
    got = torch.cat([*pieces, a, a_tail[0]], dim=-1)
    ref = run(StreamingSeparator(model), x, 317)
    assert (got - ref).abs().max().item() < 1e-3
