# The two commands of the README: `make demo` (set up with the plot extra, separate the bundled
# example with music4-rt and draw the stems' spectrograms) and
# `make test` (set up with the dev extra, run the fast test suite).
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out/demo

.PHONY: demo test test-slow setup setup-dev lint bench clean

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh dev

demo:
	bash scripts/setup.sh plot
	$(BIN)/deepsampler separate --example --plot -o $(OUT) --model music4-rt

# two pytest-xdist workers: CI and this machine have two cores, and the longest tests wait on
# subprocesses, real-time playback or one-threaded work that a second worker can overlap;
# loadscope sends each module's tests to one worker in a row, so a module's costly fixtures
# (a rendered corpus, a trained detector, the Ray cluster of tests/batch) are made once
test: setup-dev
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

test-slow: setup-dev
	$(BIN)/python -m pytest -q -m slow

lint: setup-dev
	$(BIN)/ruff check src tests benchmarks scripts

bench: setup-dev
	bash scripts/install_peers.sh
	$(BIN)/python benchmarks/offline_speed.py --json experiments/bench/offline_speed.json
	$(BIN)/python benchmarks/train_speed.py --json experiments/bench/train_speed.json
	$(BIN)/python benchmarks/streaming.py --json experiments/bench/streaming.json
	$(BIN)/python benchmarks/peak_memory.py --minutes 10 --model toy4-demo --json experiments/bench/peak_memory.json

clean:
	rm -rf out experiments/bench
