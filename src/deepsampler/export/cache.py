"""On-disk cache of ONNX exports, so the onnx streaming engine exports a model once.

Exporting the streaming step takes seconds (about 13 s for music4-rt), loading the result a
fraction of one. The export of a model is stored under ``<cache>/onnx/`` with a name keyed by
its weights and everything written into it (the checkpoint's digest, the model's name and
training record, the deepsampler, torch and onnx versions, the opset), so a new checkpoint or an
upgrade exports anew and an old entry is never taken for a new one. ``<cache>`` is
``$DEEPSAMPLER_CACHE`` if set, else ``$XDG_CACHE_HOME/deepsampler``, else
``~/.cache/deepsampler``.

The cache never makes a run fail: a damaged or unreadable entry is exported again and replaced
(atomically: temporary file beside it, then rename, so a reader sees the old file or the new
one), and where the folder cannot be written the export is used from memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from deepsampler.atomic import atomic_write_bytes
from deepsampler.errors import DeepSamplerError
from deepsampler.export.onnx_engine import (
    FORMAT_VERSION,
    GRAPH_REVISION,
    OPSET,
    ExportMetadata,
    export_onnx_bytes,
    parse_export,
    weights_digest,
)
from deepsampler.models.deepsampler import DeepSampler

ENV = "DEEPSAMPLER_CACHE"


def cache_root() -> Path:
    """``$DEEPSAMPLER_CACHE``, else ``$XDG_CACHE_HOME/deepsampler``, else
    ``~/.cache/deepsampler`` (an empty variable counts as unset, and XDG asks that a relative
    ``XDG_CACHE_HOME`` be ignored)."""
    if own := os.environ.get(ENV):
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "deepsampler"
    return Path.home() / ".cache" / "deepsampler"


def onnx_cache_dir() -> Path:
    """The folder of cached ONNX exports."""
    return cache_root() / "onnx"


def cache_key(model: DeepSampler, metadata: ExportMetadata) -> str:
    """Hex key of the export of ``model``: a hash of all its metadata (digest, name, training
    record, the deepsampler/torch/onnx versions), the opset, the export format version, the
    graph revision and the weights themselves (:func:`weights_digest`, about 4 ms for
    music4-rt): the checkpoint digest is read from the file after loading it, so a checkpoint
    replaced in between (a training run's best.pt) could otherwise file old weights under the
    new digest."""
    parts = {
        "props": metadata.to_props(),
        "weights": weights_digest(model),
        "opset": OPSET,
        "format_version": FORMAT_VERSION,
        "graph_revision": GRAPH_REVISION,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_path(model: DeepSampler, metadata: ExportMetadata) -> Path:
    """``<cache>/onnx/<name>-<key>.onnx``: the name for people listing the folder, the key for
    the lookup."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", metadata.name).strip("._-")[:40] or "model"
    return onnx_cache_dir() / f"{slug}-{cache_key(model, metadata)[:24]}.onnx"


@dataclass(frozen=True)
class CachedExport:
    """An export from the cache (or made by this call).

    ``path`` is the cache file, None where it could not be written (``note`` says why);
    ``exported`` whether this call exported (a miss) rather than read the file; ``seconds`` the
    time this call took.
    """

    data: bytes
    path: Path | None
    exported: bool
    seconds: float
    note: str = ""

    def describe(self) -> str:
        """One line for messages, e.g. ``cache .../x.onnx (exported now in 12.9 s)``."""
        if self.path is None:
            return f"exported in memory in {self.seconds:.1f} s, not cached ({self.note})"
        how = f"exported now in {self.seconds:.1f} s" if self.exported else "loaded"
        return f"cache {self.path} ({how}{'; ' + self.note if self.note else ''})"


def _read_entry(path: Path, model: DeepSampler, metadata: ExportMetadata) -> bytes | None:
    """The bytes of the cache entry at ``path`` if it is an intact export of this model with
    this metadata; None if it is missing; raises DeepSamplerError if it is damaged or foreign."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DeepSamplerError(f"unreadable ({exc.strerror or exc})") from None
    export = parse_export(data, path)
    # the key already covers this; a file that differs was damaged or put there by hand
    if export.metadata.to_props() != metadata.to_props() or export.config != model.config:
        raise DeepSamplerError("holds another model's export")
    return data


def cached_onnx(model: DeepSampler, metadata: ExportMetadata | None = None) -> CachedExport:
    """The ONNX export of causal ``model`` (``metadata``: as for
    :func:`~deepsampler.export.onnx_engine.export_onnx_bytes`), exported and stored in the cache
    on the first call and read from it after; see the module docstring for failures."""
    metadata = metadata or ExportMetadata.for_model(model)
    start = time.perf_counter()
    path = cache_path(model, metadata)
    note = ""
    try:
        data = _read_entry(path, model, metadata)
    except DeepSamplerError:
        data, note = None, "replaced a damaged entry"
    if data is not None:
        return CachedExport(data, path, exported=False, seconds=time.perf_counter() - start)
    data = export_onnx_bytes(model, metadata)
    try:
        atomic_write_bytes(data, path)
    except OSError as exc:  # read-only home, full disk, a file where the folder should be
        return CachedExport(
            data,
            None,
            exported=True,
            seconds=time.perf_counter() - start,
            note=f"cannot write {path.parent}: {exc.strerror or exc}",
        )
    return CachedExport(data, path, exported=True, seconds=time.perf_counter() - start, note=note)
