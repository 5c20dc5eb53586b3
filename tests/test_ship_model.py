"""The model card's reproduce block (scripts/ship_model.py): its ship line parses back into the
invocation that wrote it, training commands included."""

from __future__ import annotations

import shlex

import pytest

from tests.scripts_loader import load_script


@pytest.fixture(scope="module")
def ship_model():
    return load_script("ship_model")


def _argv(ship_cmd: str) -> list[str]:
    words = shlex.split(ship_cmd)
    assert words[:2] == [".venv/bin/python", "scripts/ship_model.py"]
    return words[2:]


def test_ship_line_round_trips_with_quoted_train_commands(ship_model) -> None:
    stage1 = ".venv/bin/deepsampler train --config configs/music4-hq.yaml --out experiments/a b"
    stage2 = (
        "MALLOC_MMAP_THRESHOLD_=1 .venv/bin/deepsampler train --config configs/music4-hq.yaml "
        "init_from=music4-hq 'optim.lr=0.001' --out experiments/c"
    )
    argv = [
        "--run", "experiments/my run", "--name", "music4-hq", "--checkpoint", "final",
        "--test-data", "data/music4-2h/test", "--test-limit", "6", "--shifts", "2", "--flip",
        "--real-data", "../shared/eval/real-music", "--notes", "scripts/card_notes/music4-hq.md",
        "--train-command", stage1, "--train-command", stage2,
    ]  # fmt: skip
    parser = ship_model.build_parser()
    args = parser.parse_args(argv)
    train_cmd, ship_cmd = ship_model.reproduce_commands(args, "music4-hq")
    assert train_cmd.splitlines() == [stage1, stage2]
    again = parser.parse_args(_argv(ship_cmd))
    assert vars(again) == vars(args)


def test_default_train_command_is_the_config_and_the_ship_line_has_no_extras(ship_model) -> None:
    parser = ship_model.build_parser()
    args = parser.parse_args(["--run", "experiments/rt", "--name", "music4-rt", "--test-data", "t"])
    train_cmd, ship_cmd = ship_model.reproduce_commands(args, "music4-rt")
    assert train_cmd.startswith(".venv/bin/deepsampler train --config configs/music4-rt.yaml")
    for option in (
        "--notes",
        "--train-command",
        "--real-data",
        "--test-limit",
        "--shifts",
        "--flip",
    ):
        assert option not in ship_cmd
    assert vars(parser.parse_args(_argv(ship_cmd))) == vars(args)


def test_checkpoint_cell_of_an_averaged_run_names_every_ingredient(ship_model) -> None:
    training = {
        "valid_sdr": 5.714,
        "averaged_from": [
            {"path": "runs/a/best.pt", "weight": 0.5, "valid_sdr": 5.69},
            {"path": "runs/b/best.pt", "weight": 0.5, "valid_sdr": None},
        ],
    }
    cell = ship_model.averaged_text(training)
    assert "`runs/a/best.pt` x0.5 (validation 5.69 dB)" in cell
    assert "`runs/b/best.pt` x0.5 (validation – dB)" in cell
    assert cell.endswith("valid split: 5.71 dB")


def test_real_stem_share_lists_each_averaged_run_where_they_differ(ship_model) -> None:
    runs = [{"real_stem_probability": 0.3}, {"real_stem_probability": 0.5}]
    assert ship_model.real_stem_text({"averaged_from": runs}, {"real_stem_probability": 0.5}) == (
        "0.3 / 0.5 (in the averaged runs, in order)"
    )
    same = [{"real_stem_probability": 0.3}] * 2
    assert ship_model.real_stem_text({"averaged_from": same}, {"real_stem_probability": 0.3}) == (
        "0.3"
    )
    assert ship_model.real_stem_text({}, {}) == "0"


def test_default_inference_words_and_one_pass_table(ship_model) -> None:
    assert ship_model.passes_text(2, True) == "4 passes (shifts 2, flip)"
    assert ship_model.passes_text(3, False) == "3 passes (shifts 3)"
    assert ship_model.passes_text(1, True) == "2 passes (flip)"
    assert ship_model.inference_text(2, True, 1024) == (
        "offline inference by default: 4 passes (shifts 2, flip): frame grids 512 samples apart, "
        "channels as given and swapped, averaged (`--shifts 1 --no-flip` for one pass)"
    )
    assert ship_model.inference_text(1, True, 1024).startswith(
        "offline inference by default: 2 passes (flip): channels as given and swapped, averaged"
    )
    assert ship_model.inference_options(2, True) == ["--shifts", "2", "--flip"]
    assert ship_model.inference_options(1, False) == ["--shifts", "1", "--no-flip"]
    summary = {
        "sources": ["vocals", "drums"],
        "scores": {"vocals": {"sdr": 1.0}, "drums": {"sdr": 4.0}, "mean": {"sdr": 2.5}},
    }
    real = {
        "sources": ["vocals", "drums"],
        "scores": {"vocals": {"sdr": 2.0}, "drums": {"sdr": None}, "mean": {"sdr": None}},
    }
    table = ship_model.one_pass_table({"synthetic test": summary, "real": real}).splitlines()
    assert table[0] == "| one pass, SDR (dB) | vocals | drums | mean |"
    assert table[2] == "| synthetic test | 1.00 | 4.00 | 2.50 |"
    assert table[3] == "| real | 2.00 | – | – |"
