"""Pairs and a two-step training run of every StemProver stage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.errors import ConfigError, DeepSamplerError
from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.checkpoint import load_stemprover
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.pairs import SEPARATOR, PairConfig, PairSampler
from deepsampler.stemprover.train import (
    STAGES,
    StageConfig,
    StemProverTrainConfig,
    StemProverTrainer,
    fitted_steps,
    load_regression,
    load_stemprover_config,
)

from .conftest import RATE, SOURCES, tiny_config, write_corpus


def _pairs(root, cache=None) -> PairConfig:
    return PairConfig(
        root=str(root),
        sample_rate=RATE,
        channels=1,
        segment_seconds=0.5,
        separator_cache=str(cache) if cache else None,
        min_rms_db=-60.0,
    )


def _fake_cache(root, cache):
    """'Separator outputs': each true stem plus a little of the mixture (bleed)."""
    for track in (root / "train").iterdir():
        mix, _ = sf.read(track / "mixture.wav", dtype="float32")
        (cache / track.name).mkdir(parents=True)
        for s in SOURCES:
            x, _ = sf.read(track / f"{s}.wav", dtype="float32")
            sf.write(cache / track.name / f"{s}.wav", x + 0.1 * mix, RATE, subtype="FLOAT")
    return cache


def test_pair_sampler_kinds_shapes_and_determinism(tmp_path) -> None:
    root = write_corpus(tmp_path / "corpus")
    cache = _fake_cache(root, tmp_path / "cache")
    sampler = PairSampler(_pairs(root, cache))
    n = int(0.5 * RATE)
    for kind in ("bleed", "musical_noise", "band_limit", "phase_smear", SEPARATOR):
        p = sampler.draw(np.random.default_rng(0), kind)
        assert p.kind == kind and p.degraded.shape == p.clean.shape == (n,)
        assert np.isfinite(p.degraded).all() and not np.allclose(p.degraded, p.clean)
        # the mixture segment is the track's mixture (a mono corpus) at the pair's offset
        mix, _ = sf.read(root / "train" / p.track / "mixture.wav", dtype="float32")
        np.testing.assert_allclose(p.mixture, mix[p.offset : p.offset + n], atol=1e-5)
    a = sampler.batch(np.random.default_rng(5), 3)
    b = sampler.batch(np.random.default_rng(5), 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="unknown pair kind"):
        sampler.draw(np.random.default_rng(0), "reverb")
    with pytest.raises(DeepSamplerError, match="separator_cache"):
        PairSampler(_pairs(root)).draw(np.random.default_rng(0), SEPARATOR)
    shutil.rmtree(cache)
    cache.mkdir()
    with pytest.raises(DeepSamplerError, match="no separator outputs"):
        PairSampler(_pairs(root, cache))


def _config(root, **stages) -> StemProverTrainConfig:
    small = StageConfig(steps=2, lr=1e-3, batch_size=2)
    return StemProverTrainConfig(
        name="tiny",
        threads=1,
        log_every=1,
        model=tiny_config(),
        pairs=_pairs(root),
        **{s: stages.get(s, small) for s in STAGES},
    )


def test_two_step_run_of_every_stage(tmp_path) -> None:
    root = write_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    config = _config(root)
    results = StemProverTrainer(config, run, progress=False).run(["autoencoder", "base"])
    assert [r.stage for r in results] == ["autoencoder", "base"]
    base_state = lora.base_state_dict(load_stemprover(run / "stemprover.pt")[0].denoiser)
    results = StemProverTrainer(config, run, progress=False).run()
    assert [r.stage for r in results] == ["control", "adapters", "regression"]
    assert all(np.isfinite(r.last_loss) for r in results)
    model, extra = load_stemprover(run / "stemprover.pt")
    assert sorted(extra["stages_done"]) == sorted(STAGES)  # predictor: none to train, counted
    assert model.predictor is None
    assert model.adapters == ["bleed", "musical_noise", "band_limit", "phase_smear"]
    assert float(model.autoencoder.latent_scale) != 1.0
    # control and adapters train only their own weights: the base denoiser is untouched
    for key, value in lora.base_state_dict(model.denoiser).items():
        torch.testing.assert_close(value, base_state[key], msg=key)
    # the adapters did move (B starts at 0)
    for name in model.adapters:
        b = [v for k, v in lora.adapter_state_dict(model.denoiser, name).items() if "lora_B" in k]
        assert any(v.abs().sum() > 0 for v in b), name
    assert load_regression(model, run / "regression.pt") is not None
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {x["stage"] for x in lines} >= {"autoencoder", "base", "control", "regression"}
    assert (run / "config.yaml").is_file()
    # everything done: a re-run does nothing; another config in the same folder is refused
    assert StemProverTrainer(config, run, progress=False).run() == []
    other = _config(root, base=StageConfig(steps=3, lr=1e-3, batch_size=2))
    with pytest.raises(ConfigError, match="another config"):
        StemProverTrainer(other, run, progress=False).run()


def test_fitted_steps_is_what_the_budget_holds() -> None:
    # 20 steps in 10 s = 2 steps/s; 95 % of 60 s leaves 47 s: 20 + 94 steps
    assert fitted_steps(1000, 60.0, 20, 10.0) == 114
    assert fitted_steps(100, 60.0, 20, 10.0) == 100  # the configured steps fit: unchanged
    assert fitted_steps(1000, 60.0, 20, 80.0) == 20  # already over budget: stop now
    assert fitted_steps(1000, 60.0, 0, 0.0) == 1000  # nothing measured yet


def test_time_budget_shortens_the_schedule_and_anneals_it(tmp_path, monkeypatch) -> None:
    """A stage with ``minutes`` runs the steps its measured rate fits, not until the safety net
    cuts it mid-schedule; its learning rate ends at the one-cycle minimum."""
    import deepsampler.stemprover.train as train_module

    clock = iter(range(10**6))  # every reading of the clock is 0.5 s later
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: 0.5 * next(clock))
    lrs = []
    monkeypatch.setattr(
        torch.optim.AdamW,
        "step",
        lambda self, *a, **k: lrs.append(self.param_groups[0]["lr"]),
    )
    root = write_corpus(tmp_path / "corpus")
    ae = StageConfig(steps=1000, lr=1e-3, batch_size=2, minutes=1.0)
    run = tmp_path / "run"
    (result,) = StemProverTrainer(_config(root, autoencoder=ae), run, progress=False).run(
        ["autoencoder"]
    )
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    fitted = [x["fitted_steps"] for x in lines if "fitted_steps" in x]
    assert len(fitted) == 1 and 50 < fitted[0] < 200
    assert result.steps == fitted[0] == len(lrs)
    assert not any("stopped_early_at" in x for x in lines)
    assert max(lrs) == pytest.approx(1e-3, rel=0.05)  # the warm-up still reaches the peak
    assert lrs[-1] < 1e-3 / 100  # and the cycle completes


def test_config_file_overrides_and_errors(tmp_path) -> None:
    path = tmp_path / "sp.yaml"
    path.write_text("name: x\nbase:\n  steps: 7\nmodel:\n  denoiser_width: 16\n")
    cfg = load_stemprover_config(path, ["control.lr=3e-4", "pairs.segment_seconds=1.0"])
    assert (cfg.base.steps, cfg.model.denoiser_width) == (7, 16)
    assert cfg.control.lr == pytest.approx(3e-4) and cfg.pairs.segment_seconds == 1.0
    with pytest.raises(ConfigError, match="unknown key"):
        load_stemprover_config(path, ["base.stepz=3"])
    with pytest.raises(ConfigError):
        load_stemprover_config(path, ["pairs.artifacts=[reverb]"])
    with pytest.raises(ConfigError, match="unknown stage"):
        StemProverTrainer(cfg, tmp_path / "r", sampler=object()).run(["polish"])


def test_pair_pool_does_not_depend_on_workers(tmp_path) -> None:
    from deepsampler.stemprover.pairs import PairPool

    config = _pairs(write_corpus(tmp_path / "corpus"))
    one = PairPool(config, 5, "band_limit", workers=1, seed=3, chunk=2)
    two = PairPool(config, 5, "band_limit", workers=2, seed=3, chunk=2)
    assert len(one) == 5 and one.clean.shape == (5, int(0.5 * RATE))
    np.testing.assert_array_equal(one.degraded, two.degraded)
    degraded, clean, mixture = one.batch(np.random.default_rng(0), 7)
    assert degraded.shape == clean.shape == mixture.shape == (7, int(0.5 * RATE))


def test_init_from_continues_after_the_finished_stages(tmp_path) -> None:
    import dataclasses

    root = write_corpus(tmp_path / "corpus")
    config = _config(root)
    StemProverTrainer(config, tmp_path / "first", progress=False).run(["autoencoder", "base"])
    first = load_stemprover(tmp_path / "first" / "stemprover.pt")[0]
    cont = dataclasses.replace(config, init_from=str(tmp_path / "first" / "stemprover.pt"))
    results = StemProverTrainer(cont, tmp_path / "second", progress=False).run(
        ["autoencoder", "base", "control"]
    )
    assert [r.stage for r in results] == ["control"]
    # naming an inherited stage is not enough to train it again; --retrain is
    again = StemProverTrainer(cont, tmp_path / "again", progress=False)
    assert again.run(["base"]) == []
    fresh = StemProverTrainer(cont, tmp_path / "retrain", progress=False)
    assert [r.stage for r in fresh.run(["base"], retrain=["base"])] == ["base"]
    retrained = load_stemprover(tmp_path / "retrain" / "stemprover.pt")[0]
    assert any(
        not torch.equal(v, first.denoiser.state_dict()[k])
        for k, v in retrained.denoiser.state_dict().items()
    )
    with pytest.raises(ConfigError, match="unknown stage"):
        fresh.run(["base"], retrain=["polish"])
    second = load_stemprover(tmp_path / "second" / "stemprover.pt")[0]
    for key, value in second.autoencoder.state_dict().items():
        torch.testing.assert_close(value, first.autoencoder.state_dict()[key])
    other = dataclasses.replace(cont, model=dataclasses.replace(config.model, bands=2))
    with pytest.raises(ConfigError, match="init_from"):
        StemProverTrainer(other, tmp_path / "third", progress=False).run()
    # a changed control design keeps the autoencoder and base, and trains the control again
    flip = not config.model.mixture_condition
    redo = dataclasses.replace(
        config,
        init_from=str(tmp_path / "second" / "stemprover.pt"),
        model=dataclasses.replace(config.model, mixture_condition=flip),
    )
    results = StemProverTrainer(redo, tmp_path / "fourth", progress=False).run(
        ["autoencoder", "base", "control"]
    )
    assert [r.stage for r in results] == ["control"]
    fourth = load_stemprover(tmp_path / "fourth" / "stemprover.pt")[0]
    assert fourth.config.mixture_condition is flip
    for key, value in fourth.denoiser.state_dict().items():
        torch.testing.assert_close(value, second.denoiser.state_dict()[key])


def test_negative_snr_matches_its_definition() -> None:
    from deepsampler.stemprover.train import negative_snr_db

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((3, 1000))
    est = ref + 0.1 * rng.standard_normal((3, 1000))
    want = -10 * np.log10((ref**2).sum(-1) / ((ref - est) ** 2).sum(-1))
    got = negative_snr_db(torch.from_numpy(est), torch.from_numpy(ref)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match="mixture_dropout"):
        StemProverTrainConfig(mixture_dropout=1.5)


def test_pooled_pairs_carry_their_own_latents(tmp_path) -> None:
    import dataclasses

    root = write_corpus(tmp_path / "corpus")
    config = _config(root)
    config = dataclasses.replace(
        config,
        mixture_dropout=0.0,
        pairs=dataclasses.replace(config.pairs, pool_size=5),
        # the clean stem's own latent as the target, so that rows can be matched by re-encoding
        model=dataclasses.replace(config.model, keep_phase=False),
    )
    trainer = StemProverTrainer(config, tmp_path / "run", progress=False)
    torch.manual_seed(0)
    model = StemProver(config.model).eval()
    with torch.no_grad():
        b = trainer._pair_latents(model, 4, "bleed")
        # the cached latents belong to the drawn waveforms, row by row
        torch.testing.assert_close(b.z_deg, model.autoencoder.encode(b.feats))
        torch.testing.assert_close(b.z0, model.analyse(b.clean)[2])
        assert not torch.allclose(b.z_mix, b.z_deg)  # the mixture, not the stem
    assert len(trainer.latents["bleed"][0]) == 5
    # the conditional stages run on pooled latents too
    results = trainer.run()
    assert all(np.isfinite(r.last_loss) for r in results)


def test_keep_phase_target_has_clean_magnitudes_and_the_stems_phase(tmp_path) -> None:
    from deepsampler.stemprover.model import keep_phase

    torch.manual_seed(0)
    model = StemProver(tiny_config()).eval()
    trainer = StemProverTrainer(_config(write_corpus(tmp_path / "corpus")), tmp_path / "run")
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(2, 4000, generator=g)
    degraded = clean + 0.5 * torch.randn(2, 4000, generator=g)
    mixture = degraded + 0.1 * torch.randn(2, 4000, generator=g)
    _, z0, _ = trainer._encode_pair(model, degraded, clean, mixture)
    f_clean, f_deg = model.features(clean[:, None]), model.features(degraded[:, None])
    target = keep_phase(f_clean, f_deg, model.features(mixture[:, None]))
    torch.testing.assert_close(z0, model.autoencoder.encode(target))
    mag = torch.linalg.vector_norm
    torch.testing.assert_close(mag(target, dim=1), mag(f_clean, dim=1), rtol=1e-4, atol=1e-5)
    strong = mag(f_deg, dim=1) > 0.5 * mag(f_clean, dim=1)  # where the stem's phase is taken
    cos = (target * f_deg).sum(1) / (mag(target, dim=1) * mag(f_deg, dim=1) + 1e-12)
    assert (
        strong.float().mean() > 0.5
        and float(cos[strong & (mag(f_clean, dim=1) > 1e-3)].min()) > 0.999
    )


def test_predictor_stage_trains_first_and_feeds_the_conditional_stages(tmp_path) -> None:
    """The predictive stage learns on separator pairs; control, adapters and regression then read
    its estimates (pooled or drawn), not the separator's raw output."""
    import dataclasses

    from .test_mask_refiner import tiny_mask_config

    root = write_corpus(tmp_path / "corpus")
    cache = _fake_cache(root, tmp_path / "cache")
    config = _config(root, predictor=StageConfig(steps=3, lr=1e-2, batch_size=2))
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, predictor=tiny_mask_config()),
        pairs=dataclasses.replace(_pairs(root, cache), pool_size=4),
    )
    trainer = StemProverTrainer(config, tmp_path / "run", progress=False)
    results = trainer.run()
    assert [r.stage for r in results] == list(STAGES)
    assert all(np.isfinite(r.last_loss) for r in results)
    model, extra = load_stemprover(tmp_path / "run" / "stemprover.pt")
    assert extra["stages_done"] == list(STAGES)
    heads = model.predictor.net.heads
    assert any(float(h.weight.detach().abs().sum()) > 0 for h in heads)  # it left the identity
    # every pool the conditional stages used holds the predictor's estimates of its pairs
    assert set(trainer.predicted) == set(trainer.latents) and trainer.predicted
    for kind, degraded in trainer.predicted.items():
        pool = trainer.pools[kind]
        with torch.no_grad():
            expected = model.predictor(
                *(torch.from_numpy(a) for a in (pool.degraded, pool.mixture))
            )
        np.testing.assert_allclose(degraded, expected.numpy(), atol=1e-5)
        assert not np.allclose(degraded, pool.degraded, atol=1e-4)


