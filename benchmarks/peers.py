#!/usr/bin/env python
"""Same data, same budget: DeepSampler (rt, hq) against Open-Unmix (unidirectional LSTM),
HS-TasNet (small) and BS-RoFormer (small), each trained for MINUTES of wall clock on the same
stream of training mixtures with the same loss (L1 on the waveform), then evaluated on the same
synthetic test split and on ../shared/eval/real-music.

Training data: the procedural toy mixtures (deepsampler.data.toy, one fresh seed per example,
the same sequence for every system) until the synthetic corpus lands; the synthetic test split
is 6 held-out toy tracks written in the MUSDB18-HQ layout. Prints a Markdown table and writes
OUT/peers.json and OUT/peers.md.

    bash scripts/install_peers.sh
    .venv/bin/python benchmarks/peers.py --minutes 30 --out experiments/peers
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_stubs  # noqa: E402,F401  (before the peer packages)

from deepsampler.audio import ChunkedOverlapAdd  # noqa: E402
from deepsampler.data.toy import TOY_SOURCES, toy_stems  # noqa: E402
from deepsampler.evaluation.evaluate import evaluate  # noqa: E402
from deepsampler.models import DeepSampler, preset_config  # noqa: E402
from deepsampler.training.losses import multisrc_l1_waveform  # noqa: E402

SR = 44100
TEST_SEEDS = range(2_000_000, 2_000_006)


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


def build(name: str) -> tuple[torch.nn.Module, float | None]:
    """The system's model ``[b, c, n] -> [b, s, c, n]`` and its algorithmic latency (ms, None
    for offline systems)."""
    if name == "deepsampler-rt":
        m = DeepSampler(preset_config("small", sources=list(TOY_SOURCES)))
        return m, m.config.latency_ms
    if name == "deepsampler-hq":
        return DeepSampler(preset_config("small", sources=list(TOY_SOURCES), causal=False)), None
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
            for s in TOY_SOURCES
        }
        return umx.Separator(
            targets, niter=0, softmask=True, n_fft=4096, n_hop=1024, nb_channels=2, sample_rate=SR
        ), 1000 * 4096 / SR
    if name == "hs-tasnet":
        from hs_tasnet import HSTasNet

        return PadToMultiple(HSTasNet(dim=128, small=True, num_basis=256), 512), 1000 * 1024 / SR
    if name == "bs-roformer":
        from bs_roformer import BSRoformer

        model = BSRoformer(
            dim=64,
            depth=4,
            stereo=True,
            num_stems=4,
            heads=4,
            dim_head=32,
            num_residual_streams=1,
            flash_attn=False,
            mask_estimator_depth=1,
        )
        return PadToMultiple(model, 512), None
    raise ValueError(name)


def batch(step: int, size: int, seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
    stems = [toy_stems(seconds, SR, 2, seed=step * size + i) for i in range(size)]
    ref = torch.from_numpy(np.stack([np.stack([s[k] for k in TOY_SOURCES]) for s in stems]))
    return ref.sum(1), ref


def train(model: torch.nn.Module, minutes: float, batch_size: int, seconds: float) -> int:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    budget, start, step = minutes * 60, time.time(), 0
    model.train()
    while time.time() - start < budget:
        frac = (time.time() - start) / budget
        for g in opt.param_groups:
            g["lr"] = 1e-3 * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * frac))
        mix, ref = batch(step, batch_size, seconds)
        loss = multisrc_l1_waveform(model(mix), ref)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
    model.eval()
    return step


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


def separate_fn(model: torch.nn.Module):
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
        return {s: y[i] for i, s in enumerate(TOY_SOURCES)}

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
        "--systems", default="deepsampler-rt,deepsampler-hq,openunmix-rt,hs-tasnet,bs-roformer"
    )
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--real", type=Path, default=Path("../shared/eval/real-music"))
    ap.add_argument("--out", type=Path, default=Path("experiments/peers"))
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    test_split = write_test_split(args.out / "test-split")
    rows = []
    for name in args.systems.split(","):
        torch.manual_seed(0)
        torch.set_num_threads(2)
        model, latency = build(name)
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params / 1e6:.2f} M parameters, training {args.minutes:g} min", flush=True)
        steps = train(model, args.minutes, args.batch, args.seconds)
        torch.set_num_threads(2)
        row = {
            "system": name,
            "parameters": params,
            "latency_ms": latency,
            "steps": steps,
            "minutes": args.minutes,
            "rtf_1thread": round(rtf_1thread(model), 4),
        }
        torch.set_num_threads(2)
        for label, data in (("synthetic", test_split), ("real", args.real)):
            if not Path(data).is_dir():
                continue
            summary = evaluate(
                separate_fn(model),
                data,
                args.out / name / label,
                sources=TOY_SOURCES,
                n_fft=1024,
                hop=512,
                model_name=name,
                latency_ms=latency or 0.0,
                progress=False,
                baselines=not rows,
            )
            row[label] = {s: summary["scores"][s]["sdr"] for s in (*TOY_SOURCES, "mean")}
            if not rows:  # floor and oracle rows once, from the first system's run
                for base in ("mixture", "irm1", "irm2"):
                    row.setdefault("baselines", {}).setdefault(base, {})[label] = {
                        s: summary["baselines"][base][s]["sdr"] for s in (*TOY_SOURCES, "mean")
                    }
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "peers.json").write_text(json.dumps(rows, indent=2))
    table = markdown(rows)
    (args.out / "peers.md").write_text(table)
    print(table)


def markdown(rows: list[dict]) -> str:
    head = (
        "| system | params | latency | RTF 1 thread | steps | synthetic: "
        + " / ".join(TOY_SOURCES)
        + " | synth mean | real: "
        + " / ".join(TOY_SOURCES)
        + " | real mean |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]

    def cells(scores: dict | None) -> tuple[str, str]:
        if not scores:
            return "—", "—"
        return " / ".join(f"{scores[s]:.2f}" for s in TOY_SOURCES), f"{scores['mean']:.2f}"

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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
