import pytest
import torch

from deepsampler.errors import CheckpointError
from deepsampler.models import (
    DeepSampler,
    load_checkpoint,
    preset_config,
    resolve_model,
    save_checkpoint,
)
from deepsampler.models.checkpoint import FORMAT_VERSION, _digest


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(1)
    model = DeepSampler(preset_config("tiny", causal=False)).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, training={"steps": 3}, metadata={"name": "m"})
    return model, path


def test_round_trip_identical_outputs(saved):
    model, path = saved
    loaded = load_checkpoint(path)
    assert loaded.trained and loaded.metadata["name"] == "m"
    assert loaded.model.config == model.config
    x = torch.randn(1, 2, 3000)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary left behind


def _rewrite(path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_tampered_weights_refused(saved):
    _, path = saved
    _rewrite(path, lambda p: p["state_dict"]["input_bias"].add_(0.01))
    with pytest.raises(CheckpointError, match="integrity check failed"):
        load_checkpoint(path)


def test_tampered_config_refused(saved):
    _, path = saved
    _rewrite(path, lambda p: p["config"].update(causal=True))
    with pytest.raises(CheckpointError, match="integrity check failed"):
        load_checkpoint(path)


def test_newer_format_refused(saved):
    _, path = saved
    _rewrite(path, lambda p: p.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError, match=f"format v{FORMAT_VERSION + 1}"):
        load_checkpoint(path)


def test_weights_not_matching_config_refused(saved):
    _, path = saved

    def change(p):
        p["config"]["dim"] = 64
        p["digest"] = _digest(p)  # consistent digest: the mismatch itself must be caught

    _rewrite(path, change)
    with pytest.raises(CheckpointError, match="weights do not match its config"):
        load_checkpoint(path)


def test_unknown_config_key_refused(saved):
    _, path = saved

    def change(p):
        p["config"]["mystery"] = 1
        p["digest"] = _digest(p)

    _rewrite(path, change)
    with pytest.raises(CheckpointError, match="config does not fit"):
        load_checkpoint(path)


def _zip_of_other_files(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "x")


def _wav_audio(path):
    import numpy as np
    import soundfile as sf

    sf.write(str(path), np.zeros((100, 1)), 8000, format="WAV")


@pytest.mark.parametrize(
    "make,what",
    [
        (lambda p: p.write_text("hello\n"), "it is text"),  # torch said: KeyError '101'
        (lambda p: p.write_bytes(b""), "it is empty"),
        (lambda p: p.write_bytes(bytes(range(256))), "unknown content"),
        (_zip_of_other_files, "it is a zip archive of other files"),
        (_wav_audio, "it is wav audio"),
    ],
)
def test_foreign_files_say_what_they_are(tmp_path, make, what):
    path = tmp_path / "x.pt"
    make(path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"{path}: not a DeepSampler model file (not a PyTorch checkpoint: {what}); pass a "
        "shipped model name (see `deepsampler models`) or a .pt file written by deepsampler train"
    )


def test_truncated_checkpoint_is_called_truncated(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"m.pt: truncated or damaged checkpoint \(its zip"):
        load_checkpoint(path)


def test_pickled_objects_are_refused_without_running_code(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save({"when": __import__("datetime").date(2020, 1, 1)}, path)
    with pytest.raises(CheckpointError, match="a pickle that torch loads only by trusting it"):
        load_checkpoint(path)


def test_plain_state_dict_refused(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(DeepSampler(preset_config("tiny")).state_dict(), path)
    with pytest.raises(CheckpointError, match="no 'deepsampler.model' header"):
        load_checkpoint(path)


def test_resolve_model_errors(tmp_path):
    with pytest.raises(CheckpointError, match="unknown model 'nosuch'"):
        resolve_model("nosuch")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        resolve_model(tmp_path / "missing.pt")


def test_malformed_body_with_matching_digest_refused(saved):
    _, path = saved

    def change(p):
        p["state_dict"] = {"input_bias": [1, 2, 3]}
        p["digest"] = "x"

    _rewrite(path, change)
    with pytest.raises(CheckpointError, match="malformed"):
        load_checkpoint(path)


def test_package_version_is_covered_by_the_digest(saved):
    _, path = saved
    _rewrite(path, lambda p: p.update(package_version="9.9.9"))
    with pytest.raises(CheckpointError, match="integrity check failed"):
        load_checkpoint(path)


def test_shipped_models_load_verified_trained_and_carded():
    from deepsampler.models import shipped_models

    models = shipped_models()  # separators and detectors
    assert "toy4-demo" in models
    for name, path in models.items():
        loaded = load_checkpoint(path, kind=None)  # digest verified, whatever the kind
        assert loaded.trained and loaded.training["steps"] > 0
        card = path.with_suffix(".md")
        assert card.is_file() and name in card.read_text()


def test_saved_files_follow_the_umask(tmp_path):
    import os
    import stat

    path = save_checkpoint(tmp_path / "p.pt", DeepSampler(preset_config("tiny")))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