def _pool_trainer(tmp_path, **pairs_overrides) -> StemProverTrainer:
    """A trainer on the tiny corpus and its fake separator cache, with these pair settings."""
    import dataclasses

    root = write_corpus(tmp_path / "corpus")
    cache = _fake_cache(root, tmp_path / "cache")
    pairs = dataclasses.replace(_pairs(root, cache), **pairs_overrides)
    return StemProverTrainer(
        dataclasses.replace(_config(root), pairs=pairs), tmp_path / "run", progress=False
    )


def test_pool_sizes_per_kind(tmp_path) -> None:
    trainer = _pool_trainer(tmp_path, pool_size=3, separator_pool_size=5, artifact_pool_size=2)
    assert len(trainer._pool(None)) == 3  # mixed: autoencoder, base, control, regression
    assert len(trainer._pool(SEPARATOR)) == 5  # the predictor's
    assert len(trainer._pool("bleed")) == 2  # one adapter's


def test_predictor_stage_trains_the_refiner_around_a_frozen_guide(tmp_path) -> None:
    """With a guide separator, the stage moves the refiner (its blend and its network) and leaves
    the guide's weights as its file has them."""
    import dataclasses

    from deepsampler.models import load_checkpoint

    from .test_mask_refiner import tiny_guide, tiny_mask_config

    root = write_corpus(tmp_path / "corpus")
    cache = _fake_cache(root, tmp_path / "cache")
    guide = tiny_guide(tmp_path / "guide.pt")
    config = _config(root, predictor=StageConfig(steps=4, lr=1e-2, batch_size=2))
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(
            config.model, predictor=dataclasses.replace(tiny_mask_config(), guide=guide)
        ),
        pairs=dataclasses.replace(_pairs(root, cache), pool_size=4),
    )
    trainer = StemProverTrainer(config, tmp_path / "run", progress=False)
    (result,) = trainer.run(stages=["predictor"])
    assert result.stage == "predictor" and np.isfinite(result.last_loss)
    model, _ = load_stemprover(tmp_path / "run" / "stemprover.pt")
    assert float(model.predictor.alpha.detach().abs().sum()) > 0  # it learned to read the guide
    reference = load_checkpoint(guide).model.state_dict()
    for name, value in model.predictor.guide_model.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0)


def test_the_predictors_pool_may_have_its_own_segment_length(tmp_path) -> None:
    import dataclasses

    trainer = _pool_trainer(
        tmp_path, pool_size=3, segment_seconds=0.5, separator_segment_seconds=1.0
    )
    pairs = trainer.config.pairs
    assert trainer._pool(SEPARATOR).clean.shape[1] == RATE  # 1.0 s
    assert trainer._pool(None).clean.shape[1] == RATE // 2  # 0.5 s
    with pytest.raises(ValueError, match="needs pool_size"):
        dataclasses.replace(pairs, pool_size=0)
    with pytest.raises(ValueError, match=">= 0"):
        dataclasses.replace(pairs, separator_segment_seconds=-1.0)
