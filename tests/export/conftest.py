"""Fixtures of the export tests: a private ONNX cache per test and one real export of the tiny
checkpoint, shared (exporting takes seconds even for a tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsampler.export import cache as cache_module
from deepsampler.export.onnx_engine import export_onnx, export_onnx_bytes
from deepsampler.separator import Separator


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty cache folder (never the user's ~/.cache)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DEEPSAMPLER_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_checkpoint) -> Path:
    """``tiny.onnx``: the tiny checkpoint exported with the metadata Separator gives it."""
    sep = Separator(tiny_checkpoint)
    return export_onnx(
        sep.model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", sep.export_metadata
    )


@pytest.fixture
def exports(monkeypatch, tiny_export) -> list[str]:
    """Count the cache's exports: the names of the models it exported. The tiny checkpoint's
    export is served from ``tiny_export`` (the same bytes a real export gives), others are
    really exported."""
    from deepsampler.export.onnx_engine import load_export

    known = load_export(tiny_export)
    calls: list[str] = []

    def counting(model, metadata=None):
        calls.append(metadata.name if metadata else "")
        if metadata is not None and metadata.to_props() == known.metadata.to_props():
            return known.data
        return export_onnx_bytes(model, metadata)

    monkeypatch.setattr(cache_module, "export_onnx_bytes", counting)
    return calls
