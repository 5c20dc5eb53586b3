import numpy as np
import pytest
import torch

from deepsampler import DeepSamplerError, Separator
from deepsampler.models import DeepSampler, load_checkpoint, preset_config, save_checkpoint
from deepsampler.separator import default_passes


def test_in_memory_separation_matches_one_model_pass(tiny_checkpoint):
    """With one chunk covering the input, the facade returns exactly the model's output."""
    sep = Separator(tiny_checkpoint, chunk_seconds=5.0)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 22050)).astype(np.float32)
    out = sep.separate(x, 22050)
    with torch.no_grad():
        ref = sep.model(torch.from_numpy(x)[None])[0].numpy()
    for i, s in enumerate(sep.sources):
        np.testing.assert_allclose(out[s], ref[i], atol=1e-5)


def test_chunked_separation_of_a_mask_sum_model_reconstructs_the_mixture():
    """Softmax masks sum to one, so stems add up to the mixture through chunking and resampling."""
    model = DeepSampler(preset_config("tiny", mask_activation="softmax"))
    sep = Separator(model, chunk_seconds=0.5, overlap_seconds=0.1, allow_untrained=True)
    # band-limited below the model's Nyquist (11 kHz), so resampling down and up loses nothing
    t = np.arange(60000) / 48000
    freqs = np.random.default_rng(1).uniform(50, 8000, (2, 20))
    x = (0.05 * np.sin(2 * np.pi * freqs[..., None] * t).sum(1)).astype(np.float32)
    out = sep.separate(x, 48000)  # the model runs at 22.05 kHz: resampled in and out
    err = np.abs(sum(out.values()) - x)
    assert err[:, 500:-500].max() < 1e-4  # the abrupt start and end are not band-limited


def test_in_memory_rejects_bad_arrays(tiny_checkpoint):
    sep = Separator(tiny_checkpoint)
    with pytest.raises(DeepSamplerError):
        sep.separate(np.full((2, 100), np.nan, np.float32), 22050)
    with pytest.raises(DeepSamplerError):
        sep.separate(np.zeros((2, 0), np.float32), 22050)


def test_in_memory_model_needs_explicit_permission():
    with pytest.raises(DeepSamplerError, match="untrained"):
        Separator(DeepSampler(preset_config("tiny")))


def test_wiener_post_filter_default_off_and_sum():
    """Off unless asked for; the filtered stems still add up to the mixture."""
    offline_model = DeepSampler(preset_config("tiny", causal=False))
    assert Separator(offline_model, allow_untrained=True).wiener == -1
    offline = Separator(offline_model, allow_untrained=True, wiener=1)
    x = np.random.default_rng(2).uniform(-0.3, 0.3, (2, 22050)).astype(np.float32)
    out = offline.separate(x, 22050)
    np.testing.assert_allclose(sum(out.values()), x, atol=2e-3)
    raw = Separator(offline_model, allow_untrained=True, wiener=-1).separate(x, 22050)
    assert max(np.abs(out[s] - raw[s]).max() for s in out) > 1e-3  # the filter did something
    with pytest.raises(DeepSamplerError, match="wiener"):
        Separator(offline_model, allow_untrained=True, wiener=-2)


