""".onnx files as models: self-describing exports that stream through Separator like the
checkpoint they came from, and one-line errors for anything else."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.errors import DeepSamplerError
from deepsampler.export.onnx_engine import (
    PREFIX,
    OnnxStreamingSeparator,
    _checksum,
    load_export,
)
from deepsampler.models import DeepSampler, load_checkpoint, preset_config
from deepsampler.separator import Separator
from deepsampler.streaming import StreamingSeparator
from deepsampler.streaming.processor import StreamProcessor
from tests.conftest import write_tone


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def rewrite_props(data: bytes, **changes: str | None) -> bytes:
    """``data`` with some deepsampler.* props replaced (None: removed) and the checksum
    recomputed, as an export with that metadata would be."""
    import onnx

    proto = onnx.load_from_string(data)
    props = {p.key: p.value for p in proto.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(PREFIX + key, None)
        else:
            props[PREFIX + key] = value
    props[PREFIX + "checksum"] = _checksum(proto, props)
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def test_onnx_separator_streams_like_the_torch_engine(tmp_path, tiny_export, tiny_checkpoint):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.6, sr=22050)
    outs = {}
    for name, model, kind in (("onnx", tiny_export, "onnx"), ("torch", tiny_checkpoint, "torch")):
        sep = Separator(model)
        engine = sep.streaming_engine(kind)
        cfg = sep.config
        sep.separate_file(
            song, tmp_path / name, processor=StreamProcessor(engine, cfg.sample_rate, cfg.hop)
        )
        outs[name] = {s: sf.read(tmp_path / name / "song" / f"{s}.wav")[0] for s in sep.sources}
    assert isinstance(Separator(tiny_checkpoint).streaming_engine("torch"), StreamingSeparator)
    for stem, ref in outs["torch"].items():
        assert outs["onnx"][stem].shape == ref.shape
        assert np.abs(outs["onnx"][stem] - ref).max() < 1e-3


def test_metadata_round_trips(tiny_export, tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    stored = torch.load(tiny_checkpoint, weights_only=True)["digest"]
    sep = Separator(tiny_export)
    meta = sep.export_metadata
    assert meta == Separator(tiny_checkpoint).export_metadata
    assert meta.name == sep.name == "tiny-test"
    assert meta.parameters == sep.num_parameters == loaded.model.num_parameters()
    assert meta.trained and sep.trained and meta.training == loaded.training
    assert (meta.digest, meta.digest_source) == (stored, "checkpoint")
    assert meta.model_metadata == loaded.metadata
    from deepsampler import __version__

    assert meta.package_version == __version__ and meta.torch_version == torch.__version__
    assert sep.config == loaded.model.config and sep.model is None
    assert "0.03 M parameters" in sep.describe() and "model tiny-test" in sep.describe()
    engine = OnnxStreamingSeparator.from_file(tiny_export)
    assert engine.metadata == meta and engine.kind == "onnx" and engine.origin == str(tiny_export)
    assert sep.streaming_engine().kind == "onnx"  # auto, an .onnx file


def test_in_memory_model_export_hashes_its_weights():
    from deepsampler.export.onnx_engine import ExportMetadata, weights_digest

    model = DeepSampler(preset_config("tiny"))
    meta = Separator(model, allow_untrained=True).export_metadata
    assert (meta.digest, meta.digest_source) == (weights_digest(model), "weights")
    assert not meta.trained
    assert meta == ExportMetadata.from_props(meta.to_props())


def test_untrained_onnx_refused_unless_allowed(tmp_path, tiny_export):
    path = tmp_path / "untrained.onnx"
    path.write_bytes(rewrite_props(tiny_export.read_bytes(), training="null"))
    with pytest.raises(DeepSamplerError, match="untrained") as exc:
        Separator(path)
    one_line_error(exc)
    assert not Separator(path, allow_untrained=True).trained


def test_text_file_named_onnx_is_one_line_error(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are not weights\n")
    for load in (Separator, OnnxStreamingSeparator.from_file):
        with pytest.raises(DeepSamplerError, match="not an ONNX file") as exc:
            load(path)
        assert "it is text" in one_line_error(exc)


def test_onnx_without_deepsampler_metadata_is_one_line_error(tmp_path):
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
    with pytest.raises(DeepSamplerError, match="not a DeepSampler streaming export") as exc:
        Separator(path)
    assert "export onnx" in one_line_error(exc)


def test_older_export_without_metadata_asks_for_a_new_one(tmp_path, tiny_export):
    path = tmp_path / "old.onnx"
    path.write_bytes(rewrite_props(tiny_export.read_bytes(), format=None, format_version=None))
    with pytest.raises(DeepSamplerError, match="older deepsampler") as exc:
        Separator(path)
    one_line_error(exc)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_export_is_one_line_error(tmp_path, tiny_export, damage):
    data = bytearray(tiny_export.read_bytes())
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    else:  # one byte in the middle of the weights: parses, but no longer matches its checksum
        data[len(data) // 2] ^= 0x01
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(data))
    with pytest.raises(DeepSamplerError, match="damaged") as exc:
        load_export(path)
    one_line_error(exc)


def test_offline_calls_on_an_onnx_model_say_what_to_do(tmp_path, tiny_export):
    sep = Separator(tiny_export)
    with pytest.raises(DeepSamplerError, match="streaming step only") as exc:
        sep.separate(np.zeros((2, 4000), np.float32), 22050)
    assert "deepsampler stream" in one_line_error(exc) and ".pt" in str(exc.value)
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.3)
    with pytest.raises(DeepSamplerError, match="streaming step only"):
        sep.separate_file(song, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DeepSamplerError, match="onnx engine only") as exc:
        sep.streaming_engine("torch")
    one_line_error(exc)


def test_streaming_engine_refuses_offline_models_and_unknown_engines(tiny_checkpoint):
    offline = Separator(DeepSampler(preset_config("tiny", causal=False)), allow_untrained=True)
    for engine in ("auto", "torch", "onnx"):
        with pytest.raises(DeepSamplerError, match="offline") as exc:
            offline.streaming_engine(engine)
        one_line_error(exc)
    with pytest.raises(DeepSamplerError, match="use auto, torch or onnx"):
        Separator(tiny_checkpoint).streaming_engine("tensorrt")


def test_auto_engine_without_onnx_packages_is_torch(monkeypatch, tiny_checkpoint, exports):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    assert isinstance(Separator(tiny_checkpoint).streaming_engine(), StreamingSeparator)
    assert exports == []


def test_auto_engine_is_onnx_from_the_cache(tiny_checkpoint, exports, cache_dir):
    engine = Separator(tiny_checkpoint).streaming_engine("auto", threads=1)
    assert engine.kind == "onnx" and exports == ["tiny-test"]
    assert str(cache_dir) in engine.origin and "exported now" in engine.origin
    again = Separator(tiny_checkpoint).streaming_engine("onnx")
    assert exports == ["tiny-test"] and again.origin.endswith("(loaded)")
    assert json.loads(json.dumps(again.metadata.as_dict()))["trained"] is True
