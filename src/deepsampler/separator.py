"""The public facade: ``Separator`` loads a model and separates arrays or files.

Long inputs are processed in overlapping chunks outside the model (``audio.chunking``) and files
are read, resampled and written block by block, so memory stays bounded whatever the length.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from deepsampler.audio import (
    AtomicAudioWriter,
    ChunkedOverlapAdd,
    StreamResampler,
    audio_info,
    commit_all,
    created_dirs,
    ensure_writable_dir,
    fit_channels,
    iter_blocks,
    remove_empty_dirs,
)
from deepsampler.errors import DeepSamplerError, OutputError
from deepsampler.models import DeepSampler, LoadedModel, load_checkpoint, resolve_model

if TYPE_CHECKING:  # the engines are imported where they are used
    from deepsampler.export.onnx_engine import ExportMetadata, OnnxExport, OnnxStreamingSeparator
    from deepsampler.streaming import StreamingSeparator

DEFAULT_MODEL = "music4-rt"


class BlockProcessor(Protocol):
    """Separates a stream at the model's rate: ``push([c, n]) -> [[s, c, m], ...]`` returns what
    is finished, ``finish()`` the rest; in total as many samples as were pushed."""

    def push(self, x: np.ndarray) -> list[np.ndarray]: ...

    def finish(self) -> list[np.ndarray]: ...


@dataclass
class SeparationResult:
    """What :meth:`Separator.separate_file` wrote, and how long it took."""

    track: str
    stems: dict[str, Path]
    audio_seconds: float
    compute_seconds: float
    clipped_samples: int = 0

    @property
    def real_time_factor(self) -> float:
        """Compute time / audio duration (below 1 is faster than real time)."""
        return self.compute_seconds / max(self.audio_seconds, 1e-9)


def _resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeepSamplerError(f"unknown device {device!r}; use cpu or cuda") from None
    if dev.type not in ("cpu", "cuda"):
        raise DeepSamplerError(f"unsupported device {device!r}; use cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeepSamplerError(f"device {device!r}: CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise DeepSamplerError(
            f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here"
        )
    return dev


def inference_defaults(metadata: dict) -> dict:
    """A model's own offline inference options, ``{"shifts": int, "flip": bool}``, from its
    checkpoint's ``metadata["inference"]`` (written by ``scripts/ship_model.py --shifts/--flip``
    for a model whose validation gained from test-time averaging); one plain pass where it names
    none. Explicit arguments to :class:`Separator` override them. Anything else there (other
    keys, a shifts that is not a whole number >= 1, a flip that is not a bool) is refused."""
    given = metadata.get("inference")
    given = {} if given is None else given
    if isinstance(given, dict) and not set(given) - {"shifts", "flip"}:
        shifts, flip = given.get("shifts", 1), given.get("flip", False)
        if type(shifts) is int and shifts >= 1 and isinstance(flip, bool):
            return {"shifts": shifts, "flip": flip}
    raise DeepSamplerError(
        f"model metadata 'inference' {given!r}: expected {{'shifts': a whole number >= 1, "
        "'flip': true or false}"
    )


def default_passes(metadata: dict, audio_channels: int) -> int:
    """Forward passes per chunk of a model's default offline inference (flip only counts for a
    stereo model, as :class:`Separator` applies it)."""
    opts = inference_defaults(metadata)
    return opts["shifts"] * (2 if opts["flip"] and audio_channels > 1 else 1)


class Separator:
    """Separate mixtures with a DeepSampler model.

    Args:
        model: a shipped model's name, a checkpoint path, a :class:`DeepSampler` instance, or
            a .onnx file written by ``deepsampler export onnx``: that holds the streaming step
            only, so it streams (:meth:`streaming_engine`, onnx engine) but does not separate
            offline, and ``model`` is None; its config and what ``describe`` and ``trained``
            need come from the file's metadata.
        device: ``cpu`` or ``cuda[:N]``.
        chunk_seconds: length of the chunks a long input is cut into.
        overlap_seconds: cross-fade between consecutive chunks.
        allow_untrained: accept a checkpoint with no training record (its output is not a
            separation; for testing the pipeline only).
        downmix: average inputs with more channels than the model takes instead of refusing them.
        wiener: multichannel Wiener post-filter (``audio.wiener``) applied to every chunk of an
            offline separation: EM iterations (0 = soft mask only), or -1 = off (default:
            on the corpus's validation split, with the first music4-hq (896-sample window), it
            moved mean SDR by +0.18 dB as a soft mask and -0.04 / -0.25 dB with 1 / 2 EM
            iterations, so it is not on by default).
        shifts: offline test-time averaging over frame grids: the chunk is separated ``shifts``
            times, delayed by ``k * hop / shifts`` samples (k = 0 .. shifts-1) so every pass
            cuts the STFT frames elsewhere, and the aligned outputs are averaged (1 = one pass).
            ``None``: the model's own default (:func:`inference_defaults`; 1 for a model that
            names none).
        flip: also separate the channel-swapped input (stereo models) and average it back in;
            with ``shifts``, ``2 * shifts`` passes in all. Both cost that many times the compute
            and apply to offline separation only (the streaming engines run one pass).
            ``None``: the model's own default (``False`` for a model that names none).
    """

    def __init__(
        self,
        model: str | Path | DeepSampler = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        chunk_seconds: float = 10.0,
        overlap_seconds: float = 1.0,
        allow_untrained: bool = False,
        downmix: bool = False,
        wiener: int = -1,
        shifts: int | None = None,
        flip: bool | None = None,
    ) -> None:
        # an exported .onnx file: the streaming step and what its metadata says of the model
        self.onnx: OnnxExport | None = None
        if isinstance(model, DeepSampler):
            loaded = LoadedModel(model.eval(), Path("<in-memory>"), training=None)
            self.name = "<in-memory>"
        elif (path := resolve_model(model)).suffix.lower() == ".onnx":
            from deepsampler.export.onnx_engine import load_export

            self.onnx = load_export(path)
            meta = self.onnx.metadata
            # no torch model: the file holds the streaming step only (self.model is None)
            loaded = LoadedModel(
                None,  # type: ignore[arg-type]
                path,
                training=meta.training,
                metadata=dict(meta.model_metadata),
                package_version=meta.package_version,
            )
            self.name = meta.name or path.stem
        else:
            loaded = load_checkpoint(path)
            self.name = loaded.metadata.get("name", loaded.path.stem)
        if not loaded.trained and not allow_untrained:
            raise DeepSamplerError(
                f"model {self.name}: has untrained weights, so its output would not be a "
                f"separation; pass a trained model (or allow_untrained / --allow-untrained "
                f"to test the pipeline)"
            )
        if chunk_seconds <= 0 or not 0 <= overlap_seconds < chunk_seconds:
            raise DeepSamplerError(
                f"need chunk_seconds > 0 and 0 <= overlap_seconds < chunk_seconds, got "
                f"{chunk_seconds} and {overlap_seconds}"
            )
        self.loaded = loaded
        self.device = _resolve_device(device)
        self.model: DeepSampler | None = None
        if self.onnx is not None:
            self.config = self.onnx.config
        else:
            self.model = loaded.model.to(self.device).eval()
            self.config = self.model.config
        self._export_metadata: ExportMetadata | None = None  # built on first use
        self.downmix = downmix
        if wiener < -1:
            raise DeepSamplerError(f"wiener {wiener}: use -1 (off), 0 (soft mask) or more")
        self.wiener = wiener
        defaults = inference_defaults(loaded.metadata)
        shifts = defaults["shifts"] if shifts is None else shifts
        flip = defaults["flip"] if flip is None else flip
        if not isinstance(shifts, int) or shifts < 1:
            raise DeepSamplerError(f"shifts {shifts!r}: use a whole number >= 1 (1 = one pass)")
        if shifts > self.config.hop:
            raise DeepSamplerError(
                f"shifts {shifts}: at most the model's hop ({self.config.hop} samples), "
                "beyond it two passes would share a frame grid"
            )
        self.shifts = shifts
        self.flip = bool(flip) and self.config.audio_channels > 1
        self.chunk = max(1, round(chunk_seconds * self.sample_rate))
        self.overlap = min(self.chunk - 1, round(overlap_seconds * self.sample_rate))

    # ---- what the model is -----------------------------------------------------------------
    @property
    def sources(self) -> tuple[str, ...]:
        return self.config.sources

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def trained(self) -> bool:
        return self.loaded.trained

    @property
    def num_parameters(self) -> int:
        """The model's parameter count (from the file's metadata for an .onnx model)."""
        if self.model is None:
            return self.export_metadata.parameters
        return self.model.num_parameters()

    @property
    def export_metadata(self) -> ExportMetadata:
        """What an ONNX export of this model records of it (name, size, training record, the
        checkpoint's digest or, for an in-memory model, a SHA-256 of its weights, versions):
        the file's own for an .onnx model. Pass it to ``export_onnx`` so the file says what
        model it holds."""
        if self.onnx is not None:
            return self.onnx.metadata
        if self._export_metadata is None:
            from deepsampler.export.onnx_engine import ExportMetadata, checkpoint_digest

            assert self.model is not None  # set whenever self.onnx is None
            in_memory = str(self.loaded.path) == "<in-memory>"
            self._export_metadata = ExportMetadata.for_model(
                self.model,
                name=self.name,
                training=self.loaded.training,
                model_metadata=self.loaded.metadata,
                # None (an in-memory model, or a file gone since): a SHA-256 of the weights
                digest=None if in_memory else checkpoint_digest(self.loaded.path),
            )
        return self._export_metadata

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency when streamed (causal models); offline models need a chunk."""
        return self.config.latency_ms

    @property
    def passes(self) -> int:
        """Forward passes per chunk of an offline separation (``shifts``, doubled by ``flip``)."""
        return self.shifts * (2 if self.flip else 1)

    def options_label(self) -> str:
        """``shifts 2, flip, wiener 0``: the offline inference options in use ('' for one plain
        pass), so a report says how its numbers were made."""
        opts = [f"shifts {self.shifts}"] if self.shifts > 1 else []
        opts += ["flip"] if self.flip else []
        opts += [f"wiener {self.wiener}"] if self.wiener >= 0 else []
        return ", ".join(opts)

    def describe(self) -> str:
        """One line: name, sources, rate, latency, size, and the passes of an offline run."""
        cfg = self.config
        mode = (
            f"causal, latency {cfg.latency_ms:.1f} ms"
            if cfg.causal
            else f"offline, latency one chunk ({self.chunk / cfg.sample_rate:.1f} s)"
        )
        params = self.num_parameters / 1e6
        label = self.options_label()
        return (
            f"model {self.name}: {', '.join(cfg.sources)} | {cfg.sample_rate / 1000:g} kHz, "
            f"{cfg.audio_channels} ch | {mode} | {params:.2f} M parameters"
            + (f" | offline inference: {label} ({self.passes} passes)" if label else "")
        )

    def streaming_engine(
        self, engine: str = "auto", threads: int = 1
    ) -> StreamingSeparator | OnnxStreamingSeparator:
        """A streaming engine for this (causal) model: ``init_state()``, ``step([c, m])`` and
        ``flush()``, with a fixed delay of ``latency_samples``; wrap it in a
        ``deepsampler.streaming.processor.StreamProcessor`` to stream a file or an array.

        Args:
            engine: ``torch`` (PyTorch eager, ``deepsampler.streaming.StreamingSeparator``;
                refused for an .onnx model), ``onnx`` (onnxruntime: the .onnx file itself, or
                for a checkpoint its export from ``deepsampler.export.cache``, exported there
                on first use, seconds, and loaded after) or ``auto``: onnx where onnxruntime
                and onnx are installed, else torch. onnx is the faster (issue 25, music4-rt
                live: RTF 0.37 with one thread against torch's 0.81).
            threads: onnxruntime intra-op threads (0: its default, all cores; one frame is too
                little work to split). The torch engine follows ``torch.set_num_threads``.

        The onnx engine has ``kind == "onnx"`` and ``origin`` (its file, or the cache entry and
        whether this call exported it); the torch engine is a ``StreamingSeparator``.
        """
        if engine not in ("auto", "torch", "onnx"):
            raise DeepSamplerError(f"engine {engine!r}: use auto, torch or onnx")
        if not isinstance(threads, int) or threads < 0:
            raise DeepSamplerError(f"threads {threads!r}: use a whole number >= 0 (0 = default)")
        if not self.config.causal:
            raise DeepSamplerError(
                f"model {self.name} is offline (bidirectional); streaming needs a causal model"
            )
        if engine == "auto":
            import importlib.util

            # an .onnx file runs on onnx only (below, a missing package is a clear error); a
            # checkpoint takes onnx where it can also be exported (onnxscript)
            needs = ("onnx", "onnxruntime", "onnxscript")
            installed = all(importlib.util.find_spec(m) is not None for m in needs)
            engine = "onnx" if self.onnx is not None or installed else "torch"
        if engine == "torch":
            if self.model is None:
                raise DeepSamplerError(
                    f"{self.loaded.path}: an .onnx file runs on the onnx engine only; use "
                    f"--engine onnx (or auto), or the model's .pt checkpoint for the torch engine"
                )
            from deepsampler.streaming import StreamingSeparator

            return StreamingSeparator(self.model)
        from deepsampler.export.onnx_engine import OnnxStreamingSeparator

        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            raise DeepSamplerError(
                "the onnx engine needs onnxruntime and onnx, which deepsampler installs: "
                "pip install onnxruntime onnx (or use --engine torch)"
            ) from None
        if self.onnx is not None:
            return OnnxStreamingSeparator.from_export(self.onnx, threads, str(self.loaded.path))
        assert self.model is not None
        # the exporter traces on the CPU; a copy leaves a CUDA model where it is
        model = self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()
        return OnnxStreamingSeparator.cached(model, self.export_metadata, threads)

    # ---- processing ------------------------------------------------------------------------
    @torch.inference_mode()
    def _separate_chunk(self, x: np.ndarray) -> np.ndarray:
        """``[c, n]`` at the model's rate -> ``[s, c, n]``."""
        if self.model is None:  # an .onnx model: every offline call ends up here
            raise DeepSamplerError(
                f"{self.loaded.path}: an .onnx file holds the streaming step only; stream it "
                f"(`deepsampler stream`, or processor=StreamProcessor(sep.streaming_engine(), "
                f"...)) or separate offline with the model's .pt checkpoint"
            )
        n = x.shape[-1]
        hop = self.config.hop
        out = np.zeros((len(self.sources), *x.shape), np.float32)
        # an input shorter than one window is padded with silence to a whole window (cropped
        # below): the model never saw a spectrum of one or two frames cut by the signal's end
        tail = max(0, self.config.n_fft - n)
        passes = 0
        for k in range(self.shifts):
            delay = round(k * hop / self.shifts)
            for swap in (False, True) if self.flip else (False,):
                xin = x[::-1] if swap else x
                xin = np.pad(xin, ((0, 0), (delay, tail))) if delay or tail else xin
                wave = torch.from_numpy(np.ascontiguousarray(xin)).to(self.device)[None]
                y = self.model(wave)[0].float().cpu().numpy()[..., delay : delay + n]
                out += y[:, ::-1] if swap else y
                passes += 1
        out /= passes
        if self.wiener >= 0:
            from deepsampler.audio.wiener import wiener_postfilter

            out = wiener_postfilter(out, x, self.wiener)
        return out

    def _stream(
        self,
        blocks: Iterable[np.ndarray],
        in_rate: int,
        in_channels: int,
        name: str,
        on_block: Callable[[int], None] | None = None,
        processor: BlockProcessor | None = None,
    ) -> Iterator[np.ndarray]:
        """Separate a stream of ``[c_in, n]`` blocks at ``in_rate`` Hz; yield ``[s, c_out, m]``
        blocks at ``in_rate`` Hz whose lengths add up to the input's. ``c_out`` is 1 for mono
        input, the model's channel count otherwise. ``processor`` does the separation at the
        model's rate (default: overlapping chunks through the offline forward pass)."""
        cfg = self.config
        mono_out = in_channels == 1
        out_channels = 1 if mono_out else cfg.audio_channels
        resample_in = StreamResampler(in_rate, cfg.sample_rate, cfg.audio_channels)
        resample_out = StreamResampler(cfg.sample_rate, in_rate, len(cfg.sources) * out_channels)
        chunker = processor or ChunkedOverlapAdd(self._separate_chunk, self.chunk, self.overlap)
        total_in = 0
        emitted = 0

        n_src = len(cfg.sources)

        def back(ys: list[np.ndarray], last: bool) -> np.ndarray:
            """Model-rate ``[s, c, n]`` blocks -> one ``[s, c_out, m]`` block at the input rate."""
            if ys:
                y = np.concatenate(ys, axis=-1)
            else:
                y = np.zeros((n_src, cfg.audio_channels, 0), np.float32)
            if mono_out:
                y = y.mean(axis=1, keepdims=True)
            out = resample_out.push(y.reshape(n_src * out_channels, y.shape[-1]), last=last)
            return out.reshape(n_src, out_channels, out.shape[-1])

        for block in blocks:
            total_in += block.shape[-1]
            x = resample_in.push(
                fit_channels(block, cfg.audio_channels, downmix=self.downmix, name=name)
            )
            out = back(chunker.push(x), last=False)
            emitted += out.shape[-1]
            yield out
            if on_block is not None:
                on_block(block.shape[-1])
        tail = resample_in.push(np.zeros((cfg.audio_channels, 0), np.float32), last=True)
        out = back(chunker.push(tail) + chunker.finish(), last=True)
        # resampling twice can land a sample short or long: the output matches the input exactly
        keep = total_in - emitted
        if out.shape[-1] < keep:
            out = np.concatenate(
                [out, np.zeros((*out.shape[:2], keep - out.shape[-1]), np.float32)], -1
            )
        yield out[..., :keep]

    def separate(
        self,
        mixture: np.ndarray | torch.Tensor,
        sample_rate: int,
        processor: BlockProcessor | None = None,
    ) -> dict[str, np.ndarray]:
        """Separate an in-memory ``[c, samples]`` mixture at ``sample_rate`` Hz.

        Returns ``{source: [c_out, samples]}`` at ``sample_rate`` (``c_out`` as in the input for
        mono, the model's channel count otherwise).
        """
        if isinstance(mixture, torch.Tensor):
            mixture = mixture.detach().cpu().numpy()
        mixture = np.asarray(mixture, dtype=np.float32)
        if mixture.ndim == 1:
            mixture = mixture[None]
        if mixture.ndim != 2 or mixture.shape[-1] == 0:
            raise DeepSamplerError(
                f"expected a non-empty [channels, samples] array, got {mixture.shape}"
            )
        if not np.isfinite(mixture).all():
            raise DeepSamplerError("mixture contains NaN/Inf samples; pass finite audio")
        blocks = (mixture[:, i : i + 65536] for i in range(0, mixture.shape[-1], 65536))
        out = np.concatenate(
            list(self._stream(blocks, sample_rate, mixture.shape[0], "mixture", None, processor)),
            -1,
        )
        return {s: out[i] for i, s in enumerate(self.sources)}

    def separate_file(
        self,
        path: str | Path,
        out_dir: str | Path,
        *,
        stems: Sequence[str] | None = None,
        fmt: str = "wav",
        progress: bool = False,
        track: str | None = None,
        processor: BlockProcessor | None = None,
        on_samples: Callable[[int], None] | None = None,
    ) -> SeparationResult:
        """Separate one file into ``out_dir/<track>/<stem>.<fmt>`` (written atomically).

        ``track`` defaults to the file's name without extension. If anything fails, no stem file
        is left, nor any folder this call created. ``on_samples(n)`` is called as each block of
        ``n`` input samples (at the file's rate) goes in: progress for callers without a bar.
        """
        path = Path(path)
        stems = list(stems or self.sources)
        unknown = [s for s in stems if s not in self.sources]
        if unknown:
            raise DeepSamplerError(
                f"unknown stem(s) {unknown}; model {self.name} gives {list(self.sources)}"
            )
        info = audio_info(path)
        # check the channel policy before anything is written
        fit_channels(
            np.zeros((info.channels, 1), np.float32),
            self.config.audio_channels,
            downmix=self.downmix,
            name=str(path),
        )
        track = track or path.stem
        track_dir = Path(out_dir) / track
        for s in stems:
            out = track_dir / f"{s}.{fmt}"
            if out.exists() and out.samefile(path):  # same inode: a link or another spelling
                raise OutputError(
                    f"{out}: this output would replace the input {path}; choose another -o folder"
                )
        new_dirs = created_dirs(track_dir)
        try:
            ensure_writable_dir(track_dir)
        except OutputError:
            remove_empty_dirs(new_dirs)
            raise
        out_channels = 1 if info.channels == 1 else self.config.audio_channels
        writers: dict[str, AtomicAudioWriter] = {}
        start = time.perf_counter()
        bar = None
        try:
            for s in stems:
                writers[s] = AtomicAudioWriter(
                    track_dir / f"{s}.{fmt}", info.sample_rate, out_channels, fmt
                )
            if progress:
                from tqdm import tqdm

                bar = tqdm(
                    total=round(info.seconds, 1),
                    unit="s",
                    desc=track,
                    leave=False,
                    bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]",
                )
            index = {s: self.sources.index(s) for s in stems}
            hooks = [h for h in (on_samples,) if h is not None]
            if bar is not None:
                hooks.append(lambda n: bar.update(n / info.sample_rate))
            update = (lambda n: [h(n) for h in hooks]) if hooks else None
            for out in self._stream(
                iter_blocks(path), info.sample_rate, info.channels, str(path), update, processor
            ):
                for s, writer in writers.items():
                    writer.write(out[index[s]])
            paths = dict(zip(writers, commit_all(list(writers.values())), strict=True))
        except BaseException as exc:
            for w in writers.values():
                w.abort()
            remove_empty_dirs(new_dirs)
            if isinstance(exc, OSError):
                raise OutputError(f"{track_dir}: writing failed ({exc.strerror or exc})") from None
            raise
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - start
        return SeparationResult(
            track=track,
            stems=paths,
            audio_seconds=info.seconds,
            compute_seconds=elapsed,
            clipped_samples=sum(w.clipped for w in writers.values()),
        )
