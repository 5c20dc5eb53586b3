"""``task: detect``: train the siren detector in the separator's trainer.

:class:`DetectorTrainer` reuses :class:`~deepsampler.training.trainer.Trainer`'s loop, resume,
checkpoints, metrics.jsonl and TensorBoard logs, and changes what a step computes:

1. A batch of corpus examples (``StemDataset``: remixed stems, the mixture their sum); each
   example is a *negative* with probability ``detect.negative_probability``: its siren stem is
   silenced, so the mixture is background alone (the corpus has a siren in every track).
   A share ``detect.gate_probability`` of the positives has its siren gated
   (:func:`gate_envelopes`): switched on part-way through the example and/or off before its
   end, so that the network learns onsets as a stream presents them (the corpus's sirens mostly
   sound throughout its segments).
2. Frame labels from the (gated) siren stem itself (:func:`frame_labels`), so the corpus needs no
   annotation: positive where the stem is audible and not buried in the mixture.
3. The frozen separator (``detect.separator``, eval mode, no gradients) separates the mixture;
   the network reads the sum of its stems and its siren stem (the inputs it gets at inference,
   see ``deepsampler.detection.detector``), or the mixture alone without a separator.
4. Binary cross-entropy of the frame logits against the labels.

Validation scores frame F1 (probability above ``events.on_threshold``) and ROC AUC on the
valid split, every second segment a negative; ``best.pt`` is the best F1. Checkpoints are
detector checkpoints (``deepsampler.detection.checkpoint``) that name the separator and its
digest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepsampler.detection.checkpoint import DetectionSettings, save_detector
from deepsampler.errors import ConfigError
from deepsampler.models.checkpoint import load_checkpoint
from deepsampler.models.registry import resolve_model
from deepsampler.models.sde import SDEConfig, SDEModel
from deepsampler.training.trainer import Trainer


def frame_labels(
    stem: torch.Tensor,
    mixture: torch.Tensor,
    config: SDEConfig,
    ratio_db: float = -20.0,
    floor_db: float = -60.0,
) -> torch.Tensor:
    """Per-frame labels ``[b, t]`` (0/1 floats) for mono ``stem`` and ``mixture`` ``[b, n]``,
    framed as the network frames them: 1 where the stem's mean power is at least ``floor_db``
    dBFS and at most ``-ratio_db`` dB below the mixture's.

    Why energy: the corpus's siren stem is the truth of where a siren sounds; the ratio keeps
    out the frames where it is buried far under the background (inaudible to anyone), the
    floor the fade-outs and reverb tails of a silent stem.
    """
    n, hop = config.n_fft, config.hop
    if stem.shape[-1] < n:
        return stem.new_zeros(stem.shape[0], 0)
    ps = stem.unfold(-1, n, hop).pow(2).mean(-1)
    pm = mixture.unfold(-1, n, hop).pow(2).mean(-1)
    s_db = 10 * torch.log10(ps + 1e-12)
    m_db = 10 * torch.log10(pm + 1e-12)
    return ((s_db >= floor_db) & (s_db - m_db >= ratio_db)).float()


GATE_RAMP_S = (0.02, 2.0)


def gate_envelopes(gated: torch.Tensor, samples: int, sample_rate: int) -> torch.Tensor:
    """Gains ``[b, samples]`` in [0, 1] for the examples flagged in ``gated [b]`` (bool; the
    others get ones). A gated example's siren is switched on at 10-70 % of the example (half of
    them), off at 30-90 % (a quarter), or on at 10-40 % and off at 60-90 % with at least a
    second at full level between the ramps (a quarter; the fall may then pass the end); each
    switch is a raised-cosine ramp of 20 ms to 2 s (log-uniform: a siren switched on nearby, or
    one approaching from far off). Draws from torch's global generator (saved with the training
    state, so a resume draws the same)."""
    b = gated.shape[0]
    u = torch.rand(b, 5)  # mode, on point, off point, two ramp lengths
    t = torch.arange(samples, dtype=torch.float32) / sample_rate
    seconds = samples / sample_rate
    lo, hi = np.log(GATE_RAMP_S[0]), np.log(GATE_RAMP_S[1])
    ramp_on = torch.exp(lo + (hi - lo) * u[:, 3])
    ramp_off = torch.exp(lo + (hi - lo) * u[:, 4])
    mode = u[:, 0]  # < 0.5: on; < 0.75: off; else both
    on = torch.where(mode < 0.5, 0.1 + 0.6 * u[:, 1], 0.1 + 0.3 * u[:, 1]) * seconds
    off = torch.where(mode < 0.75, 0.3 + 0.6 * u[:, 2], 0.6 + 0.3 * u[:, 2]) * seconds
    off = torch.where(mode >= 0.75, torch.maximum(off, on + ramp_on + 1.0 + ramp_off), off)
    rise = ((t[None] - on[:, None]) / ramp_on[:, None]).clamp(0, 1)
    fall = ((off[:, None] - t[None]) / ramp_off[:, None]).clamp(0, 1)
    switched_on = (mode < 0.5) | (mode >= 0.75)
    rise = torch.where(switched_on[:, None], rise, torch.ones_like(rise))
    fall = torch.where((mode >= 0.5)[:, None], fall, torch.ones_like(fall))
    env = (0.5 - 0.5 * torch.cos(torch.pi * rise)) * (0.5 - 0.5 * torch.cos(torch.pi * fall))
    return torch.where(gated[:, None], env, torch.ones_like(env))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties share their mean rank); NaN without both classes."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(labels).reshape(-1) > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of each distinct value's last copy
    mean_rank = upper - (counts - 1) / 2.0
    ranks = mean_rank[inverse]
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def frame_scores(prob: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Frame precision, recall and F1 of ``prob > threshold`` against 0/1 ``labels``, and
    ROC AUC."""
    pred = np.asarray(prob).reshape(-1) > threshold
    truth = np.asarray(labels).reshape(-1) > 0.5
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    return {
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "auc": roc_auc(prob, labels),
    }


