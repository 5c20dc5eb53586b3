"""One model-file format for every kind of model (separator, detector, StemProver, its regression
control): round trips, refusals in one line (edited digest, wrong kind, old format), the
conversion script, and the registry of shipped models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deepsampler.config import to_dict
from deepsampler.errors import CheckpointError
from deepsampler.models import (
    DeepSampler,
    load_checkpoint,
    preset_config,
    registry,
    save_checkpoint,
)
from deepsampler.models.checkpoint import MODEL_KINDS, read_checkpoint, read_header
from deepsampler.models.sde import SDEConfig, SDEModel
from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.checkpoint import (
    load_regression,
    load_stemprover,
    refiner_state,
    save_regression,
    save_stemprover,
)
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.refiners import RegressionNet

from ..scripts_loader import load_script
from .conftest import tiny_config
from .test_mask_refiner import tiny_mask_config

KINDS = ("separator", "detector", "stemprover", "stemprover-regression")


def _stemprover() -> StemProver:
    torch.manual_seed(0)
    model = StemProver(replace(tiny_config(), predictor=tiny_mask_config())).eval()
    model.add_adapter("bleed")
    model.add_adapter("musical_noise", rank=3)
    with torch.no_grad():  # non-zero adapters and heads, so a mix-up would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.set_adapter_weights({})
    return model


def _save(kind: str, path: Path) -> tuple[torch.nn.Module, Path]:
    """A tiny model of ``kind`` written to ``path`` by that kind's saver."""
    torch.manual_seed(0)
    if kind == "separator":
        model = DeepSampler(preset_config("tiny", causal=False)).eval()
        return model, save_checkpoint(path, model, training={"steps": 1})
    if kind == "detector":
        model = SDEModel(SDEConfig(sample_rate=16000, n_mels=16, channels=8, gru=8)).eval()
        return model, save_checkpoint(path, model, training={"steps": 1})
    if kind == "stemprover":
        model = _stemprover()
        return model, save_stemprover(path, model, {"stages_done": ["base"]})
    net = RegressionNet(tiny_config()).eval()
    return net, save_regression(net, path)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if ".guide_model." not in k}


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


def _rewrite(path: Path, change: Callable[[dict], None]) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_per_kind(kind: str, tmp_path) -> None:
    model, path = _save(kind, tmp_path / "m.pt")
    loaded = load_checkpoint(path, kind=kind)
    assert loaded.kind == kind and type(loaded.model) is type(model)
    assert not loaded.model.training
    _assert_same(model, loaded.model)
    header = read_header(path)
    assert header["format"] == "deepsampler.model" and header["format_version"] == 1
    assert MODEL_KINDS[header["model"]].kind == kind
    assert isinstance(header["config"], dict) and len(header["digest"]) == 64
    assert "state_dict" not in header
    assert load_checkpoint(path, kind=None).kind == kind  # any kind: the file says which


def test_stemprover_round_trip_keeps_adapters_extra_and_output(tmp_path) -> None:
    model, path = _save("stemprover", tmp_path / "sp.pt")
    loaded, extra = load_stemprover(path)
    assert extra == {"stages_done": ["base"]}
    assert loaded.adapter_ranks == {"bleed": 2, "musical_noise": 3}
    wave = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    for weights in ({}, {"bleed": 1.0, "musical_noise": 0.5}):
        model.set_adapter_weights(weights)
        loaded.set_adapter_weights(weights)
        out = [
            m.refine(wave, steps=2, generator=torch.Generator().manual_seed(0), mixture=2 * wave)
            for m in (model, loaded)
        ]
        torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)
    payload = read_checkpoint(path, kind="stemprover")
    assert payload["config"]["adapters"] == {"bleed": 2, "musical_noise": 3}
    assert payload["config"]["stemprover"] == to_dict(model.config)
    prefixes = {k.split(".")[0] for k in payload["state_dict"]}
    assert prefixes == {"autoencoder", "denoiser", "control", "predictor", "adapters"}


@pytest.mark.parametrize("kind", KINDS)
def test_edited_weights_fail_the_digest_per_kind(kind: str, tmp_path) -> None:
    _, path = _save(kind, tmp_path / "m.pt")

    def edit(payload: dict) -> None:
        name = sorted(payload["state_dict"])[0]
        payload["state_dict"][name] = payload["state_dict"][name] + 0.01

    _rewrite(path, edit)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, kind=kind)
    assert str(err.value) == (
        f"{path}: integrity check failed (weights or config changed after saving); "
        "do not use it, restore the original file"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_kind_is_refused_in_one_line(kind: str, tmp_path) -> None:
    _, path = _save(kind, tmp_path / "m.pt")
    what = MODEL_KINDS[registry_class(kind)].what
    for other in KINDS:
        if other == kind:
            continue
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path, kind=other)
        message = str(err.value)
        expected = MODEL_KINDS[registry_class(other)]
        assert message == f"{path}: {what} checkpoint, not {expected.what}; {expected.hint}"
        assert "\n" not in message


def registry_class(kind: str) -> str:
    return next(name for name, k in MODEL_KINDS.items() if k.kind == kind)


