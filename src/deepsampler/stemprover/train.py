"""StemProver training, stage by stage (``deepsampler stemprover train --config ...``).

Stages, in order (each resumes from the model file the previous one wrote):

0. ``predictor`` (models with one): the predictive stage, a non-causal mask refiner, learns to
   move separator outputs towards the true stems (negative SNR of the refined waveform) on
   separator pairs. Every later conditional stage (control, adapters, regression) then sees the
   predictor's estimates as its degraded input, as inference does.
1. ``autoencoder``: feature segments of clean *and* degraded stems -> latent -> features (L1 on
   the compressed real/imag planes, which weights quiet bins more than a linear spectrogram would);
   then ``latent_scale`` is set to the latent standard deviation on clean stems.
2. ``base``: the latent denoiser learns clean stems alone (v-prediction), no condition — the
   project's own base model, since no pretrained diffusion weights can be downloaded.
3. ``control``: the control branch (zero convs) learns to steer the frozen base towards the clean
   latent given the degraded stem (and its mixture), on all kinds of pairs.
4. ``adapters``: one LoRA adapter per artifact type, trained **progressively** — one after the
   other, each on its own artifact's pairs with the base, the control branch and the earlier
   adapters frozen and off.
5. ``regression``: the same-size one-pass regression refiner (the benchmark's control).

The conditional stages (control, adapters) train on ``diffusion.refinement_prediction``: ordinary
v-prediction rows plus rows that start where the sampler starts (the degraded latent, noised),
whose implied clean latent is scored against the clean latent (MSE weighted like a v error) and,
optionally (``output_loss`` > 0; it costs a decoder pass with gradients), after decoding
the edit onto the degraded stem exactly as inference does, against the clean waveform (negative
SNR in dB, weight ``output_loss`` per dB): the benchmark's ΔSDR is the quantity trained. The
regression refiner gets the same two terms, so the comparison stays fair.

The resolved config is written to ``RUN/config.yaml``; the model after every stage to
``RUN/stemprover.pt`` (atomic), the regression refiner to ``RUN/regression.pt``, and one JSON line
per logged step to ``RUN/metrics.jsonl``. Re-running the same command skips completed stages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from deepsampler.config import from_dict, load_yaml, to_dict
from deepsampler.errors import CheckpointError, ConfigError
from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.checkpoint import (  # load_regression: re-exported for callers
    load_regression,  # noqa: F401
    load_stemprover,
    read_stemprover,
    save_regression,
    save_stemprover,
    split_state,
)
from deepsampler.stemprover.degradations import ARTIFACTS
from deepsampler.stemprover.diffusion import diffusion_loss, refinement_prediction
from deepsampler.stemprover.model import StemProver, StemProverConfig, keep_phase
from deepsampler.stemprover.pairs import SEPARATOR, PairConfig, PairPool, PairSampler
from deepsampler.stemprover.refiners import RegressionNet

STAGES = ("predictor", "autoencoder", "base", "control", "adapters", "regression")
POOL_KINDS = (None, *ARTIFACTS, SEPARATOR)  # fixed order: a pool's seed does not depend on history
#: steps a stage with a time budget runs before it measures its rate (the first ones are slow)
PROBE_STEPS = 20


def fitted_steps(steps: int, budget_s: float, done: int, elapsed_s: float) -> int:
    """Steps that fit in ``budget_s`` seconds at the rate of the ``done`` steps so far (taken
    in ``elapsed_s``), at most ``steps`` and at least ``done``; 5 % of the budget is kept back
    for the rate's drift."""
    if done <= 0 or elapsed_s <= 0:
        return steps
    rate = done / elapsed_s
    return int(max(done, min(steps, done + rate * (0.95 * budget_s - elapsed_s))))


