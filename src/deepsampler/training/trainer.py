"""The training loop behind ``deepsampler train``.

One :class:`Trainer` per process; under ``torchrun`` every process runs the same loop on its own
slice of each epoch (DDP averages the gradients) and only rank 0 writes. A run folder holds::

    config.yaml            the resolved TrainConfig (``--config`` reads it back)
    model.yaml             the resolved ModelConfig
    checkpoints/last.pt    the full training state (resume: run the same command again)
    checkpoints/best.pt    the best validated weights (EMA if on), a model checkpoint
    checkpoints/final.pt   the weights after the last step, a model checkpoint
    metrics.jsonl          one line per validation
    tb/                    TensorBoard scalars and audio examples
"""

from __future__ import annotations

import json
import math
import platform
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from tqdm import tqdm

from deepsampler.config import from_dict, to_dict
from deepsampler.data.dataset import StemDataset
from deepsampler.errors import ConfigError
from deepsampler.models.checkpoint import load_checkpoint, save_checkpoint
from deepsampler.models.deepsampler import DeepSampler
from deepsampler.models.registry import resolve_model
from deepsampler.training import losses
from deepsampler.training.config import TrainConfig, config_to_yaml
from deepsampler.training.distributed import (
    DistInfo,
    ResumableSampler,
    barrier,
    init_distributed,
    shutdown,
)
from deepsampler.training.schedule import warmup_cosine
from deepsampler.training.state import capture_rng, load_state, restore_rng, save_state
from deepsampler.training.transfer import transfer_weights
from deepsampler.training.validate import validate

# Keys a resumed run may change: they do not touch what is computed, only how it is run.
# how a run is carried out, not what it trains: these may change between resumes. init_from
# only seeds step 0 (a resumed run's weights come from its own state), so a stage's starting
# checkpoint may move, e.g. from a run folder into stages/ where the next session finds it.
RESUMABLE_CHANGES = frozenset(
    {
        "num_workers",
        "threads",
        "log_every",
        "valid_every",
        "checkpoint_every",
        "audio_examples",
        "init_from",
    }
)


@dataclass
class TrainResult:
    """What a call to :meth:`Trainer.run` did."""

    run_dir: Path
    step: int
    finished: bool
    resumed_from: int | None
    best_sdr: float | None
    best_step: int | None
    train_seconds: float
    last_loss: float | None
    validations: list[dict[str, Any]] = field(default_factory=list)
    score: str = "SDR"  # what best_sdr holds: SDR (dB) for a separator, frame F1 for a detector


def ema_with_warmup(decay: float) -> Any:
    """EMA update for ``AveragedModel``: decay ``min(decay, (1 + n) / (10 + n))`` after ``n``
    updates, so early weights (random ones included) fade fast instead of weighing on the
    average for thousands of steps."""

    @torch.no_grad()
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        floats = [(e, c) for e, c in zip(ema, current, strict=True) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [c for _, c in floats], 1.0 - d)
        for e, c in zip(ema, current, strict=True):
            if not e.is_floating_point():
                e.copy_(c)

    return update


def _pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device: cuda asked for, but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    return f"{world} x {what}" if world > 1 else what