class DetectorTrainer(Trainer):
    """Train a siren detector as a ``task: detect`` config says (see the module docstring)."""

    SCORE = "F1"

    def _model_config(self) -> SDEConfig:
        if self.config.task != "detect":
            raise ConfigError("DetectorTrainer trains task: detect configs")
        return self.config.detector_config()

    def _new_model(self) -> torch.nn.Module:
        return SDEModel(self.model_config).to(self.device)

    def _build(self) -> None:
        super()._build()
        cfg, d = self.config, self.config.detect
        if d.label not in cfg.data.sources:
            raise ConfigError(
                f"detect.label {d.label!r} is not a source of the data ({list(cfg.data.sources)})"
            )
        self.label_index = cfg.data.sources.index(d.label)
        self.separator = None
        self.separator_digest = None
        self.separator_label = 0
        if d.separator is not None:
            loaded = load_checkpoint(resolve_model(d.separator))
            sep_cfg = loaded.model.config
            if d.label not in sep_cfg.sources or sep_cfg.sample_rate != cfg.data.sample_rate:
                raise ConfigError(
                    f"detect.separator {d.separator}: gives {list(sep_cfg.sources)} at "
                    f"{sep_cfg.sample_rate} Hz; the detector needs its {d.label!r} stem at "
                    f"data.sample_rate {cfg.data.sample_rate} Hz"
                )
            if not sep_cfg.causal:
                raise ConfigError(f"detect.separator {d.separator}: is not causal (streaming)")
            self.separator = loaded.model.to(self.device).eval().requires_grad_(False)
            self.separator_digest = loaded.digest
            self.separator_label = sep_cfg.sources.index(d.label)

    # ---- a batch -------------------------------------------------------------------------
    @torch.no_grad()
    def _inputs(
        self,
        batch: dict[str, torch.Tensor],
        negative: torch.Tensor,
        gain: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The network's inputs (mono mixture ``[b, n]``, siren stem or None) and the frame
        labels ``[b, t]`` of a batch whose examples flagged in ``negative [b]`` lose their
        siren, and whose siren is scaled by ``gain [b, n]`` (the gate envelopes) if given."""
        d = self.config.detect
        stems = batch["stems"].to(self.device).clone()  # [b, s, c, n]; the batch stays as it is
        keep = (~negative).to(stems.dtype).to(self.device)[:, None, None]
        if gain is not None:
            keep = keep * gain[:, None, :].to(stems)
        stems[:, self.label_index] *= keep
        mixture = stems.sum(1)  # [b, c, n]
        labels = frame_labels(
            stems[:, self.label_index].mean(1),
            mixture.mean(1),
            self.model_config,
            d.label_ratio_db,
            d.label_floor_db,
        )
        if self.separator is None:
            return mixture.mean(1), None, labels
        sep_channels = self.separator.config.audio_channels
        if mixture.shape[1] != sep_channels:
            mixture = mixture.mean(1, keepdim=True).expand(-1, sep_channels, -1)
        est = self.separator(mixture.contiguous())  # [b, s, c, n]
        # the mixture the network reads is the sum of the stems, as at inference
        return est.sum(1).mean(1), est[:, self.separator_label].mean(1), labels

    def _batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b = batch["stems"].shape[0]
        # torch's global generator: saved with the training state, so a resume draws the same
        negative = torch.rand(b) < self.config.detect.negative_probability
        gain = None
        if self.config.detect.gate_probability > 0:  # no extra draw: ungated runs stay as they were
            gated = (torch.rand(b) < self.config.detect.gate_probability) & ~negative
            if gated.any():
                samples = batch["stems"].shape[-1]
                gain = gate_envelopes(gated, samples, self.config.data.sample_rate)
        mixture, siren, labels = self._inputs(batch, negative, gain)
        logits = self.net(mixture, siren)
        weight = torch.tensor(self.config.detect.pos_weight, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)

    # ---- validation and checkpoints ------------------------------------------------------
    @torch.inference_mode()
    def _scores(self) -> dict[str, Any]:
        model = self.eval_model()
        was_training = model.training
        model.eval()
        probs, labels, seen = [], [], 0
        for batch in self.valid_loader:
            b = batch["stems"].shape[0]
            # every second segment a negative (when training uses negatives): fixed, balanced
            index = torch.arange(seen, seen + b)
            negative = (index % 2 == 1) & (self.config.detect.negative_probability > 0)
            seen += b
            mixture, siren, lab = self._inputs(batch, negative)
            probs.append(model(mixture, siren).sigmoid().float().cpu().numpy().reshape(-1))
            labels.append(lab.cpu().numpy().reshape(-1))
        model.train(was_training)
        p, y = np.concatenate(probs), np.concatenate(labels)
        scores = frame_scores(p, y, self.config.detect.events.on_threshold)
        eps = 1e-7
        scores["loss"] = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
        scores["positive_fraction"] = float(y.mean())
        return scores

    def _validate(self, writer: Any) -> dict[str, Any] | None:
        if not self.dist.is_main:
            return None
        scores = self._scores()
        improved = self.best_sdr is None or scores["f1"] > self.best_sdr
        if improved:
            self.best_sdr, self.best_step = scores["f1"], self.step
            self._save_model(
                self.run_dir / "checkpoints" / "best.pt",
                self.eval_model(),
                self.training_record(scores),
                "validation frame F1",
            )
        line = {
            "step": self.step,
            "train_hours": round(self.train_seconds / 3600, 4),
            **{k: round(v, 5) for k, v in scores.items()},
            "best": improved,
        }
        with (self.run_dir / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        if writer is not None:
            for key in ("f1", "precision", "recall", "auc", "loss"):
                writer.add_scalar(f"valid/{key}", scores[key], self.step)
            writer.flush()
        return line

    def _validation_summary(self, line: dict[str, Any]) -> str:
        return (
            f"step {self.step}: valid frame F1 {line['f1']:.3f} (precision "
            f"{line['precision']:.3f}, recall {line['recall']:.3f}), AUC {line['auc']:.3f}"
            + (" (best)" if line["best"] else "")
        )

    def training_record(self, valid: dict[str, Any] | None) -> dict[str, Any]:
        record = super().training_record(None)
        record["separator"] = self.config.detect.separator
        record["separator_digest"] = self.separator_digest
        if valid is not None:
            record["valid"] = {
                k: valid[k] for k in ("f1", "precision", "recall", "auc", "loss") if k in valid
            }
        return record

    def _save_model(
        self, path: Path, model: torch.nn.Module, record: dict[str, Any], selected_on: str
    ) -> None:
        d = self.config.detect
        settings = DetectionSettings(
            label=d.label,
            separator=d.separator,
            separator_digest=self.separator_digest,
            events=d.events,
        )
        save_detector(
            path,
            model,
            settings,
            training=record,
            metadata={"name": self.config.name, "selected_on": selected_on},
        )