@dataclass(frozen=True)
class StageConfig:
    """Optimiser settings of one stage (``steps`` per adapter in the adapters stage)."""

    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 8
    # > 0: a wall-time budget. After PROBE_STEPS the stage measures its step rate and, when
    # ``steps`` would not fit, shortens its one-cycle schedule to the steps that do (so the
    # learning rate still anneals); the budget also stops the stage outright as a safety net.
    minutes: float = 0.0

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
    # conditional stages: share of rows that start from the noised degraded latent
    degraded_start: float = 0.5
    # weight per dB of the negative output SNR (refined waveform against the clean stem)
    output_loss: float = 0.05
    # share of pairs shown without their mixture (the stem stands in), as `enhance` without one
    mixture_dropout: float = 0.2
    model: StemProverConfig = field(default_factory=StemProverConfig)
    pairs: PairConfig = field(default_factory=PairConfig)
    predictor: StageConfig = field(default_factory=StageConfig)
    autoencoder: StageConfig = field(default_factory=StageConfig)
    base: StageConfig = field(default_factory=StageConfig)
    control: StageConfig = field(default_factory=StageConfig)
    adapters: StageConfig = field(default_factory=StageConfig)
    regression: StageConfig = field(default_factory=StageConfig)

    def __post_init__(self) -> None:
        for name in ("degraded_start", "mixture_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.output_loss < 0:
            raise ValueError(f"output_loss must be >= 0, got {self.output_loss}")


@dataclass
class PairLatents:
    """A batch of pairs prepared for the conditional losses (``b`` mono segments)."""

    feats: torch.Tensor  # degraded features [b, 2, F, T]
    phase: torch.Tensor  # degraded phase features [b, 2, F, T]
    z_deg: torch.Tensor  # [b, latent, F', T']
    z0: torch.Tensor  # target latent (clean; with keep_phase, clean magnitude and output phase)
    z_mix: torch.Tensor | None  # mixture latent (the stem's for dropped-out rows), or None
    clean: torch.Tensor  # clean waveform [b, samples]


def negative_snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-row ``-10 log10(|ref|^2 / |ref - est|^2)`` of ``[b, samples]`` waveforms, in dB."""
    eps = 1e-8
    num = reference.pow(2).sum(-1) + eps
    den = (reference - estimate).pow(2).sum(-1) + eps
    return -10.0 * torch.log10(num / den)


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
        self.latents: dict[str | None, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        # a pool's degraded segments after the predictive stage, per kind
        self.predicted: dict[str | None, np.ndarray] = {}

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

    def run(self, stages: Iterable[str] = STAGES, retrain: Iterable[str] = ()) -> list[StageResult]:
        """Train ``stages`` in order, skipping those already done: in this run folder (resume)
        or in the ``init_from`` file. ``retrain``: stages the ``init_from`` file finished that
        this run trains again (e.g. only the regression control with other settings); a
        resumed run folder keeps what it finished itself."""
        stages, retrain = list(stages), list(retrain)
        bad = [s for s in stages + retrain if s not in STAGES]
        if bad:
            raise ConfigError(f"unknown stage(s) {bad}; stages are {list(STAGES)}")
        torch.set_num_threads(self.config.threads)
        self._write_config()
        if self.model_path.is_file():
            model, extra = load_stemprover(self.model_path)
            done = list(extra.get("stages_done", []))
        elif self.config.init_from:
            model, done = init_from(self.config.init_from, self.config.model)
            done = [s for s in done if s not in retrain]
        else:
            torch.manual_seed(self.config.seed)
            model, done = StemProver(self.config.model), []
        model.to(self.device)
        results = []
        for stage in stages:
            if stage in done:
                continue
            if stage == "predictor" and model.predictor is None:
                done.append(stage)  # nothing to train: the diffusion reads the stem itself
                continue
            result = getattr(self, f"_stage_{stage}")(model)
            results.append(result)
            done.append(stage)
            save_stemprover(self.model_path, model, {"stages_done": done, "name": self.config.name})
        return results

    # ----- helpers --------------------------------------------------------------------------
    def _pool(self, kind: str | None) -> PairPool:
        pairs = self.config.pairs
        if kind not in self.pools:
            size = pairs.pool_size
            if kind in ARTIFACTS and pairs.artifact_pool_size > 0:
                size = pairs.artifact_pool_size
            config = pairs
            if kind == SEPARATOR:
                if pairs.separator_pool_size > 0:
                    size = pairs.separator_pool_size
                if pairs.separator_segment_seconds > 0:
                    config = replace(pairs, segment_seconds=pairs.separator_segment_seconds)
            self.pools[kind] = PairPool(
                config,
                size,
                kind,
                workers=pairs.pool_workers,
                seed=self.config.seed * 1000 + POOL_KINDS.index(kind),
                progress=self.progress,
            )
        return self.pools[kind]

    def _batch(
        self, size: int, kind: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(degraded, clean, mixture) mono segments ``[size, samples]`` on the device."""
        if self.config.pairs.pool_size > 0:
            arrays = self._pool(kind).batch(self.rng, size)
        else:
            arrays = self.sampler.batch(self.rng, size, kind)[:3]
        degraded, clean, mixture = (torch.from_numpy(a).to(self.device) for a in arrays)
        return degraded, clean, mixture

    @torch.no_grad()
    def _pool_latents(
        self, model: StemProver, kind: str | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The latents of every pair of a pool: (degraded, clean, mixture), ``[pool, c, f, t]``.

        The autoencoder is frozen after its stage, so a pool is encoded once: the encoder runs
        at full spectrogram resolution and costs more than a conditional training step.
        """
        if kind not in self.latents:
            pool, parts = self._pool(kind), []
            degraded = self._pool_degraded(model, kind)
            chunks = range(0, len(pool), 16)
            for i in tqdm(chunks, desc="encoding pairs", disable=not self.progress, leave=False):
                rows = [
                    torch.from_numpy(a[i : i + 16]).to(self.device)
                    for a in (degraded, pool.clean, pool.mixture)
                ]
                parts.append(self._encode_pair(model, *rows))
            self.latents[kind] = tuple(torch.cat([p[j] for p in parts]) for j in range(3))
        return self.latents[kind]

    @torch.no_grad()
    def _predicted(
        self, model: StemProver, degraded: torch.Tensor, mixture: torch.Tensor
    ) -> torch.Tensor:
        """The predictive stage's estimates of ``degraded`` ``[b, samples]`` (16 rows at a time);
        ``degraded`` itself for models without one."""
        if model.predictor is None:
            return degraded
        model.predictor.eval()
        return torch.cat(
            [
                model.predictor(degraded[i : i + 16], mixture[i : i + 16])
                for i in range(0, len(degraded), 16)
            ]
        )

    def _pool_degraded(self, model: StemProver, kind: str | None) -> np.ndarray:
        """A pool's degraded segments as the conditional stages see them: after the predictor."""
        pool = self._pool(kind)
        if model.predictor is None:
            return pool.degraded
        if kind not in self.predicted:
            d, m = (torch.from_numpy(a).to(self.device) for a in (pool.degraded, pool.mixture))
            self.predicted[kind] = self._predicted(model, d, m).cpu().numpy()
        return self.predicted[kind]

    def _loop(
        self,
        name: str,
        params: list[torch.nn.Parameter],
        stage: StageConfig,
        loss_fn: Callable[[], torch.Tensor],
        kind: str | None = None,
        model: StemProver | None = None,
    ) -> StageResult:
        if self.config.pairs.pool_size > 0:
            # draw (and, for the conditional stages, encode) the pool now: not the stage's time
            self._pool(kind)
            if model is not None:
                self._pool_latents(model, kind)
        opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=0.0)

        def one_cycle(total: int) -> torch.optim.lr_scheduler.OneCycleLR:
            return torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=stage.lr, total_steps=max(total, 1), pct_start=0.1
            )

        sched, total = one_cycle(stage.steps), stage.steps
        losses: list[float] = []
        start = time.perf_counter()
        bar = tqdm(range(stage.steps), desc=name, disable=not self.progress, leave=False)
        log = (self.run_dir / "metrics.jsonl").open("a")
        try:
            for step in bar:
                elapsed = time.perf_counter() - start
                if stage.minutes and step == PROBE_STEPS:
                    fit = fitted_steps(stage.steps, stage.minutes * 60, step, elapsed)
                    if fit < total:
                        total, sched = fit, one_cycle(fit)
                        for _ in range(step):  # the new schedule resumes where this one is
                            sched.step()
                        log.write(json.dumps({"stage": name, "fitted_steps": fit}) + "\n")
                        bar.total = fit
                if step >= total:
                    break
                if stage.minutes and elapsed > 60 * stage.minutes:
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
                if (step + 1) % self.config.log_every == 0 or step + 1 == total:
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
    def _stage_predictor(self, model: StemProver) -> StageResult:
        assert model.predictor is not None, "run() skips this stage for models without one"
        net = model.predictor.train()
        params = self._trainable(net, model)
        if net.guide_model is not None:  # freeze_all_but unfroze it: the guide stays fixed
            net.guide_model.requires_grad_(False)
            params = [p for p in params if p.requires_grad]
        cfg = self.config.predictor
        # separator pairs (what the predictor refines at inference); simulated ones without a cache
        kind = SEPARATOR if self.sampler.cache is not None else None

        def loss_fn() -> torch.Tensor:
            degraded, clean, mixture = self._batch(cfg.batch_size, kind)
            return negative_snr_db(net(degraded, mixture), clean).mean()

        result = self._loop("predictor", params, cfg, loss_fn, kind=kind)
        net.eval()
        return result

    def _stage_autoencoder(self, model: StemProver) -> StageResult:
        ae = model.autoencoder.train()
        params = self._trainable(ae, model)
        cfg = self.config.autoencoder

        def loss_fn() -> torch.Tensor:
            degraded, clean, _ = self._batch(max(1, cfg.batch_size // 2))
            feats = model.features(torch.cat([degraded, clean])[:, None])
            return F.l1_loss(ae(feats), feats)

        result = self._loop("autoencoder", params, cfg, loss_fn)
        with torch.no_grad():
            clean = self._batch(max(8, cfg.batch_size))[1]
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
            clean = self._batch(cfg.batch_size)[1]
            with torch.no_grad():
                z0 = model.analyse(clean)[2]
            return diffusion_loss(den, z0, model.config.diffusion, generator=self.gen)

        return self._loop("base", params, cfg, loss_fn)

    @torch.no_grad()
    def _encode_pair(
        self, model: StemProver, degraded: torch.Tensor, clean: torch.Tensor, mixture: torch.Tensor
    ) -> list[torch.Tensor]:
        """Latents of degraded, target and mixture segments ``[b, samples]``.

        With ``keep_phase`` the target is the clean *magnitude* with the phase the output will
        have (``model.keep_phase``): the clean stem's own phase differs from the stem's where
        sources overlap and cannot be predicted, and on separator pairs it made up ~80 % of the
        latent difference (0.49 -> 0.10 MSE) while the edit could never use it.
        """
        f_deg, f_clean, f_mix = (model.features(x[:, None]) for x in (degraded, clean, mixture))
        if model.config.keep_phase:
            f_clean = keep_phase(f_clean, f_deg, f_mix)
        return [model.autoencoder.encode(f) for f in (f_deg, f_clean, f_mix)]

    @torch.no_grad()
    def _pair_latents(self, model: StemProver, size: int, kind: str | None = None) -> PairLatents:
        """A batch of pairs, analysed; ``mixture_dropout`` of the rows lose their mixture."""
        if self.config.pairs.pool_size > 0:
            pool = self._pool(kind)
            idx = self.rng.integers(0, len(pool), size)
            degraded, clean = (
                torch.from_numpy(a[idx]).to(self.device)
                for a in (self._pool_degraded(model, kind), pool.clean)
            )
            z_deg, z0, z_mix = (z[torch.from_numpy(idx)] for z in self._pool_latents(model, kind))
        else:
            degraded, clean, mixture = self._batch(size, kind)
            degraded = self._predicted(model, degraded, mixture)
            z_deg, z0, z_mix = self._encode_pair(model, degraded, clean, mixture)
        feats = model.features(degraded[:, None])
        phase = model.features.phase_features(degraded[:, None])
        if not model.config.mixture_condition:
            z_mix = None
        else:
            drop = torch.rand(size, generator=self.gen) < self.config.mixture_dropout
            z_mix = torch.where(drop.to(self.device)[:, None, None, None], z_deg, z_mix)
        return PairLatents(feats, phase, z_deg, z0, z_mix, clean)

    def _output_loss(
        self,
        model: StemProver,
        b: PairLatents,
        z_hat: torch.Tensor,
        rows: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Latent MSE (per-row ``weight``) plus the weighted negative SNR of the decoded edit,
        over ``rows``."""
        err = (z_hat[rows] - b.z0[rows]).pow(2).flatten(1).mean(1)
        latent = (err if weight is None else err * weight[rows]).mean()
        if self.config.output_loss == 0:
            return latent
        n = b.clean.shape[-1]
        out = model.apply_latent_edit(b.feats[rows], b.z_deg[rows], z_hat[rows], n)
        return latent + self.config.output_loss * negative_snr_db(out, b.clean[rows]).mean()

    def _conditional_loss(self, model: StemProver, size: int, kind: str | None) -> torch.Tensor:
        b = self._pair_latents(model, size, kind)
        control = model.condition(b.z_deg, b.phase, b.z_mix)
        v_loss, x0, from_deg, weight = refinement_prediction(
            model.denoiser,
            b.z0,
            b.z_deg,
            model.config.diffusion,
            control,
            self.config.degraded_start,
            self.gen,
        )
        if not from_deg.any():
            return v_loss
        return v_loss + self._output_loss(model, b, x0, from_deg, weight)

    def _stage_control(self, model: StemProver) -> StageResult:
        model.control.train()
        params = self._trainable(model.control, model)
        cfg = self.config.control
        model.set_adapter_weights({})
        return self._loop(
            "control",
            params,
            cfg,
            lambda: self._conditional_loss(model, cfg.batch_size, None),
            model=model,
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
                model=model,
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
            b = self._pair_latents(model, cfg.batch_size)
            z_hat = b.z_deg + net(b.z_deg, b.phase, b.z_mix)
            rows = torch.ones(cfg.batch_size, dtype=torch.bool, device=self.device)
            return self._output_loss(model, b, z_hat, rows)

        result = self._loop("regression", params, cfg, loss_fn, model=model)
        save_regression(net.eval(), self.regression_path)
        return result


def init_from(path: str | Path, config: StemProverConfig) -> tuple[StemProver, list[str]]:
    """A new model of ``config`` with the finished stages of the StemProver file ``path``.

    The autoencoder and base denoiser are taken whenever their shapes fit; the control branch and
    adapters only when the file's model section equals ``config`` (a changed control design, e.g.
    mixture conditioning added, retrains them). Returns (model, stages counted as done).
    """
    try:
        payload = read_stemprover(path)
    except CheckpointError as e:
        raise ConfigError(f"init_from: {e}") from e
    done_there = list(payload["metadata"].get("stages_done", []))
    if payload["config"].get("stemprover") == to_dict(config):
        model, _ = load_stemprover(path)
        return model, done_there
    model = StemProver(config)
    prefixes = sorted({k.split(".", 1)[0] for k in payload["state_dict"]})
    parts = split_state(payload["state_dict"], prefixes)
    try:
        model.autoencoder.load_state_dict(parts.get("autoencoder", {}))
        model.denoiser.load_state_dict(parts.get("denoiser", {}))
    except RuntimeError as e:
        raise ConfigError(
            f"init_from {path}: its autoencoder or denoiser does not fit this config's model "
            f"section ({str(e).splitlines()[0]})"
        ) from e
    return model, [s for s in done_there if s in ("autoencoder", "base")]
