"""Training across nodes: two ``torchrun --nnodes 2`` launches of one process each, meeting at a
c10d rendezvous on 127.0.0.1 (two local "nodes", gloo), end with the weights of one process
taking the same global batch, as the 2-process test in test_training.py does on one node."""

from __future__ import annotations

import os
import socket
import subprocess

from deepsampler.training.config import load_train_config
from deepsampler.training.state import load_state
from deepsampler.training.trainer import Trainer
from tests.training.test_training import (
    VENV_BIN,
    assert_same_weights,
    base_config,
    corpus,  # noqa: F401 - the module's corpus fixture
    final_weights,
    write_yaml,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_of_one_process_match_one_process(corpus, tmp_path):  # noqa: F811
    one = load_train_config(
        write_yaml(tmp_path / "one.yaml", base_config(corpus, steps=3, valid_every=3))
    )
    Trainer(one, tmp_path / "one", progress=False).run()
    two = write_yaml(
        tmp_path / "two.yaml", base_config(corpus, steps=3, valid_every=3, batch_size=1)
    )
    port = free_port()
    # both "nodes" see one folder, as nodes on a shared file system do; only rank 0 writes
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    nodes = [
        subprocess.Popen(
            [
                str(VENV_BIN / "torchrun"),
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(rank),
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                f"127.0.0.1:{port}",
                "--rdzv-id",
                f"test-{port}",
                "-m",
                "deepsampler.cli",
                "train",
                "--config",
                str(two),
                "--out",
                str(tmp_path / "two"),
                "-q",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    for node, out in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, out
    assert sum(out.count("train: finished") for out in outputs) == 1  # only rank 0 reports
    state = load_state(tmp_path / "two" / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and state["step"] == 3 and len(state["rng"]) == 2
    assert_same_weights(final_weights(tmp_path / "one"), state["model"], atol=1e-5)