def _config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _config_differences(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.append(prefix + k)
    return out


class Trainer:
    """Train a DeepSampler model as ``config`` says, in ``run_dir``, resuming what is there.

    ``minutes`` stops this call cleanly (with a resumable checkpoint) after that much wall time;
    ``max_steps`` stops it after that many steps in total (the schedule still spans
    ``config.steps``). SIGINT/SIGTERM also stop it cleanly at the end of the current step.

    Another task subclasses it (``training.detect.DetectorTrainer``) through the hooks
    ``_model_config``, ``_new_model``, ``_batch_loss``, ``_validate``, ``_validation_summary``,
    ``_save_model`` and ``training_record``; the loop, resume, checkpoints and logs stay here.
    ``best_sdr`` is the best validation score, whatever ``SCORE`` names.
    """

    SCORE = "SDR"

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        minutes: float | None = None,
        max_steps: int | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.minutes = minutes
        self.max_steps = max_steps
        self.progress = progress
        self.device = _pick_device(config.device)
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.model_config = self._model_config()
        self.use_amp = config.amp and self.device.type == "cuda"
        self._stop_requested = False

    # ---- set-up ------------------------------------------------------------------------------
    def _model_config(self) -> Any:
        """The config of the model this run trains."""
        if self.config.task != "separate":
            raise ConfigError(
                f"task: {self.config.task} is trained by training.detect.DetectorTrainer "
                "(`deepsampler train` picks it)"
            )
        return self.config.model_config()

    def _new_model(self) -> torch.nn.Module:
        """The model to train, on ``self.device`` (weights from ``init_from`` if set)."""
        cfg = self.config
        model = DeepSampler(self.model_config).to(self.device)
        # a resumed run's weights come from its state: init_from seeds step 0 only
        if cfg.init_from and not self.state_path.is_file():
            loaded = load_checkpoint(resolve_model(cfg.init_from))
            try:
                resampled = transfer_weights(loaded.model.state_dict(), model)
            except ConfigError as exc:
                raise ConfigError(f"init_from {cfg.init_from}: {exc}") from None
            if resampled and self.dist.is_main:
                tqdm.write(
                    f"train: init_from {cfg.init_from} has another frequency grid; "
                    f"resampled {', '.join(resampled)}"
                )
        return model

    def _save_model(
        self, path: Path, model: torch.nn.Module, record: dict[str, Any], selected_on: str
    ) -> None:
        """Write the shippable checkpoint of ``model`` (best.pt, final.pt)."""
        metadata = {"name": self.config.name, "selected_on": selected_on}
        save_checkpoint(path, model, training=record, metadata=metadata)

    def _build(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP checks)
        np.random.seed(cfg.seed)
        self.model = self._new_model()
        torch.manual_seed(cfg.seed + 1 + self.dist.rank)  # per-rank stream for dropout etc.
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=ema_with_warmup(cfg.ema_decay), use_buffers=True)
            if cfg.ema_decay > 0
            else None
        )
        self.net: torch.nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=o.lr, weight_decay=o.weight_decay, betas=tuple(o.betas)
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: warmup_cosine(step, cfg.steps, o.warmup_steps, o.min_lr_ratio),
        )
        self.train_set = StemDataset(cfg.data_root, cfg.train_split, cfg.data, train=True)
        self.valid_loader = None
        if self.dist.is_main:
            valid_set = StemDataset(cfg.data_root, cfg.valid_split, cfg.data, train=False)
            self.valid_loader = DataLoader(
                valid_set, batch_size=cfg.batch_size, num_workers=min(cfg.num_workers, 1)
            )
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.train_seconds = 0.0
        self.best_sdr: float | None = None
        self.best_step: int | None = None

    @property
    def state_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def _prepare_run_dir(self) -> int | None:
        """Write the resolved config, or check it against the run being resumed; load state."""
        cfg_path = self.run_dir / "config.yaml"
        resumed = None
        if self.state_path.is_file():
            state = load_state(self.state_path, self.device)
            before = state["config"]
            try:
                # a field added since the run began reads as its default, not as a change
                before = to_dict(from_dict(TrainConfig, before))
            except ConfigError:
                pass  # a field since removed or retyped: compared as stored, so it differs
            diffs = [
                d
                for d in _config_differences(before, to_dict(self.config))
                if d not in RESUMABLE_CHANGES
            ]
            if diffs:
                raise ConfigError(
                    f"{self.run_dir} holds a run with another config (differs in "
                    f"{', '.join(diffs[:5])}); resume it with the same config, or use another "
                    "--out folder"
                )
            self._load(state)
            resumed = self.step
        barrier(self.dist)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg_path.write_text(config_to_yaml(self.config))
            (self.run_dir / "model.yaml").write_text(
                json.dumps(to_dict(self.model_config), indent=2) + "\n"
            )
        return resumed

    # ---- state ---------------------------------------------------------------------------------
    def _gather_rng(self) -> list[dict[str, Any]]:
        mine = capture_rng()
        if not self.dist.enabled:
            return [mine]
        everyone: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(everyone, mine)
        return everyone

    def _save(self) -> None:
        rngs = self._gather_rng()  # collective: every rank takes part
        if self.dist.is_main:
            save_state(
                self.state_path,
                {
                    "config": to_dict(self.config),
                    "step": self.step,
                    "epoch": self.epoch,
                    "batch_in_epoch": self.batch_in_epoch,
                    "train_seconds": self.train_seconds,
                    "best_sdr": self.best_sdr,
                    "best_step": self.best_step,
                    "world_size": self.dist.world_size,
                    "model": self.model.state_dict(),
                    "ema": self.ema.state_dict() if self.ema is not None else None,
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "rng": rngs,
                },
            )
        barrier(self.dist)

    def _load(self, state: dict[str, Any]) -> None:
        if state.get("world_size", 1) != self.dist.world_size:
            raise ConfigError(
                f"{self.state_path}: saved by {state.get('world_size')} processes, resumed with "
                f"{self.dist.world_size}; the data order would change — resume with the same count"
            )
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.train_seconds = float(state["train_seconds"])
        self.best_sdr = state["best_sdr"]
        self.best_step = state["best_step"]
        restore_rng(state["rng"][self.dist.rank])

    def eval_model(self) -> DeepSampler:
        """The weights that are validated and shipped: the EMA if on, else the raw model."""
        return self.ema.module if self.ema is not None else self.model

    def training_record(self, valid: dict[str, Any] | None) -> dict[str, Any]:
        cfg = self.config
        record: dict[str, Any] = {
            "run": cfg.name,
            "steps": self.step,
            "examples_seen": self.step * cfg.batch_size * self.dist.world_size,
            "segment_seconds": cfg.data.segment_seconds,
            "train_hours": round(self.train_seconds / 3600, 3),
            "hardware": _hardware(self.device, self.dist.world_size),
            "data_root": str(cfg.data_root),
            "config": to_dict(cfg),
        }
        corpus = Path(cfg.data_root) / "corpus.json"
        if corpus.is_file():
            try:
                summary = json.loads(corpus.read_text())
                record["corpus"] = {
                    k: summary[k]
                    for k in ("settings", "tracks_per_split", "hours_per_split")
                    if k in summary
                }
            except (OSError, ValueError):
                pass
        if valid is not None:
            record["valid_sdr"] = valid["sdr"]
            record["valid_sdr_per_source"] = valid["per_source"]
        return record

    # ---- the loop ------------------------------------------------------------------------------
    def _loss(self, estimate: torch.Tensor, stems: torch.Tensor) -> torch.Tensor:
        lc = self.config.loss
        total = estimate.new_zeros(())
        if lc.waveform_l1:
            total = total + lc.waveform_l1 * losses.multisrc_l1_waveform(estimate, stems)
        if lc.multires_stft:
            total = total + lc.multires_stft * losses.multisrc_multires_stft(
                estimate, stems, tuple(lc.stft_resolutions)
            )
        if lc.si_sdr:
            total = total + lc.si_sdr * losses.multisrc_neg_si_sdr(
                estimate, stems, self.config.data.silence_db
            )
        return total

    def _batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of one batch (a scalar with gradients)."""
        mixture = batch["mixture"].to(self.device, non_blocking=True)
        stems = batch["stems"].to(self.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp):
            estimate = self.net(mixture)
        return self._loss(estimate.float(), stems)

    def _train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
        loss = self._batch_loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"step {self.step + 1}: loss is {loss.item()}; lower optim.lr or check the data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.optim.grad_clip
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)) if clip else 0.0
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return float(loss.detach()), norm

    def _should_stop(self, started: float) -> bool:
        stop = self._stop_requested
        if self.minutes is not None and time.monotonic() - started >= self.minutes * 60:
            stop = True
        if self.max_steps is not None and self.step >= self.max_steps:
            stop = True
        if self.dist.enabled:  # every rank must leave the loop at the same step
            flag = torch.tensor([1.0 if stop else 0.0])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _validate(self, writer: Any) -> dict[str, Any] | None:
        if not self.dist.is_main:
            return None
        model = self.eval_model()
        result = validate(
            model,
            self.valid_loader,
            self.device,
            silence_db=self.config.data.silence_db,
            keep_examples=self.config.audio_examples,
        )
        improved = self.best_sdr is None or result["sdr"] > self.best_sdr
        if improved and math.isfinite(result["sdr"]):
            self.best_sdr, self.best_step = result["sdr"], self.step
            self._save_model(
                self.run_dir / "checkpoints" / "best.pt",
                model,
                self.training_record(result),
                "validation SDR",
            )
        line = {
            "step": self.step,
            "train_hours": round(self.train_seconds / 3600, 4),
            "sdr": result["sdr"],
            "per_source": result["per_source"],
            "mixture_sdr": result["mixture_sdr"],
            "si_sdr": result["si_sdr"],
            "best": improved,
        }
        with (self.run_dir / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        if writer is not None:
            writer.add_scalar("valid/sdr", result["sdr"], self.step)
            for name, value in result["per_source"].items():
                writer.add_scalar(f"valid/sdr_{name}", value, self.step)
            sr = self.model_config.sample_rate
            for i, (mixture, estimate) in enumerate(result["examples"]):
                peak = max(1.0, float(mixture.abs().max()))
                writer.add_audio(f"example{i}/mixture", mixture.mean(0) / peak, self.step, sr)
                for name, stem in zip(self.model_config.sources, estimate, strict=True):
                    writer.add_audio(f"example{i}/{name}", stem.mean(0) / peak, self.step, sr)
            writer.flush()
        return line

    def _validation_summary(self, line: dict[str, Any]) -> str:
        """The progress line of one validation."""
        return (
            f"step {self.step}: valid SDR {line['sdr']:.2f} dB "
            + " ".join(f"{k} {v:.2f}" for k, v in line["per_source"].items())
            + (" (best)" if line["best"] else "")
        )

    def _writer(self) -> Any:
        if not self.dist.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            tqdm.write(
                "train: tensorboard is not installed; no TensorBoard logs (deepsampler[train])"
            )
            return None
        return SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step or None)

    def run(self) -> TrainResult:
        """Train until ``config.steps`` (or this call's limits); returns what happened."""
        cfg = self.config
        self._build()
        resumed = self._prepare_run_dir()
        writer = self._writer()
        validations: list[dict[str, Any]] = []
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {
                s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)
            }
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            desc=cfg.name,
            unit="step",
            disable=not (self.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        if resumed is not None and self.dist.is_main:
            bar.write(f"train: resuming {self.run_dir} at step {resumed}")
        started = time.monotonic()
        last_loss: float | None = None
        window: list[float] = []
        stopped = self.step >= cfg.steps or self._should_stop(started)
        try:
            while not stopped:
                self.train_set.set_epoch(self.epoch)
                sampler = ResumableSampler(
                    len(self.train_set),
                    cfg.batch_size,
                    self.dist.rank,
                    self.dist.world_size,
                    self.batch_in_epoch,
                )
                loader = DataLoader(
                    self.train_set,
                    batch_size=cfg.batch_size,
                    sampler=sampler,
                    num_workers=cfg.num_workers,
                    drop_last=True,
                    pin_memory=self.device.type == "cuda",
                    # its own generator, so that making workers never moves the global RNG
                    generator=torch.Generator().manual_seed(cfg.seed + self.epoch),
                )
                mark = time.monotonic()
                for batch in loader:
                    last_loss, norm = self._train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    # wall time of training: steps, data waits, validation and checkpoints
                    now = time.monotonic()
                    self.train_seconds += now - mark
                    mark = now
                    window.append(last_loss)
                    bar.update(1)
                    if self.step % cfg.log_every == 0 and self.dist.is_main:
                        mean_loss = float(np.mean(window))
                        window.clear()
                        lr = self.scheduler.get_last_lr()[0]
                        bar.set_postfix(
                            loss=f"{mean_loss:.4f}",
                            lr=f"{lr:.1e}",
                            best=f"{self.best_sdr:.2f}" if self.best_sdr is not None else "-",
                        )
                        if writer is not None:
                            writer.add_scalar("train/loss", mean_loss, self.step)
                            writer.add_scalar("train/lr", lr, self.step)
                            writer.add_scalar("train/grad_norm", norm, self.step)
                    done = self.step >= cfg.steps
                    if self.step % cfg.valid_every == 0 or done:
                        line = self._validate(writer)
                        if line is not None:
                            validations.append(line)
                            bar.write(self._validation_summary(line))
                        barrier(self.dist)
                    stopped = done or self._should_stop(started)
                    if self.step % cfg.checkpoint_every == 0 or stopped:
                        self._save()
                    if stopped:
                        break
                if self.batch_in_epoch >= sampler.batches:
                    self.epoch += 1
                    self.batch_in_epoch = 0
            finished = self.step >= cfg.steps
            if finished and self.dist.is_main:
                self._save_model(
                    self.run_dir / "checkpoints" / "final.pt",
                    self.eval_model(),
                    self.training_record(validations[-1] if validations else None),
                    "last step",
                )
            barrier(self.dist)
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            if writer is not None:
                writer.close()
            shutdown(self.dist)
        return TrainResult(
            run_dir=self.run_dir,
            step=self.step,
            finished=self.step >= cfg.steps,
            resumed_from=resumed,
            best_sdr=self.best_sdr,
            best_step=self.best_step,
            train_seconds=self.train_seconds,
            last_loss=last_loss,
            validations=validations,
            score=self.SCORE,
        )

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_requested:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self._stop_requested = True
        if self.dist.is_main:
            tqdm.write("train: stopping after this step (checkpoint follows); again to abort")