def test_shifts_and_flip_average_the_aligned_passes():
    """shifts=2, flip: the mean of four passes (delays 0 and hop/2, channels as given and swapped),
    each cropped back into place; a softmax-mask model's stems still add up to the mixture."""
    model = DeepSampler(preset_config("tiny", causal=False, mask_activation="softmax")).eval()
    hop = model.config.hop
    x = np.random.default_rng(3).uniform(-0.3, 0.3, (2, 11025)).astype(np.float32)
    sep = Separator(model, allow_untrained=True, chunk_seconds=5.0, shifts=2, flip=True)
    out = sep.separate(x, 22050)
    passes = []
    with torch.no_grad():
        for delay in (0, hop // 2):
            for swap in (False, True):
                xin = np.pad(x[::-1] if swap else x, ((0, 0), (delay, 0)))
                y = model(torch.from_numpy(xin.copy())[None])[0].numpy()[..., delay:]
                passes.append(y[:, ::-1] if swap else y)
    ref = np.mean(passes, axis=0)
    for i, s in enumerate(sep.sources):
        np.testing.assert_allclose(out[s], ref[i], atol=1e-5)
    np.testing.assert_allclose(sum(out.values()), x, atol=1e-4)
    plain = Separator(model, allow_untrained=True, chunk_seconds=5.0).separate(x, 22050)
    assert max(np.abs(out[s] - plain[s]).max() for s in out) > 1e-4  # the passes differ


def test_shifts_bad_values_and_flip_on_mono():
    model = DeepSampler(preset_config("tiny", causal=False))
    for bad in (0, -1, 1.5, model.config.hop + 1):
        with pytest.raises(DeepSamplerError, match="shifts"):
            Separator(model, allow_untrained=True, shifts=bad)
    mono = DeepSampler(preset_config("tiny", causal=False, audio_channels=1))
    assert Separator(mono, allow_untrained=True, flip=True).flip is False


def _with_inference(path, tmp_path, inference):
    """A copy of a checkpoint whose metadata names a default offline inference."""
    loaded = load_checkpoint(path)
    out = tmp_path / "averaged.pt"
    metadata = {**loaded.metadata, "inference": inference}
    return save_checkpoint(out, loaded.model, training=loaded.training, metadata=metadata)


def test_a_model_default_inference_applies_unless_overridden(tiny_checkpoint, tmp_path):
    """A checkpoint's metadata ``inference`` sets shifts/flip when the caller gives none; explicit
    arguments win; a plain checkpoint runs one pass; the four passes give the averaged output."""
    path = _with_inference(tiny_checkpoint, tmp_path, {"shifts": 2, "flip": True})
    default = Separator(path, chunk_seconds=5.0)
    assert (default.shifts, default.flip, default.passes) == (2, True, 4)
    assert "offline inference: shifts 2, flip (4 passes)" in default.describe()
    explicit = Separator(path, chunk_seconds=5.0, shifts=2, flip=True)
    one = Separator(path, chunk_seconds=5.0, shifts=1, flip=False)
    assert (one.passes, one.options_label()) == (1, "")
    assert "offline inference" not in one.describe()
    plain = Separator(tiny_checkpoint, chunk_seconds=5.0)
    assert (plain.shifts, plain.flip) == (1, False)
    x = np.random.default_rng(5).uniform(-0.3, 0.3, (2, 11025)).astype(np.float32)
    a, b, c = (s.separate(x, 22050) for s in (default, explicit, one))
    for s in a:
        np.testing.assert_array_equal(a[s], b[s])
    assert max(np.abs(a[s] - c[s]).max() for s in a) > 1e-4
    assert Separator(path, flip=False).flip is False  # one option overridden, the other kept
    assert Separator(path, flip=False).shifts == 2


@pytest.mark.parametrize(
    "inference, match",
    [
        ({"shifts": 0}, "inference"),
        ({"shifts": "2"}, "inference"),
        ({"shifts": 2.0}, "inference"),
        ({"shifts": True}, "inference"),
        ({"flip": "no"}, "inference"),
        ({"passes": 4}, "inference"),
        ([2], "inference"),
        ([], "inference"),
    ],
)
def test_bad_inference_metadata_is_refused(tiny_checkpoint, tmp_path, inference, match):
    """Checked where it is read, so ``models`` and ``info`` refuse it too, not only Separator."""
    path = _with_inference(tiny_checkpoint, tmp_path, inference)
    with pytest.raises(DeepSamplerError, match=match):
        Separator(path)
    with pytest.raises(DeepSamplerError, match=match):
        default_passes(load_checkpoint(path).metadata, 2)


def test_default_passes_count_flip_only_for_stereo():
    assert default_passes({"inference": {"shifts": 2, "flip": True}}, 2) == 4
    assert default_passes({"inference": {"shifts": 2, "flip": True}}, 1) == 2
    assert default_passes({}, 2) == 1


def test_separate_file_reports_its_input_samples(tiny_checkpoint, tmp_path):
    """``on_samples`` sees every input sample once, at the file's rate, in block order."""
    import soundfile as sf

    rate = 22050  # not the model's rate: counted before resampling
    x = np.random.default_rng(0).uniform(-0.3, 0.3, (rate * 3 + 17, 2)).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, rate, subtype="FLOAT")
    counts: list[int] = []
    result = Separator(tiny_checkpoint).separate_file(
        tmp_path / "in.wav", tmp_path / "out", on_samples=counts.append
    )
    assert sum(counts) == x.shape[0] and all(n > 0 for n in counts)
    assert sf.info(next(iter(result.stems.values()))).frames == x.shape[0]