def test_stemprover_loaders_refuse_other_kinds(tmp_path) -> None:
    _, separator = _save("separator", tmp_path / "sep.pt")
    with pytest.raises(CheckpointError, match="a separator checkpoint, not a StemProver model"):
        load_stemprover(separator)
    model, sp = _save("stemprover", tmp_path / "sp.pt")
    with pytest.raises(CheckpointError, match="a StemProver model checkpoint, not a StemProver re"):
        load_regression(model, sp)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_stemprover(tmp_path / "missing.pt")


def test_regression_control_for_other_sizes_is_refused(tmp_path) -> None:
    path = save_regression(RegressionNet(tiny_config()), tmp_path / "reg.pt")
    other = StemProver(replace(tiny_config(), denoiser_width=4, heads=2))
    with pytest.raises(CheckpointError, match="of other sizes \\(denoiser_width differ\\)"):
        load_regression(other, path)


def _old_model_payload(model: StemProver, extra: dict) -> dict:
    """What the old ``StemProver.save`` wrote (format deepsampler-stemprover-v1)."""
    payload = {
        "format": "deepsampler-stemprover-v1",
        "config": to_dict(model.config),
        "autoencoder": model.autoencoder.state_dict(),
        "denoiser": lora.base_state_dict(model.denoiser),
        "control": model.control.state_dict(),
        "adapters": {
            name: {"rank": rank, "state": lora.adapter_state_dict(model.denoiser, name)}
            for name, rank in model.adapter_ranks.items()
        },
        "extra": extra,
    }
    if model.predictor is not None:
        payload["predictor"] = refiner_state(model.predictor)
    return payload


def _old_files(folder: Path) -> tuple[StemProver, RegressionNet, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    model = _stemprover()
    torch.manual_seed(3)
    net = RegressionNet(model).eval()
    sp, reg = folder / "sp.pt", folder / "sp-regression.pt"
    torch.save(_old_model_payload(model, {"stages_done": ["base"], "name": "sp"}), sp)
    torch.save({"format": "deepsampler-stemprover-regression-v1", "state": net.state_dict()}, reg)
    return model, net, sp, reg


def test_old_format_files_are_refused_with_how_to_convert(tmp_path) -> None:
    model, _, sp, reg = _old_files(tmp_path)
    for path, fmt in (
        (sp, "deepsampler-stemprover-v1"),
        (reg, "deepsampler-stemprover-regression-v1"),
    ):
        expected = (
            f"{path}: old model-file format {fmt!r} (no version or digest); convert it with "
            f"`.venv/bin/python scripts/convert_stemprover.py {path}`"
        )
        for load in (
            lambda p: load_checkpoint(p, kind=None),
            load_stemprover,
            lambda p: load_regression(model, p),
        ):
            with pytest.raises(CheckpointError) as err:
                load(path)
            assert str(err.value) == expected


def test_conversion_script_turns_old_files_into_the_same_models(tmp_path, capsys) -> None:
    model, net, sp, reg = _old_files(tmp_path / "old")
    convert = load_script("convert_stemprover")
    out = tmp_path / "new"
    out.mkdir()
    convert.main([str(reg), str(sp), "--out", str(out)])  # the model goes first regardless
    loaded, extra = load_stemprover(out / "sp.pt")
    assert extra == {"stages_done": ["base"], "name": "sp"}
    _assert_same(model, loaded)
    _assert_same(net, load_regression(loaded, out / "sp-regression.pt"))
    convert.main([str(sp), str(reg)])  # in place
    _assert_same(model, load_stemprover(sp)[0])
    convert.main([str(sp)])  # a converted file is left alone
    assert "already in the deepsampler.model format" in capsys.readouterr().out


def test_registry_lists_every_shipped_file_with_its_kind() -> None:
    entries = registry.shipped()
    on_disk = sorted(registry.PRETRAINED_DIR.rglob("*.pt"))
    assert sorted(e.path for e in entries) == on_disk
    assert len({(e.kind, e.name) for e in entries}) == len(entries)
    for entry in entries:
        assert entry.kind in registry.SHIPPED_KINDS
        # the file says the same (verified: format, version, digest; no model built)
        payload = read_checkpoint(entry.path, kind=entry.kind)
        assert MODEL_KINDS[payload["model"]].kind == entry.kind
        assert entry.card is not None and entry.card.is_file()
    kinds = {e.kind for e in entries}
    assert {"separator", "stemprover", "stemprover-regression"} <= kinds
    assert [e.name for e in registry.shipped("stemprover")] == ["stemprover"]
    # what --model takes and `deepsampler models` lists: the separators and detectors
    assert {e.name for e in entries if e.kind in ("separator", "detector")} == set(
        registry.shipped_models()
    )
    with pytest.raises(ValueError, match="unknown kind"):
        registry.shipped("vocoder")


def test_models_import_nothing_of_stemprover_and_load_its_files_lazily(tmp_path) -> None:
    _, path = _save("stemprover", tmp_path / "sp.pt")
    code = (
        "import sys\n"
        "from deepsampler.models import load_checkpoint, registry\n"
        "print([m for m in sys.modules if m.startswith('deepsampler.stemprover')])\n"
        "print(load_checkpoint(sys.argv[1], kind=None).kind)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert run.stdout.split("\n")[:2] == ["[]", "stemprover"]
