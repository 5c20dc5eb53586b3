r"""Pack what a lent GPU machine needs to train a config, and carry runs between the machines.

``pack`` (here, before the device call) writes ``DEST`` (default ``.devdata/<config file
stem>``, which ``scripts/gpu_train.sh`` reads):

    .venv/bin/python scripts/gpu_pack.py pack --config configs/music4-rt.yaml [KEY=VALUE ...] \
        [--tracks 24] [--valid-tracks 6] [--seconds 4] [--vorbis 0.3] [--init CHECKPOINT]

- ``DEST/<train_split>/``, ``DEST/<valid_split>/``: excerpts of the config's corpus
  (``data_root``, its ``data.sources``; mono when ``data.channels`` is 1; no mixture, which
  ``scripts/unpack_excerpts.py`` writes back as the sum of the stems), by
  ``scripts/pack_excerpts.py``;
- ``DEST/init/``: where the GPU run starts. A training state (a run's ``checkpoints/last.pt``) is
  copied as ``init/last.pt`` and the GPU run continues it (its step, optimizer, EMA). A model
  checkpoint (``best.pt``, ``stages/*.pt``, a shipped name) becomes the run's ``init_from``: a
  file the working tree carries anyway (tracked by git) or a shipped model's name is only named in
  ``init/init_from.txt``, any other file is copied as ``init/init.pt``. Either is checked against
  the config's model here, not after a device start;
- ``DEST/pack.json``: what was packed.

Then it prints what the device call sends: the working tree (git's tracked and
untracked-not-ignored files), ``DEST`` and ``.whl/``, and refuses, removing ``DEST``, when that is
over ``--budget-mib`` (the device tool's 64 MiB). The wheels the GPU image lacks are listed with
the command that fetches them.

``resume`` (wherever a run continues on another machine: the GPU with a state packed here, here
with the ``last.pt`` a GPU run returned) writes ``OUT/checkpoints/last.pt`` so that
``deepsampler train --config CONFIG --out OUT [KEY=VALUE ...]`` with the same overrides resumes
it at its step:

    .venv/bin/python scripts/gpu_pack.py resume RETURNED/last.pt --config configs/music4-rt.yaml \
        --out experiments/music4-rt [KEY=VALUE ...]

The trainer refuses to resume a run under another config (a changed batch size, corpus folder or
device would silently change what it trains). ``resume`` makes that change explicit: the state's
config becomes the new one, the weights, EMA, optimizer moments, scheduler step, RNGs and
training time are kept, and where anything but how the run is carried out changed, the run starts
its next epoch (the position inside an epoch means nothing under another batch size or corpus),
the optimizer takes the new ``optim`` settings, and, where the validation set changed, the best
score is forgotten (the first validation here writes ``best.pt``). A state the GPU returned split
in parts (``last.pt.part00``, ...: the device tool returns files up to 16 MiB) is joined.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# the sibling script that packs one split (scripts/ is on sys.path when this one runs)
from pack_excerpts import pack_split

from deepsampler.config import from_dict, to_dict
from deepsampler.errors import DeepSamplerError
from deepsampler.models.checkpoint import load_checkpoint
from deepsampler.models.deepsampler import DeepSampler
from deepsampler.models.registry import resolve_model, shipped_models
from deepsampler.training.config import TrainConfig, load_train_config
from deepsampler.training.schedule import warmup_cosine
from deepsampler.training.state import load_state, save_state

# the trainer's own comparison, so that resume changes exactly what it would refuse
from deepsampler.training.trainer import RESUMABLE_CHANGES, _config_differences

REPO = Path(__file__).resolve().parents[1]
BUDGET_MIB = 64.0  # the device tool's limit on what one call sends
MiB = 2**20
# distributions deepsampler's training imports that the GPU image lacks (KINDS.md's list)
GPU_WHEELS = (
    "soundfile",
    "cffi",
    "pycparser",
    "soxr",
    "rotary-embedding-torch",
    "array-api-compat",
)


# ---- sizes ---------------------------------------------------------------------------------------
def folder_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 if it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def tree_bytes(repo: Path, leave_out: list[Path]) -> int | None:
    """Bytes of the files a device call sends by themselves: git's tracked and
    untracked-not-ignored files of ``repo``, less those under ``leave_out`` (counted apart).
    None where ``repo`` is no git checkout."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "-co", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    skip = [p.resolve() for p in leave_out]
    total = 0
    for name in listing.decode().split("\0"):
        path = repo / name
        if not name or not path.is_file() or path.is_symlink():
            continue  # deleted tracked files do not travel; a link travels as a link
        if any(path.resolve().is_relative_to(s) for s in skip):
            continue
        total += path.stat().st_size
    return total


