"""StemProver training, stage by stage (``deepsampler stemprover train --config ...``).

Stages, in order (each resumes from the model file the previous one wrote):

1. ``autoencoder``: feature segments of clean *and* degraded stems -> latent -> features (L1 on
   the compressed real/imag planes, which weights quiet bins more than a linear spectrogram would);
   then ``latent_scale`` is set to the latent standard deviation on clean stems.
2. ``base``: the latent denoiser learns clean stems alone (v-prediction), no condition — the
   project's own base model, since no pretrained diffusion weights can be downloaded.
3. ``control``: the control branch (zero convs) learns to steer the frozen base towards the clean
   latent given the degraded stem, on all kinds of pairs.
4. ``adapters``: one LoRA adapter per artifact type, trained **progressively** — one after the
   other, each on its own artifact's pairs with the base, the control branch and the earlier
   adapters frozen and off.
5. ``regression``: the same-size one-pass regression refiner (the benchmark's control).

The resolved config is written to ``RUN/config.yaml``; the model after every stage to
``RUN/stemprover.pt`` (atomic), the regression refiner to ``RUN/regression.pt``, and one JSON line
per logged step to ``RUN/metrics.jsonl``. Re-running the same command skips completed stages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from deepsampler.atomic import atomic_torch_save
from deepsampler.config import from_dict, load_yaml, to_dict
from deepsampler.errors import ConfigError
from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.degradations import ARTIFACTS
from deepsampler.stemprover.diffusion import diffusion_loss
from deepsampler.stemprover.model import StemProver, StemProverConfig
from deepsampler.stemprover.pairs import SEPARATOR, PairConfig, PairPool, PairSampler
from deepsampler.stemprover.refiners import RegressionNet

STAGES = ("autoencoder", "base", "control", "adapters", "regression")
POOL_KINDS = (None, *ARTIFACTS, SEPARATOR)  # fixed order: a pool's seed does not depend on history
REGRESSION_FORMAT = "deepsampler-stemprover-regression-v1"


@dataclass(frozen=True)
class StageConfig:
    """Optimiser settings of one stage (``steps`` per adapter in the adapters stage)."""

    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 8
    minutes: float = 0.0  # > 0: stop the stage early after this much wall time (a safety net)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0 or self.minutes < 0:
            raise ValueError("need steps >= 0, batch_size >= 1, lr > 0 and minutes >= 0")


@dataclass(frozen=True)
class StemProverTrainConfig:
    """A StemProver training run (YAML preset ``configs/stemprover*.yaml``)."""

    name: str = "stemprover"
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    log_every: int = 25
    # a StemProver file to start from: its finished stages count as done (e.g. the autoencoder,
    # base and control stages of a GPU run, continued here with the adapters)
    init_from: str | None = None
    grad_clip: float = 1.0
    model: StemProverConfig = field(default_factory=StemProverConfig)
    pairs: PairConfig = field(default_factory=PairConfig)
    autoencoder: StageConfig = field(default_factory=StageConfig)
    base: StageConfig = field(default_factory=StageConfig)
    control: StageConfig = field(default_factory=StageConfig)
    adapters: StageConfig = field(default_factory=StageConfig)
    regression: StageConfig = field(default_factory=StageConfig)


def load_stemprover_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> StemProverTrainConfig:
    """Read a YAML preset (or the defaults when ``path`` is None) and apply ``key=value``s."""
    from deepsampler.training.config import _merge, parse_overrides

    data = {} if path is None else load_yaml(path)
    data = _merge(data, parse_overrides(list(overrides or [])))
    return from_dict(StemProverTrainConfig, data)


@dataclass
class StageResult:
    stage: str
    steps: int
    seconds: float
    first_loss: float
    last_loss: float


class StemProverTrainer:
    """Runs the stages of ``config`` into ``run_dir``."""

    def __init__(
        self,
        config: StemProverTrainConfig,
        run_dir: str | Path,
        progress: bool = True,
        sampler: PairSampler | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.sampler = sampler or PairSampler(config.pairs)
        self.rng = np.random.default_rng(config.seed)
        self.gen = torch.Generator().manual_seed(config.seed)
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {config.device}: no CUDA device here; use device=cpu")
        self.device = torch.device(config.device)
        self.pools: dict[str | None, PairPool] = {}

    @property
    def model_path(self) -> Path:
        return self.run_dir / "stemprover.pt"

    @property
    def regression_path(self) -> Path:
        return self.run_dir / "regression.pt"

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(to_dict(self.config), sort_keys=False)
        path = self.run_dir / "config.yaml"
        if path.is_file() and path.read_text() != text:
            raise ConfigError(
                f"{path}: this run was started with another config; use a new --out folder"
            )
        path.write_text(text)

    def run(self, stages: Iterable[str] = STAGES) -> list[StageResult]:
        stages = list(stages)
        bad = [s for s in stages if s not in STAGES]
        if bad:
            raise ConfigError(f"unknown stage(s) {bad}; stages are {list(STAGES)}")
        torch.set_num_threads(self.config.threads)
        self._write_config()
        if self.model_path.is_file():
            model, extra = StemProver.load(self.model_path)
            done = list(extra.get("stages_done", []))
        elif self.config.init_from:
            model, extra = StemProver.load(self.config.init_from)
            if to_dict(model.config) != to_dict(self.config.model):
                raise ConfigError(
                    f"init_from {self.config.init_from}: its model section differs from this "
                    f"config's; copy it from the run that made it"
                )
            done = list(extra.get("stages_done", []))
        else:
            torch.manual_seed(self.config.seed)
            model, done = StemProver(self.config.model), []
        model.to(self.device)
        results = []
        for stage in stages:
            if stage in done:
                continue
            result = getattr(self, f"_stage_{stage}")(model)
            results.append(result)
            done.append(stage)
            model.save(self.model_path, extra={"stages_done": done, "name": self.config.name})
        return results

    # ----- helpers --------------------------------------------------------------------------
    def _batch(self, size: int, kind: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = self.config.pairs
        if pairs.pool_size > 0:
            if kind not in self.pools:
                self.pools[kind] = PairPool(
                    pairs,
                    pairs.pool_size,
                    kind,
                    workers=pairs.pool_workers,
                    seed=self.config.seed * 1000 + POOL_KINDS.index(kind),
                    progress=self.progress,
                )
            degraded, clean = self.pools[kind].batch(self.rng, size)
        else:
            degraded, clean, _ = self.sampler.batch(self.rng, size, kind)
        return torch.from_numpy(degraded).to(self.device), torch.from_numpy(clean).to(self.device)

    def _loop(
        self,
        name: str,
        params: list[torch.nn.Parameter],
        stage: StageConfig,
        loss_fn: Callable[[], torch.Tensor],
        kind: str | None = None,
    ) -> StageResult:
        if self.config.pairs.pool_size > 0:
            self._batch(1, kind)  # draw the pool now, so that its time is not the stage's
        opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=stage.lr, total_steps=max(stage.steps, 1), pct_start=0.1
        )
        losses: list[float] = []
        start = time.perf_counter()
        bar = tqdm(range(stage.steps), desc=name, disable=not self.progress, leave=False)
        log = (self.run_dir / "metrics.jsonl").open("a")
        try:
            for step in bar:
                if stage.minutes and time.perf_counter() - start > 60 * stage.minutes:
                    log.write(json.dumps({"stage": name, "stopped_early_at": step}) + "\n")
                    break
                loss = loss_fn()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if (step + 1) % self.config.log_every == 0 or step + 1 == stage.steps:
                    recent = float(np.mean(losses[-self.config.log_every :]))
                    log.write(json.dumps({"stage": name, "step": step + 1, "loss": recent}) + "\n")
                    log.flush()
        finally:
            log.close()
        k = max(1, min(self.config.log_every, len(losses) // 4 or 1))
        return StageResult(
            name,
            len(losses),
            time.perf_counter() - start,
            float(np.mean(losses[:k])) if losses else float("nan"),
            float(np.mean(losses[-k:])) if losses else float("nan"),
        )

    @staticmethod
    def _trainable(module: torch.nn.Module, model: StemProver) -> list[torch.nn.Parameter]:
        lora.freeze_all_but(model, module.parameters())
        return [p for p in module.parameters() if p.requires_grad]

    # ----- stages ---------------------------------------------------------------------------
    def _stage_autoencoder(self, model: StemProver) -> StageResult:
        ae = model.autoencoder.train()
        params = self._trainable(ae, model)
        cfg = self.config.autoencoder

        def loss_fn() -> torch.Tensor:
            degraded, clean = self._batch(max(1, cfg.batch_size // 2))
            feats = model.features(torch.cat([degraded, clean])[:, None])
            return F.l1_loss(ae(feats), feats)

        result = self._loop("autoencoder", params, cfg, loss_fn)
        with torch.no_grad():
            _, clean = self._batch(max(8, cfg.batch_size))
            ae.latent_scale.fill_(1.0)
            z = ae.encode(model.features(clean[:, None]))
            ae.latent_scale.fill_(float(z.std().clamp_min(1e-3)))
        ae.eval()
        return result

    def _stage_base(self, model: StemProver) -> StageResult:
        den = model.denoiser.train()
        params = self._trainable(den, model)
        cfg = self.config.base

        def loss_fn() -> torch.Tensor:
            _, clean = self._batch(cfg.batch_size)
            with torch.no_grad():
                z0 = model.analyse(clean)[2]
            return diffusion_loss(den, z0, model.config.diffusion, generator=self.gen)

        return self._loop("base", params, cfg, loss_fn)

    @torch.no_grad()
    def _pair_latents(
        self, model: StemProver, size: int, kind: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch of pairs as (degraded phase features, degraded latent, clean latent)."""
        degraded, clean = self._batch(size, kind)
        _, phase, z_deg = model.analyse(degraded)
        return phase, z_deg, model.analyse(clean)[2]

    def _conditional_loss(self, model: StemProver, size: int, kind: str | None) -> torch.Tensor:
        phase, z_deg, z0 = self._pair_latents(model, size, kind)
        control = model.condition(z_deg, phase)
        return diffusion_loss(model.denoiser, z0, model.config.diffusion, control, self.gen)

    def _stage_control(self, model: StemProver) -> StageResult:
        model.control.train()
        params = self._trainable(model.control, model)
        cfg = self.config.control
        model.set_adapter_weights({})
        return self._loop(
            "control", params, cfg, lambda: self._conditional_loss(model, cfg.batch_size, None)
        )

    def _stage_adapters(self, model: StemProver) -> StageResult:
        cfg = self.config.adapters
        total = StageResult("adapters", 0, 0.0, float("nan"), float("nan"))
        for artifact in self.config.pairs.artifacts:
            if artifact not in model.adapters:
                model.add_adapter(artifact)
            model.set_adapter_weights({artifact: 1.0})
            params = lora.adapter_parameters(model.denoiser, artifact)
            lora.freeze_all_but(model, params)
            model.denoiser.train()
            r = self._loop(
                f"adapter {artifact}",
                params,
                cfg,
                lambda a=artifact: self._conditional_loss(model, cfg.batch_size, a),
                kind=artifact,
            )
            total.steps += r.steps
            total.seconds += r.seconds
            if np.isnan(total.first_loss):
                total.first_loss = r.first_loss
            total.last_loss = r.last_loss
        model.set_adapter_weights({})
        model.eval()
        return total

    def _stage_regression(self, model: StemProver) -> StageResult:
        cfg = self.config.regression
        torch.manual_seed(self.config.seed + 1)
        net = RegressionNet(model).to(self.device).train()
        lora.freeze_all_but(model, [])
        params = list(net.parameters())

        def loss_fn() -> torch.Tensor:
            phase, z_deg, z0 = self._pair_latents(model, cfg.batch_size)
            return F.mse_loss(net(z_deg, phase), z0 - z_deg)

        result = self._loop("regression", params, cfg, loss_fn)
        save_regression(net.eval(), self.regression_path)
        return result


def save_regression(net: RegressionNet, path: str | Path) -> Path:
    return atomic_torch_save({"format": REGRESSION_FORMAT, "state": net.state_dict()}, Path(path))


def load_regression(model: StemProver, path: str | Path) -> RegressionNet:
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != REGRESSION_FORMAT:
        raise ValueError(f"{path} is not a StemProver regression refiner")
    net = RegressionNet(model)
    net.load_state_dict(payload["state"])
    return net.eval()
