#!/usr/bin/env python
"""Same data, same budget: DeepSampler (rt, hq) against Open-Unmix (unidirectional LSTM),
HS-TasNet (small) and BS-RoFormer (small), each trained for MINUTES of wall clock on the same
stream of training mixtures with the same loss (L1 on the waveform), then evaluated on the same
synthetic test split and on ../shared/eval/real-music.

Training data, with ``--train-config configs/<name>.yaml``: the corpus that config trains on,
read exactly as ``deepsampler train`` reads it: batches of ``batch_size`` examples of
``StemDataset(data_root, train_split, data, train=True)``, sequential indices, ``set_epoch``
at each epoch, no loader workers; every system sees the same sequence. The DeepSampler systems
are the config's model (rt as configured, hq the same with ``causal: false``), and every system
uses the config's optimizer settings (AdamW lr / weight decay / betas, warm-up, cosine decay to
``min_lr_ratio`` over the wall-clock budget, gradient clipping) and weight EMA (``ema_decay``,
the EMA weights are evaluated), as the trainer does. The synthetic test split is ``--test-data``
(default ``data_root/test``); pick one held out from the training split.

Without ``--train-config``: the procedural toy mixtures (deepsampler.data.toy, one fresh seed
per example), batch ``--batch`` x ``--seconds``, AdamW at 1e-3 with a cosine over the budget and
no EMA; the synthetic test split is ``--test-data`` or 6 held-out toy tracks written to
OUT/test-split in the MUSDB18-HQ layout.

Prints a Markdown table and writes OUT/peers.json (one record per system: scores, steps,
examples seen, minutes, training data) and OUT/peers.md.

    bash scripts/install_peers.sh
    .venv/bin/python benchmarks/peers.py --minutes 30 --out experiments/peers
    .venv/bin/python benchmarks/peers.py --train-config configs/music4-rt.yaml \
        --test-data data/music4-2h/test --systems hs-tasnet --minutes 60 --out experiments/peers
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_stubs  # noqa: E402,F401  (before the peer packages)

from deepsampler.audio import ChunkedOverlapAdd  # noqa: E402
from deepsampler.data.dataset import StemDataset  # noqa: E402
from deepsampler.data.toy import TOY_SOURCES, toy_stems  # noqa: E402
from deepsampler.evaluation.evaluate import evaluate  # noqa: E402
from deepsampler.models import DeepSampler, preset_config  # noqa: E402
from deepsampler.training.config import TrainConfig, load_train_config  # noqa: E402
from deepsampler.training.distributed import ResumableSampler  # noqa: E402
from deepsampler.training.losses import multisrc_l1_waveform  # noqa: E402
from deepsampler.training.trainer import ema_with_warmup  # noqa: E402

SR = 44100
TEST_SEEDS = range(2_000_000, 2_000_006)
SYSTEMS = ("deepsampler-rt", "deepsampler-hq", "openunmix-rt", "hs-tasnet", "bs-roformer")


class PadToMultiple(torch.nn.Module):
    """Pads the input to a multiple of ``hop`` for models that cut their output to one, and
    takes the separated sources out of models that return a tuple."""

    def __init__(self, model: torch.nn.Module, hop: int) -> None:
        super().__init__()
        self.model, self.hop = model, hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        y = self.model(F.pad(x, (0, (-n) % self.hop + self.hop)))
        y = y[0] if isinstance(y, tuple) else y
        return y[..., :n]


def build(
    name: str, sources: tuple[str, ...], cfg: TrainConfig | None = None
) -> tuple[torch.nn.Module, float | None]:
    """The system's model ``[b, c, n] -> [b, s, c, n]`` for ``sources`` and its algorithmic
    latency (ms, None for offline systems). The DeepSampler systems are ``cfg``'s model when
    given (hq: the same, non-causal), the small preset otherwise."""
    if name in ("deepsampler-rt", "deepsampler-hq"):
        mc = cfg.model_config() if cfg else preset_config("small", sources=list(sources))
        if name == "deepsampler-hq":
            mc = mc.replace(causal=False, lookahead=0)
        m = DeepSampler(mc)
        return m, m.config.latency_ms if m.config.causal else None
    if name == "openunmix-rt":
        import openunmix.model as umx

        targets = {
            s: umx.OpenUnmix(
                nb_bins=2049,
                nb_channels=2,
                hidden_size=128,
                nb_layers=3,
                unidirectional=True,
                max_bin=1487,
            )
            for s in sources
        }
        return umx.Separator(
            targets, niter=0, softmask=True, n_fft=4096, n_hop=1024, nb_channels=2, sample_rate=SR
        ), 1000 * 4096 / SR
    if name == "hs-tasnet":
        from hs_tasnet import HSTasNet

        model = HSTasNet(dim=128, small=True, num_basis=256, num_sources=len(sources))
        return PadToMultiple(model, 512), 1000 * 1024 / SR
    if name == "bs-roformer":
        from bs_roformer import BSRoformer

        model = BSRoformer(
            dim=64,
            depth=4,
            stereo=True,
            num_stems=len(sources),
            heads=4,
            dim_head=32,
            num_residual_streams=1,
            flash_attn=False,
            mask_estimator_depth=1,
        )
        return PadToMultiple(model, 512), None
    raise ValueError(name)


def toy_batches(size: int, seconds: float):
    """Endless ``(mixture [b, c, n], stems [b, s, c, n])`` toy batches, one seed per example."""
    step = 0
    while True:
        stems = [toy_stems(seconds, SR, 2, seed=step * size + i) for i in range(size)]
        ref = torch.from_numpy(np.stack([np.stack([s[k] for k in TOY_SOURCES]) for s in stems]))
        yield ref.sum(1), ref
        step += 1


def corpus_batches(cfg: TrainConfig, dataset: StemDataset):
    """Endless batches of ``dataset`` in the order ``deepsampler train`` draws them (one
    process, no workers): epoch ``e`` is items ``0, 1, ...`` of ``set_epoch(e)`` in whole
    batches of ``cfg.batch_size``."""
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=ResumableSampler(len(dataset), cfg.batch_size, 0, 1),
            num_workers=0,
            drop_last=True,
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )
        for item in loader:
            yield item["mixture"], item["stems"]
        epoch += 1


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Optimizer settings; the learning rate warms up over ``warmup_steps`` then follows a
    cosine over the wall-clock budget down to ``lr * min_lr_ratio``."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0
    grad_clip: float = 5.0
    ema_decay: float = 0.0

    @classmethod
    def of(cls, cfg: TrainConfig) -> Recipe:
        o = cfg.optim
        return cls(
            lr=o.lr,
            weight_decay=o.weight_decay,
            betas=tuple(o.betas),
            warmup_steps=o.warmup_steps,
            min_lr_ratio=o.min_lr_ratio,
            grad_clip=o.grad_clip,
            ema_decay=cfg.ema_decay,
        )


def train(
    model: torch.nn.Module, minutes: float, batches, recipe: Recipe
) -> tuple[torch.nn.Module, int, int, float]:
    """Train for ``minutes`` of wall clock (data included); returns the model to evaluate (the
    EMA weights when ``recipe.ema_decay`` > 0), steps, examples seen and minutes taken."""
    r = recipe
    opt = torch.optim.AdamW(
        model.parameters(), lr=r.lr, weight_decay=r.weight_decay, betas=tuple(r.betas)
    )
    ema = (
        AveragedModel(model, multi_avg_fn=ema_with_warmup(r.ema_decay), use_buffers=True)
        if r.ema_decay > 0
        else None
    )
    budget, start, step, examples = minutes * 60, time.time(), 0, 0
    model.train()
    while time.time() - start < budget:
        frac = (time.time() - start) / budget
        warm = min(1.0, (step + 1) / r.warmup_steps) if r.warmup_steps else 1.0
        cosine = r.min_lr_ratio + (1 - r.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = r.lr * warm * cosine
        mix, ref = next(batches)
        loss = multisrc_l1_waveform(model(mix), ref)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step + 1}: loss is {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if r.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        step += 1
        examples += mix.shape[0]
    taken = (time.time() - start) / 60
    out = ema.module if ema is not None else model
    out.eval()
    return out, step, examples, taken


def write_test_split(folder: Path) -> Path:
    for seed in TEST_SEEDS:
        track = folder / f"toy{seed}"
        if (track / "mixture.wav").exists():
            continue
        track.mkdir(parents=True, exist_ok=True)
        stems = toy_stems(6.0, SR, 2, seed=seed)
        for s, x in stems.items():
            sf.write(str(track / f"{s}.wav"), x.T, SR, subtype="FLOAT")
        sf.write(str(track / "mixture.wav"), sum(stems.values()).T, SR, subtype="FLOAT")
    return folder


def separate_fn(model: torch.nn.Module, sources: tuple[str, ...]):
    """Chunked separation (10 s chunks, 1 s cross-fade) of a ``[c, n]`` 44.1 kHz mixture."""

    @torch.inference_mode()
    def run(chunk: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(chunk))[None].float())[0].numpy()

    def separate(mixture: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        if sample_rate != SR:
            raise ValueError(f"expected {SR} Hz data, got {sample_rate}")
        x = np.repeat(mixture, 2, axis=0) if mixture.shape[0] == 1 else mixture
        proc = ChunkedOverlapAdd(run, 10 * SR, SR)
        y = np.concatenate(proc.push(x) + proc.finish(), axis=-1)
        return {s: y[i] for i, s in enumerate(sources)}

    return separate


def rtf_1thread(model: torch.nn.Module) -> float:
    torch.set_num_threads(1)
    x = torch.randn(1, 2, 10 * SR) * 0.1
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(3):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) / 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget per system")
    ap.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}"
    )
    ap.add_argument(
        "--train-config",
        type=Path,
        help="train every system on this training config's corpus, batches and optimizer "
        "settings (e.g. configs/music4-rt.yaml); default: the toy mixtures",
    )
    ap.add_argument(
        "--test-data",
        type=Path,
        help="synthetic test split (MUSDB18-HQ layout); default: DATA_ROOT/test with "
        "--train-config, else 6 toy tracks written to OUT/test-split",
    )
    ap.add_argument("--batch", type=int, help="toy batch size (default 4; not with --train-config)")
    ap.add_argument(
        "--seconds", type=float, help="toy example length (default 3; not with --train-config)"
    )
    ap.add_argument(
        "--threads", type=int, help="torch threads (default: the config's threads, else 2)"
    )
    ap.add_argument("--real", type=Path, default=Path("../shared/eval/real-music"))
    ap.add_argument("--out", type=Path, default=Path("experiments/peers"))
    args = ap.parse_args()

    names = [n.strip() for n in args.systems.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SYSTEMS))
    if unknown or not names:
        ap.error(f"--systems: unknown {unknown}; choose from {', '.join(SYSTEMS)}")
    cfg = dataset = None
    if args.train_config is not None:
        if args.batch is not None or args.seconds is not None:
            ap.error("--batch / --seconds are for the toy data; the config sets them")
        cfg = load_train_config(args.train_config)
        if cfg.data.sample_rate != SR or cfg.data.channels != 2:
            ap.error(f"peers run on {SR} Hz stereo; the config's data is not")
        sources = tuple(cfg.data.sources)
        recipe = Recipe.of(cfg)
        threads = args.threads or cfg.threads or 2
        dataset = StemDataset(cfg.data_root, cfg.train_split, cfg.data, train=True)
        train_data = str(Path(cfg.data_root) / cfg.train_split)
        batch_size, seconds = cfg.batch_size, cfg.data.segment_seconds
        seed = cfg.seed
    else:
        sources, recipe, threads = TOY_SOURCES, Recipe(), args.threads or 2
        train_data = "toy (deepsampler.data.toy)"
        batch_size, seconds, seed = args.batch or 4, args.seconds or 3.0, 0

    args.out.mkdir(parents=True, exist_ok=True)
    if args.test_data is not None:
        test_split = args.test_data
    elif cfg is not None:
        test_split = Path(cfg.data_root) / "test"
    else:
        test_split = write_test_split(args.out / "test-split")
    if not test_split.is_dir():
        ap.error(f"test data {test_split} is not a folder")
    setup = {
        "train_config": str(args.train_config) if args.train_config else None,
        "train_data": train_data,
        "batch_size": batch_size,
        "segment_seconds": seconds,
        "recipe": dataclasses.asdict(recipe),
        "threads": threads,
        "test_data": str(test_split),
        "real_data": str(args.real) if args.real.is_dir() else None,
    }
    print(json.dumps(setup), flush=True)
    rows = []
    for name in names:
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        model, latency = build(name, sources, cfg)
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params / 1e6:.2f} M parameters, training {args.minutes:g} min", flush=True)
        batches = (
            corpus_batches(cfg, dataset) if cfg is not None else toy_batches(batch_size, seconds)
        )
        model, steps, examples, taken = train(model, args.minutes, batches, recipe)
        torch.set_num_threads(threads)
        row = {
            "system": name,
            "parameters": params,
            "latency_ms": latency,
            "steps": steps,
            "examples": examples,
            "minutes": args.minutes,
            "minutes_taken": round(taken, 3),
            **setup,
            "rtf_1thread": round(rtf_1thread(model), 4),
        }
        torch.set_num_threads(threads)
        for label, data in (("synthetic", test_split), ("real", args.real)):
            if not Path(data).is_dir():
                continue
            summary = evaluate(
                separate_fn(model, sources),
                data,
                args.out / name / label,
                sources=sources,
                n_fft=1024,
                hop=512,
                model_name=name,
                latency_ms=latency or 0.0,
                progress=False,
                baselines=not rows,
            )
            row[label] = {s: summary["scores"][s]["sdr"] for s in (*sources, "mean")}
            if not rows:  # floor and oracle rows once, from the first system's run
                for base in ("mixture", "irm1", "irm2"):
                    row.setdefault("baselines", {}).setdefault(base, {})[label] = {
                        s: summary["baselines"][base][s]["sdr"] for s in (*sources, "mean")
                    }
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "peers.json").write_text(json.dumps(rows, indent=2))
    table = markdown(rows, sources)
    (args.out / "peers.md").write_text(table)
    print(table)


def markdown(rows: list[dict], sources: tuple[str, ...] = TOY_SOURCES) -> str:
    head = (
        "| system | params | latency | RTF 1 thread | steps | synthetic: "
        + " / ".join(sources)
        + " | synth mean | real: "
        + " / ".join(sources)
        + " | real mean |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]

    def cells(scores: dict | None) -> tuple[str, str]:
        if not scores:
            return "—", "—"
        return " / ".join(f"{scores[s]:.2f}" for s in sources), f"{scores['mean']:.2f}"

    for r in rows:
        lat = f"{r['latency_ms']:.1f} ms" if r["latency_ms"] else "offline"
        syn, syn_m = cells(r.get("synthetic"))
        real, real_m = cells(r.get("real"))
        lines.append(
            f"| {r['system']} | {r['parameters'] / 1e6:.2f} M | {lat} | "
            f"{r['rtf_1thread']:.3f} | {r['steps']} | {syn} | {syn_m} | {real} | {real_m} |"
        )
    base = rows[0].get("baselines", {}) if rows else {}
    for name, key in (
        ("mixture (floor)", "mixture"),
        ("oracle IRM1", "irm1"),
        ("oracle IRM2", "irm2"),
    ):
        if key in base:
            syn, syn_m = cells(base[key].get("synthetic"))
            real, real_m = cells(base[key].get("real"))
            lines.append(f"| {name} | | | | | {syn} | {syn_m} | {real} | {real_m} |")
    lines += [
        "",
        "| system | train config | training data | batch | steps | examples | minutes "
        "(budget / taken) | synthetic test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r.get('train_config') or 'toy'} | {r.get('train_data', 'toy')} "
            f"| {r.get('batch_size', '')} x {r.get('segment_seconds', '')} s | {r['steps']} "
            f"| {r.get('examples', '')} | {r['minutes']:g} / {r.get('minutes_taken', '')} "
            f"| {r.get('test_data', '')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