def is_ignored(repo: Path, path: Path) -> bool:
    """Whether git ignores ``path`` in ``repo`` (False outside a checkout)."""
    result = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "-q", str(path.resolve())], capture_output=True
    )
    return result.returncode == 0


def is_tracked(repo: Path, path: Path) -> bool:
    """Whether ``path`` is a file git tracks in ``repo`` (so it travels with the working tree)."""
    try:
        rel = path.resolve().relative_to(repo.resolve())
    except ValueError:
        return False
    result = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "--error-unmatch", str(rel)], capture_output=True
    )
    return result.returncode == 0


def wheel_note(repo: Path) -> str | None:
    """A note naming the wheels ``repo/.whl`` lacks for the GPU image, with the command that
    fetches this environment's versions of them (None when all are there)."""
    have = {p.name.split("-")[0].lower() for p in (repo / ".whl").glob("*.whl")}
    missing = [w for w in GPU_WHEELS if w.replace("-", "_") not in have]
    if not missing:
        return None
    pins = []
    for name in missing:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    platforms = " ".join(
        f"--platform {p}"
        for p in (
            "manylinux_2_28_x86_64",
            "manylinux_2_27_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
            "manylinux1_x86_64",
        )
    )
    return (
        f"the GPU image lacks {', '.join(missing)}; fetch wheels into .whl/ (and carry it):\n"
        f"  echo /.whl/ >> .git/info/exclude\n"
        f"  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 "
        f"--implementation cp {platforms} -d .whl {' '.join(pins)}"
    )


# ---- checkpoints ---------------------------------------------------------------------------------
def read_state(path: Path) -> dict[str, Any]:
    """The training state at ``path``, or joined from ``path.part*`` (the pieces gpu_train.sh
    cuts a file over the device tool's 16 MiB into) where ``path`` itself is absent."""
    if path.is_file():
        return load_state(path)
    parts = sorted(path.parent.glob(f"{path.name}.part*"))
    if not parts:
        raise SystemExit(f"{path}: not found (nor {path.name}.part00, ...)")
    with tempfile.TemporaryDirectory() as tmp:  # load_state checks the format and version
        joined = Path(tmp) / path.name
        with joined.open("wb") as fh:
            for part in parts:
                fh.write(part.read_bytes())
        try:
            return load_state(joined)
        except DeepSamplerError as exc:
            raise SystemExit(f"{path}: its {len(parts)} parts make no state ({exc})") from None


def _network(config: dict[str, Any]) -> dict[str, Any]:
    """What a config trains, as a plain dict: its task and its network's config."""
    cfg = from_dict(TrainConfig, config)
    net = cfg.detector_config() if cfg.task == "detect" else cfg.model_config()
    return {"task": cfg.task, "network": to_dict(net)}


def check_state_fits(state: dict[str, Any], config: TrainConfig, where: Path) -> None:
    """Refuse a state whose network is not the one ``config`` trains (or that lacks the EMA
    ``config`` keeps: its average would restart from random weights)."""
    if _network(state["config"]) != _network(to_dict(config)):
        raise SystemExit(
            f"{where}: a state of another network than {config.name}'s config trains "
            "(model preset, model, data sources/rate/channels or task differ)"
        )
    if config.ema_decay > 0 and state.get("ema") is None:
        raise SystemExit(f"{where}: has no EMA of the weights; resume with ema_decay=0")


def check_model_fits(init: str, config: TrainConfig) -> None:
    """Refuse an ``init_from`` model whose weights do not fit the config's network (the trainer
    would find out only on the GPU machine)."""
    from deepsampler.training.transfer import transfer_weights

    if config.task == "detect":
        raise SystemExit("--init: a detect run starts from a state only (it takes no init_from)")
    try:
        loaded = load_checkpoint(resolve_model(init))
        transfer_weights(loaded.model.state_dict(), DeepSampler(config.model_config()))
    except DeepSamplerError as exc:
        raise SystemExit(f"--init {init}: {exc}") from None


