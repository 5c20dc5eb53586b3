#!/usr/bin/env bash
# Train a config's separator on a lent GPU (the device tool) for a fixed number of minutes, from a
# packed excerpt corpus, and bring the run back to go on with it on the CPU.
#   here:  .venv/bin/python scripts/gpu_pack.py pack --config configs/music4-rt.yaml \
#              --tracks 24 --valid-tracks 6 --seconds 4 [--vorbis 0.3] \
#              [--init experiments/music4-rt/checkpoints/last.pt]        (-> .devdata/music4-rt)
#          (it prints what the call sends, refuses over 64 MiB, and lists the wheels the GPU image
#           lacks in .whl/: soundfile cffi pycparser soxr rotary-embedding-torch array-api-compat,
#           for CPython 3.12)
#   there: bash scripts/gpu_train.sh configs/music4-rt.yaml [KEY=VALUE ...]
#          (device tool: carry .devdata/music4-rt and .whl, timeout_s 600; MINUTES=8 by default,
#           so unpacking, training and copying end inside one 10-minute call)
#   back here, $OUT's files under the reply's files_at (FILES below), go on on the CPU:
#          .venv/bin/python scripts/gpu_pack.py resume FILES/last.pt --config configs/music4-rt.yaml \
#              --out experiments/music4-rt [KEY=VALUE ...]
#          .venv/bin/deepsampler train --config configs/music4-rt.yaml --out experiments/music4-rt [KEY=VALUE ...]
#          (the trainer resumes only its own config; `resume` adopts the GPU run's state to this
#           one: same step, weights, EMA and optimizer; a new epoch, this config's batch size, lr
#           and corpus; the best score restarts, since the validation set is another)
# Steps: install .whl/*.whl into $WORK/site (no network there); unpack $DATA into 16-bit WAV
# with mixtures ($WORK/data); continue a packed state ($DATA/init/last.pt) or start from a packed
# model ($DATA/init/init.pt, or the name in init_from.txt); `deepsampler train` with the settings
# below for $MINUTES (its own clean stop with a checkpoint; `timeout` only as a safety net); copy
# last.pt, best.pt, metrics.jsonl, config.yaml and the log to $OUT, each file over $PART_BYTES
# (15 MiB: the tool returns files up to 16 MiB) in pieces NAME.part00, ... that `resume` joins.
# Extra KEY=VALUE arguments override the settings (later ones win). A dry run here, on the CPU:
#   OUT=/tmp/gt-out PY=.venv/bin/python MAX_STEPS=3 bash scripts/gpu_train.sh CONFIG device=cpu steps=6
# Environment: OUT (results), PY (python), WORK (scratch), DATA (default .devdata/<config stem>),
# MINUTES (training wall time), MAX_STEPS (stop after this many steps in all), PART_BYTES.
set -euo pipefail
CONFIG="${1:?usage: scripts/gpu_train.sh CONFIG [KEY=VALUE ...]}"
shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/gt-out}"
PY="${PY:-python3}"
WORK="${WORK:-/tmp/gt-work}"
DATA="${DATA:-.devdata/$(basename "$CONFIG" .yaml)}"
MINUTES="${MINUTES:-8}"
PART_BYTES="${PART_BYTES:-15728640}"
[ -d "$DATA" ] || { echo "gpu_train: $DATA not found; pack it first (scripts/gpu_pack.py pack)" >&2; exit 2; }
mkdir -p "$OUT" "$WORK"
if [ -d "$ROOT/.whl" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" "$ROOT"/.whl/*.whl
    export PYTHONPATH="$WORK/site"
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
rm -rf "$WORK/data"  # a warm machine's earlier corpus must not mix into this one
$PY "$ROOT/scripts/unpack_excerpts.py" "$DATA" "$WORK/data"
# batch 32: where a GPU outruns the CPU 77x (README, Training) and bf16 autocast gains 1.25x;
# loader workers fill the batches while the GPU computes
SETTINGS=(data_root="$WORK/data" batch_size=32 device=cuda amp=true threads=8 num_workers=6)
RUN="$WORK/run"
INIT=()
if [ ! -f "$RUN/checkpoints/last.pt" ]; then  # else: a rerun on a warm machine resumes its own
    if [ -f "$DATA/init/last.pt" ]; then
        $PY "$ROOT/scripts/gpu_pack.py" resume "$DATA/init/last.pt" --config "$CONFIG" \
            --out "$RUN" "${SETTINGS[@]}" "$@"
    elif [ -f "$DATA/init/init.pt" ]; then
        INIT=(init_from="$DATA/init/init.pt")
    elif [ -f "$DATA/init/init_from.txt" ]; then
        INIT=(init_from="$(cat "$DATA/init/init_from.txt")")
    fi
fi
LIMIT="$(awk -v m="$MINUTES" 'BEGIN { print int(m * 60) + 45 }')"
rc=0
timeout --kill-after=15 "$LIMIT" $PY -m deepsampler.cli train --config "$CONFIG" \
    "${SETTINGS[@]}" "${INIT[@]}" "$@" --out "$RUN" --minutes "$MINUTES" \
    ${MAX_STEPS:+--max-steps "$MAX_STEPS"} -q 2>&1 | tee "$OUT/train.log" || rc=${PIPESTATUS[0]}
for f in checkpoints/last.pt checkpoints/best.pt metrics.jsonl config.yaml; do
    [ -f "$RUN/$f" ] || continue
    name="$(basename "$f")"
    if [ "$(stat -c %s "$RUN/$f")" -gt "$PART_BYTES" ]; then
        split -b "$PART_BYTES" -d -a 2 "$RUN/$f" "$OUT/$name.part"
    else
        cp "$RUN/$f" "$OUT/$name"
    fi
done
ls -la "$OUT"
if [ ! -f "$RUN/checkpoints/last.pt" ]; then
    echo "gpu_train: no checkpoint was written (rc $rc); see $OUT/train.log" >&2
    exit "$(( rc ? rc : 1 ))"
fi
# 124: the safety net stopped it (SIGTERM: the trainer still checkpointed the step it was on)
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
    echo "gpu_train: training failed (rc $rc); copied what it wrote" >&2
    exit "$rc"
fi
