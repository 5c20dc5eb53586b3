"""The ONNX export cache: exported once, read after, self-healing, never fatal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from deepsampler.export.cache import cache_path, cache_root, cached_onnx
from deepsampler.export.onnx_engine import OnnxStreamingSeparator, load_export, parse_export
from deepsampler.models import load_checkpoint
from deepsampler.separator import Separator
from deepsampler.streaming import StreamingSeparator
from tests.export.test_onnx import run


def tiny(tiny_checkpoint):
    """The tiny checkpoint's model and the metadata its export carries."""
    sep = Separator(tiny_checkpoint)
    return sep.model, sep.export_metadata


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSAMPLER_CACHE", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"
    monkeypatch.delenv("DEEPSAMPLER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "deepsampler"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # XDG: ignore a relative one
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "deepsampler"


def test_second_call_reads_the_cache(tiny_checkpoint, exports, cache_dir):
    model, meta = tiny(tiny_checkpoint)
    first = cached_onnx(model, meta)
    assert first.exported and exports == ["tiny-test"]
    assert first.path == cache_path(model, meta) and first.path.parent == cache_dir / "onnx"
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no partials
    second = cached_onnx(model, meta)
    assert not second.exported and exports == ["tiny-test"]
    assert second.data == first.data and parse_export(second.data, "x").metadata == meta


def test_cached_engine_streams_like_torch(tiny_checkpoint, exports):
    model, meta = tiny(tiny_checkpoint)
    x = torch.rand(2, 2000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ref = run(StreamingSeparator(model), x, 256)
    for _ in range(2):
        got = run(OnnxStreamingSeparator.cached(model, meta, threads=1), x, 256)
        assert (got - ref).abs().max().item() < 1e-3
    assert exports == ["tiny-test"]


def test_key_follows_weights_and_versions(tiny_checkpoint):
    model, meta = tiny(tiny_checkpoint)
    path = cache_path(model, meta)
    assert cache_path(model, dataclasses.replace(meta, torch_version="0.0")) != path
    assert cache_path(model, dataclasses.replace(meta, package_version="9.9")) != path
    other = load_checkpoint(tiny_checkpoint).model
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert cache_path(other, meta) != path  # same digest read from the file, other weights


def test_key_follows_the_graph_revision(tiny_checkpoint, monkeypatch):
    """A cheaper graph with the same inputs and outputs replaces the cached exports."""
    import deepsampler.export.cache as cache

    model, meta = tiny(tiny_checkpoint)
    path = cache_path(model, meta)
    monkeypatch.setattr(cache, "GRAPH_REVISION", cache.GRAPH_REVISION + 1)
    assert cache_path(model, meta) != path


def test_damaged_entry_is_exported_again(tiny_checkpoint, exports):
    model, meta = tiny(tiny_checkpoint)
    path = cache_path(model, meta)
    path.parent.mkdir(parents=True)
    for garbage in (b"not onnx at all", b""):
        path.write_bytes(garbage)
        entry = cached_onnx(model, meta)
        assert entry.exported and entry.path == path and "damaged" in entry.note
        assert load_export(path).metadata == meta
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a cut file
    assert cached_onnx(model, meta).exported
    assert path.read_bytes() == good and len(exports) == 3


def test_unreadable_entry_is_exported_again(tiny_checkpoint, exports):
    model, meta = tiny(tiny_checkpoint)
    path = cache_path(model, meta)
    path.mkdir(parents=True)  # a folder where the file should be: reading fails
    entry = cached_onnx(model, meta)
    assert entry.exported and entry.path is None and parse_export(entry.data, "x")


def test_unwritable_cache_folder_exports_in_memory(monkeypatch, tmp_path, tiny_checkpoint, exports):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a file where the cache folder would be (refused even for root)
    monkeypatch.setenv("DEEPSAMPLER_CACHE", str(blocker / "cache"))
    model, meta = tiny(tiny_checkpoint)
    entry = cached_onnx(model, meta)
    assert entry.path is None and entry.exported and "cannot write" in entry.note
    assert parse_export(entry.data, "memory").metadata == meta
    engine = Separator(tiny_checkpoint).streaming_engine("onnx")
    assert "not cached" in engine.origin and len(exports) == 2
    assert blocker.read_text() == "" and Path(blocker).is_file()