# ---- pack ----------------------------------------------------------------------------------------
def pack(args: argparse.Namespace) -> Path:
    """Write the packed corpus (and init) to ``args.dest``; refuse it when over the budget."""
    config = load_train_config(args.config, args.overrides)
    repo = args.tree.resolve()
    dest = args.dest or repo / ".devdata" / Path(args.config).stem
    if dest.exists():
        if any(dest.iterdir()) and not (dest / "pack.json").is_file():
            raise SystemExit(f"{dest}: exists and is no gpu_pack folder; choose another --dest")
        shutil.rmtree(dest)  # a pack of ours: replaced whole, so no stale track stays
    dest.mkdir(parents=True)
    data = config.data
    manifest: dict[str, Any] = {
        "config": str(args.config),
        "overrides": list(args.overrides),
        "data_root": str(config.data_root),
        "sources": list(data.sources),
        "sample_rate": data.sample_rate,
        "channels": data.channels,
        "seconds": args.seconds,
        "format": "flac" if args.vorbis is None else f"vorbis {args.vorbis:g}",
        "splits": {},
    }
    try:
        for split, tracks in ((config.train_split, args.tracks), (config.valid_split, args.valid)):
            count, size = pack_split(
                Path(config.data_root) / split,
                dest / split,
                sources=data.sources,
                tracks=tracks,
                seconds=args.seconds,
                mono=data.channels == 1,
                mixture=False,  # the sum of the stems: unpack_excerpts.py writes it there
                vorbis=args.vorbis,
            )
            manifest["splits"][split] = {"tracks": count, "bytes": size}
            print(f"{split}: {count} tracks x {args.seconds:g} s ({size / MiB:.2f} MiB)")
        if args.init:
            manifest["init"] = pack_init(args.init, config, dest / "init", repo)
        (dest / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n")
        check_budget(repo, dest, args.budget_mib)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing half-packed or oversized may travel
        raise
    print_notes(repo, dest)
    return dest


def pack_init(init: str, config: TrainConfig, folder: Path, repo: Path) -> dict[str, Any]:
    """Put the run's starting point in ``folder`` (see the module doc); returns its record."""
    folder.mkdir(parents=True)
    path = Path(init)
    try:
        state = load_state(path) if path.is_file() else None
    except DeepSamplerError:
        state = None  # a model checkpoint (load_checkpoint below checks it)
    if state is not None:
        check_state_fits(state, config, path)
        shutil.copyfile(path, folder / "last.pt")
        print(f"init: state at step {state['step']} ({path.stat().st_size / MiB:.2f} MiB)")
        return {"kind": "state", "from": str(path), "step": int(state["step"])}
    check_model_fits(init, config)
    if init in shipped_models() or is_tracked(repo, path):
        name = init if init in shipped_models() else str(path.resolve().relative_to(repo))
        (folder / "init_from.txt").write_text(name + "\n")
        print(f"init: init_from={name} (travels with the working tree)")
        return {"kind": "model", "from": name}
    shutil.copyfile(path, folder / "init.pt")
    print(f"init: init_from={path} ({path.stat().st_size / MiB:.2f} MiB)")
    return {"kind": "model", "from": str(path)}


def check_budget(repo: Path, dest: Path, budget_mib: float) -> None:
    """Print what a device call carrying ``dest`` and ``.whl`` sends; SystemExit when over
    ``budget_mib`` (MiB)."""
    whl = repo / ".whl"
    tree = tree_bytes(repo, [dest, whl])
    parts = {"working tree": tree or 0, str(dest): folder_bytes(dest), ".whl": folder_bytes(whl)}
    total = sum(parts.values())
    for what, size in parts.items():
        print(f"  {what}: {size / MiB:.2f} MiB")
    if tree is None:
        print(f"  ({repo} is no git checkout: its working tree is not counted)")
    print(f"the device call sends {total / MiB:.2f} MiB of {budget_mib:g} MiB")
    if total > budget_mib * MiB:
        raise SystemExit(
            f"gpu_pack: {total / MiB:.2f} MiB is over the device tool's {budget_mib:g} MiB; "
            f"pack fewer --tracks or --seconds, or --vorbis 0.3 (about half of FLAC's size)"
        )


def print_notes(repo: Path, dest: Path) -> None:
    """Say how ``dest`` should travel and which wheels the GPU image will lack."""
    checkout = subprocess.run(["git", "-C", str(repo), "rev-parse"], capture_output=True)
    inside = checkout.returncode == 0 and dest.resolve().is_relative_to(repo)
    if inside and not is_ignored(repo, dest):
        top = dest.resolve().relative_to(repo).parts[0]
        print(
            f"note: git does not ignore {dest}: it travels without carry, but `git add -A` "
            f"would take it; echo /{top}/ >> .git/info/exclude (then carry {top})"
        )
    if inside and dest.parent.name == ".devdata" and len(list(dest.parent.iterdir())) > 1:
        print(f"carry {dest.resolve().relative_to(repo)} alone: {dest.parent} holds other packs")
    note = wheel_note(repo)
    if note:
        print(note)


# ---- resume --------------------------------------------------------------------------------------
def adopt_state(
    state: dict[str, Any], config: TrainConfig, where: Path = Path("state")
) -> list[str]:
    """Make ``state`` (a training state, changed in place) resumable under ``config``; returns
    the config keys that changed beyond how the run is carried out (see the module doc)."""
    check_state_fits(state, config, where)
    try:  # a field added since the state was written reads as its default, as in the trainer
        before = to_dict(from_dict(TrainConfig, state["config"]))
    except DeepSamplerError:
        before = state["config"]
    after = to_dict(config)
    changed = [d for d in _config_differences(before, after) if d not in RESUMABLE_CHANGES]
    state["config"] = after
    if not changed:
        return changed  # an exact resume: nothing else to adapt
    # the data position counts batches of the old size in the old corpus: start a fresh epoch
    # (its examples are drawn from (seed, epoch, index), so it is a new draw, not a repeat)
    if state["batch_in_epoch"]:
        state["epoch"] = int(state["epoch"]) + 1
    state["batch_in_epoch"] = 0
    if any(k in ("data_root", "valid_split") or k.startswith("data.") for k in changed):
        state["best_sdr"] = state["best_step"] = None  # scored on another validation set
    # the optimizer's saved hyper-parameters would override the new config's on loading
    o, step = config.optim, int(state["step"])
    lr = o.lr * warmup_cosine(step, config.steps, o.warmup_steps, o.min_lr_ratio)
    groups = state["optimizer"]["param_groups"]
    for group in groups:
        group.update(lr=lr, initial_lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    state["scheduler"]["base_lrs"] = [o.lr] * len(groups)
    state["scheduler"]["_last_lr"] = [lr] * len(groups)
    return changed


def resume(args: argparse.Namespace) -> Path:
    """Write ``args.out/checkpoints/last.pt``: the state ``args.state`` adopted to the config."""
    config = load_train_config(args.config, args.overrides)
    target = args.out / "checkpoints" / "last.pt"
    if target.exists() and not args.force:
        raise SystemExit(
            f"{target}: a run is there already; --force replaces its state with {args.state}'s"
        )
    state = read_state(args.state)
    changed = adopt_state(state, config, args.state)
    state = {k: v for k, v in state.items() if k not in ("format", "format_version")}
    save_state(target, state)
    print(f"resume: {target} at step {state['step']} (epoch {state['epoch']})")
    if changed:
        print(f"  changed: {', '.join(changed[:8])}{', ...' if len(changed) > 8 else ''}")
        if state["best_sdr"] is None:
            print("  best score reset: the validation set differs")
    print(f"  continue: deepsampler train --config {args.config} --out {args.out} ", end="")
    print(" ".join(args.overrides))
    return target


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"pack": pack, "resume": resume}
    command = argv[0] if argv else ""
    if command not in commands:
        raise SystemExit(
            f"usage: gpu_pack.py {{pack,resume}} ... (-h for either's options)\n\n{__doc__}"
        )
    # one parser per command, parsed intermixed: KEY=VALUE overrides may sit between options
    # (argparse's subparsers cannot parse that way)
    ap = argparse.ArgumentParser(
        prog=f"gpu_pack.py {command}", description=__doc__.split("\n\n")[0]
    )
    if command == "resume":
        ap.add_argument("state", type=Path, help="a last.pt (or the stem of its .part* pieces)")
    ap.add_argument("--config", type=Path, required=True, help="training config (YAML)")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    if command == "pack":
        ap.add_argument("--tracks", type=int, default=24, help="training tracks (default 24)")
        ap.add_argument(
            "--valid-tracks",
            dest="valid",
            type=int,
            default=6,
            help="validation tracks (default 6)",
        )
        ap.add_argument("--seconds", type=float, default=4.0, help="excerpt length, s (default 4)")
        ap.add_argument(
            "--vorbis", type=float, metavar="LEVEL", help="Ogg Vorbis at LEVEL, not FLAC"
        )
        ap.add_argument(
            "--init", help="a run's last.pt, or a model checkpoint / name to start from"
        )
        ap.add_argument("--dest", type=Path, help="output (default .devdata/<config file stem>)")
        ap.add_argument("--budget-mib", type=float, default=BUDGET_MIB, help="MiB (default 64)")
        ap.add_argument("--tree", type=Path, default=REPO, help="the checkout that travels")
    else:
        ap.add_argument("--out", type=Path, required=True, help="run folder to continue in")
        ap.add_argument("--force", action="store_true", help="replace a state already in --out")
    args = ap.parse_intermixed_args(argv[1:])
    try:
        commands[command](args)
    except DeepSamplerError as exc:
        raise SystemExit(f"gpu_pack: {exc}") from None


if __name__ == "__main__":
    main()
