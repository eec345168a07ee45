#!/usr/bin/env bash
# Everything this project measures and trains on one remote GPU machine (an NVIDIA H200), in two calls.
#
#   checks (at most CHECKS_BUDGET = 510 s), most needed first, so that what the time
#          cuts is the least needed:
#            tests_cuda       the 7 CUDA-only tests (tests/test_optimize.py -k cuda)
#            bench_train_b6   training step, 512x512, full paper loss, batch 6: the eager fp32 reference,
#                             each optimisation in turn, the whole fast path with torch.compile; the peak
#                             memory of each; the reference and the fastest variant profiled (profile.txt)
#            bench_inference  the H100 command of docs/benchmarks.md (latency, throughput, memory)
#            bench_peers      DFNet beside LaMa and MI-GAN at 512x512, batch 1 (its markdown rows, in
#                             session.log: the script writes no JSON)
#            bench_train_bN   the largest batch that fits (from the measured memory): reference against the
#                             compiled fast path, or the eager variants when too little time is left to compile
#            tests            the whole suite with the time that is left (tests.xml even when cut short)
#   train  (at most TRAIN_BUDGET s, default 300): configs/texture-gpu.yaml trained on the carried photos for
#          TRAIN_BUDGET - 75 s (trainer.max_time), its weights exported to $OUT/model.safetensors.
#
# With a remote-run tool, from the repository root. The budget is 15 minutes of device time in all, the
# machine's cold start (1-2 minutes) included, so give train what status says is left:
#
#   run(command="bash scripts/device_session.sh checks", carry=[".whl"], timeout_s=530)
#   status()  ->  budget_left_s = L;  then at once (the machine stays warm about 30 s):
#   run(command="TRAIN_BUDGET=<L - 60> bash scripts/device_session.sh train", carry=["data/device"],
#       timeout_s=<L - 45>)
#   give_back()
#
# Each mode writes at most 8 files to $OUT (the tool brings back 8):
#   checks: summary.txt session.log bench_train.json profile.txt bench_inference.json bench_train_large.json
#           tests.xml
#   train:  summary.txt session.log model.safetensors metrics.csv config.yaml
# summary.txt has one line per step (rc, seconds, limit); session.log has every step's output in order.
# A failing step never stops the script; each runs under `timeout` (SIGINT first, so that pytest still writes
# tests.xml), and no step runs past the mode's budget.
#
# Prepare on the development machine before the calls (both paths are git-ignored and never committed):
#   1. Wheels of the Python packages the GPU image may lack: the runtime dependencies beyond the image's
#      torch, numpy, pillow, scipy, opencv-python-headless, lightning, torchmetrics, tensorboard, tqdm,
#      safetensors, pyyaml, onnx and onnxruntime (fastapi, uvicorn and python-multipart for tests/test_web*.py;
#      omegaconf for the configs; gdown, huggingface_hub, platformdirs and filelock for the downloads), with
#      what they need, and hypothesis for the property tests (the image has anyio, click, h11, httpx, psutil,
#      pytest, pytest-xdist and pytest-timeout). The versions of .venv (`.venv/bin/pip list`), for Python 3.12
#      on x86-64, about 7 MB:
#        echo /.whl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
#        .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#          --platform manylinux2014_x86_64 -d .whl fastapi==0.165.0 starlette==1.10.0 pydantic==2.14.4 \
#          pydantic-core==2.50.5 annotated-types==0.8.0 annotated-doc==0.0.7 typing-inspection==0.4.5 \
#          uvicorn==0.55.0 python-multipart==0.0.34 opentelemetry-api==1.45.3 typing_extensions==4.16.0 \
#          omegaconf==2.4.0 gdown==5.2.2 beautifulsoup4==4.15.0 soupsieve==4.1.4 requests==2.34.2 \
#          urllib3==2.8.0 idna==3.21 certifi==2026.10.19.post1 PySocks==1.7.1 huggingface_hub==0.36.2 \
#          fsspec==2026.9.0 filelock==4.3.2 platformdirs==4.14.9 packaging==26.4 hypothesis==6.170.27 \
#          sortedcontainers==2.4.0
#        .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation py --abi none --platform any -d .whl charset-normalizer==3.5.3
#      (charset-normalizer's pure-Python wheel: its compiled one needs glibc 2.28.)
#      (fastapi 0.165 requires opentelemetry-api; pydantic 2.14 requires typing_extensions >= 4.16; omegaconf
#      2.4 needs only PyYAML; huggingface_hub's optional hf-xet, 4 MB, is left out: the tests download from
#      local stand-ins over plain HTTP.) They are installed with pip --target /tmp/site, ahead of the image's
#      packages on PYTHONPATH. The image has opencv-python-headless, not opencv-contrib (too large to carry):
#      the tests of the cv2.xphoto baselines (shift-map, FSR) are skipped there.
#   2. The training photos, about 36 MiB (data/ is git-ignored, so the train call carries data/device):
#        .venv/bin/python scripts/pack_device_data.py
#   What travels (tracked files, about 13 MB, plus the carried paths) must stay under 64 MiB.
#
# Try it here first, on the CPU at tiny sizes, every step (OUT defaults to /tmp/device-out; PYTHON names
# another interpreter than .venv/bin/python, e.g. a checkout's shared virtualenv):
#   DRY_RUN=1 nice -n 10 bash scripts/device_session.sh checks
#   DRY_RUN=1 OUT=/tmp/device-out-train nice -n 10 bash scripts/device_session.sh train

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

MODE=${1:-}
DRY_RUN=${DRY_RUN:-0}
OUT=${OUT:-/tmp/device-out}
CHECKS_BUDGET=${CHECKS_BUDGET:-510}               # seconds for the whole checks mode
TRAIN_BUDGET=${TRAIN_BUDGET:-300}                 # seconds for the whole train mode
TRAIN_SECONDS=${TRAIN_SECONDS:-$((TRAIN_BUDGET - 75))} # trainer.max_time; set-up and export take the rest
RUNS=${RUNS:-/tmp/dfnet-device-runs}              # the training run's folder (outside the repository)
# TRAIN_OVERRIDES: further config overrides for the training run, space-separated KEY=VALUE.
COMPILE_SECONDS=${COMPILE_SECONDS:-170} # checks: the largest batch is compiled again only with this much time
SUITE_RESERVE=${SUITE_RESERVE:-150}     # ... left over besides this reserve for the whole test suite

case "$MODE" in
  checks) BUDGET=$CHECKS_BUDGET ;;
  train) BUDGET=$TRAIN_BUDGET ;;
  *)
    echo "usage: [DRY_RUN=1] [OUT=folder] bash scripts/device_session.sh checks|train" >&2
    exit 2
    ;;
esac

mkdir -p "$OUT"
LOG=$OUT/session.log
SUMMARY=$OUT/summary.txt
START=$(date +%s)
DEADLINE=$((START + BUDGET))
export PYTHONUNBUFFERED=1

if [[ $DRY_RUN == 1 ]]; then
  # This machine: the project's virtualenv, one thread, tiny sizes, CPU only.
  PY=${PYTHON:-.venv/bin/python}
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  export CUDA_VISIBLE_DEVICES=""
else
  PY=${PYTHON:-python3}
fi

log() { echo "$*" >>"$LOG"; }

# step NAME SECONDS COMMAND...: runs COMMAND under timeout (at most SECONDS, and never past the deadline),
# appends its output to session.log and "NAME rc seconds" to summary.txt; returns the command's rc.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((DEADLINE - $(date +%s) - 12)) # 12 s: timeout's grace period before SIGKILL, and the summary
  ((limit > left)) && limit=$left
  if ((limit < 10)); then
    printf '%-26s rc=skip  no time left (%s s)\n' "$name" "$limit" >>"$SUMMARY"
    log "=== $name: skipped, no time left"
    return 125
  fi
  log ""
  log "=== [$(date -u +%H:%M:%S)] $name (limit ${limit}s): $*"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout -s INT -k 10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local took
  took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  log "=== $name: rc=$rc after ${took}s"
  printf '%-26s rc=%-4s %7ss  (limit %ss)\n' "$name" "$rc" "$took" "$limit" >>"$SUMMARY"
  return "$rc"
}

# ------------------------------------------------------------------------------------------------------
{
  echo "# device_session.sh $MODE, DRY_RUN=$DRY_RUN, started $(date -u +%Y-%m-%dT%H:%M:%SZ), budget ${BUDGET}s"
} >"$SUMMARY"
: >"$LOG"

# Carried wheels (see the header): installed outside the image's site-packages, ahead of it on the path.
export PYTHONPATH=src
if compgen -G ".whl/*.whl" >/dev/null; then
  if [[ $DRY_RUN == 1 ]]; then
    # The wheels are for the GPU machine's Python 3.12: here only check that the set installs.
    step wheels 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 \
      --target /tmp/site-dry-run .whl/*.whl
  else
    step wheels 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH=src:/tmp/site
  fi
else
  log "no .whl/*.whl: tests that import fastapi will fail to import on a machine without it"
fi

step environment 40 bash -c "
  date -u; echo \"nproc: \$(nproc --all) (nproc: \$(nproc))\"; uname -a
  nvidia-smi || echo 'nvidia-smi: not available'
  $PY - <<'EOF'
import importlib, platform, sys
import torch
print('python', platform.python_version(), sys.executable)
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())
print('cuda available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')
for name in ('lightning', 'cv2', 'onnx', 'onnxruntime', 'fastapi', 'pydantic', 'uvicorn', 'multipart', 'omegaconf',
             'gdown', 'huggingface_hub', 'platformdirs', 'filelock', 'pytest', 'xdist', 'pytest_timeout',
             'hypothesis', 'dfnet.onnx_export', 'dfnet.web.app'):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, '__version__', '?'), module.__file__)
    except Exception as error:
        print(name, 'NOT IMPORTABLE:', type(error).__name__, error)
import cv2
print('cv2.xphoto (opencv-contrib):', hasattr(cv2, 'xphoto'))
EOF
"

# ------------------------------------------------------------------------------------------------------
checks() {
  local xdist=()
  "$PY" -c "import xdist" 2>/dev/null && xdist=(-n 8)
  if [[ $DRY_RUN == 1 ]]; then
    step tests_cuda 120 "$PY" -m pytest -v -rA -p no:cacheprovider --timeout 60 -k cuda tests/test_optimize.py
    step bench_train_b6 300 "$PY" benchmarks/bench_train.py --device cpu --width 0.125 --size 256 --batch 2 \
      --loss structure --steps 1 --warmup 0 --threads 1 --no-compile \
      --json "$OUT/bench_train.json" --profile "$OUT/profile.txt"
    step bench_inference 240 "$PY" benchmarks/bench_inference.py --device cpu --width 0.125 --size 256 \
      --repeats 1 --warmup 0 --threads 1 --json "$OUT/bench_inference.json"
    step bench_peers 120 "$PY" benchmarks/bench_peers.py --device cpu --threads 1 --rounds 1
    large_batch cpu "${LARGE_BATCHES:-4 2}" --width 0.125 --size 256 --loss structure --steps 1 --warmup 0 \
      --threads 1 --no-compile
    step tests 240 "$PY" -m pytest -q -p no:cacheprovider "${xdist[@]}" --timeout 120 --durations=10 \
      --junitxml="$OUT/tests.xml" tests/test_baselines.py tests/test_choices.py
    return
  fi
  # Most needed first: the CUDA-only tests, the training-step ratio with its profile,
  # the inference rows, the largest batch, then the whole suite with the time that is left (the CPU tests
  # also run in CI; a suite stopped by the deadline still writes tests.xml, with what it ran).
  # (1a) The 7 CUDA-only tests (tests/test_optimize.py, needs_cuda): fp32/fp16/bf16 with and without CUDA
  # graphs against the eager model, and torch.compile.
  step tests_cuda 100 "$PY" -m pytest -v -rA -p no:cacheprovider --timeout 90 -k cuda tests/test_optimize.py
  # (2) Training step, full network, full loss, 512x512, batch 6: the reference, each optimisation added in
  # turn, and the whole fast path with torch.compile (about 100 s of compiling); then both profiled.
  step bench_train_b6 210 "$PY" benchmarks/bench_train.py --device cuda --width 1.0 --size 512 --batch 6 \
    --loss full --json "$OUT/bench_train.json" --profile "$OUT/profile.txt"
  # (3) Inference: the H100 command of docs/benchmarks.md (latency at batch 1, throughput, peak memory).
  step bench_inference 90 "$PY" benchmarks/bench_inference.py --device cuda --batches 1,16,64 --repeats 5 \
    --json "$OUT/bench_inference.json"
  # (3b) The peers (LaMa, MI-GAN) beside DFNet at 512x512, batch 1: markdown rows in session.log.
  step bench_peers 60 "$PY" benchmarks/bench_peers.py --device cuda --rounds 5
  # (2b) The largest batch that fits (a new shape: compiled again when the time allows).
  large_batch cuda "${LARGE_BATCHES:-}" --width 1.0 --size 512 --loss full
  # (1) The whole suite; -n 8 workers x 2 torch threads (tests/conftest.py) = the 16 cores.
  step tests 600 "$PY" -m pytest -q -p no:cacheprovider "${xdist[@]}" --timeout 150 --durations=40 \
    --junitxml="$OUT/tests.xml" tests
}

# large_batch DEVICE "CANDIDATES" BENCH_ARGS...: the reference against the fast path at the largest batch
# that fits. Without candidates, they come from bench_train.json: the reference step's measured memory per
# image at batch 6 and the GPU's size (85 % of it; at most 96), then half that; else 24, then 12. When less
# than COMPILE_SECONDS would be left before the whole suite's SUITE_RESERVE, the fast path is timed eagerly
# (--no-compile: every variant but torch.compile; about a minute). LARGE_BATCHES="B1 B2" names the candidates.
large_batch() {
  local device=$1 candidates=$2
  shift 2
  if [[ -z $candidates ]]; then
    candidates=$("$PY" - "$OUT/bench_train.json" <<'EOF' 2>>"$LOG" || echo "24 12"
import json, sys
train = json.load(open(sys.argv[1]))["train"]
reference = next(iter(train["memory"].values()))
per_image = reference["step"] / train["batch"]
fits = int((0.85 * train["info"]["gpu_total_bytes"] - 2 * reference["allocated_before"]) / per_image)
best = max(train["batch"], min(fits, 96) // 4 * 4)
print(best, max(train["batch"], best // 2 // 2 * 2))
EOF
    )
  fi
  log "largest-batch candidates: $candidates"
  local batch rc mode limit
  for batch in $candidates; do
    limit=$((DEADLINE - $(date +%s) - SUITE_RESERVE))
    mode=(--compiled-only)
    if ((limit < COMPILE_SECONDS)); then
      mode=(--no-compile)
      ((limit < 60)) && limit=60
      log "less than $COMPILE_SECONDS s left besides the suite's $SUITE_RESERVE: batch $batch without torch.compile"
    fi
    step "bench_train_b$batch" "$limit" "$PY" benchmarks/bench_train.py --device "$device" --batch "$batch" \
      "${mode[@]}" --json "$OUT/bench_train_large.json" "$@"
    rc=$?
    ((rc == 124 || rc == 125 || rc == 130 || rc == 137)) && return # out of time: no smaller try either
    # Done when the run finished and no variant was left out (out of memory leaves the fast path out).
    ((rc == 0)) && "$PY" -c "import json,sys; sys.exit(bool(json.load(open(sys.argv[1]))['train']['failed']))" \
      "$OUT/bench_train_large.json" && return
  done
}

# ------------------------------------------------------------------------------------------------------
train_mode() {
  local run_dir=$RUNS/texture-gpu
  rm -rf "$run_dir"
  local overrides=(data.root=data/device/train data.val_root=data/device/val_256 "output.dir=$RUNS")
  if [[ $DRY_RUN == 1 ]]; then
    # CPU, float32 (bf16 convolutions crawl on a CPU without avx512_bf16), small batch, no loader workers.
    overrides+=(trainer.accelerator=cpu trainer.precision=32 loss.vgg_precision=fp32 data.batch_size=2
      data.num_workers=0 data.persistent_workers=false trainer.log_every_n_steps=1
      "trainer.max_time=${TRAIN_SECONDS_DRY:-20}")
  else
    overrides+=("trainer.max_time=$TRAIN_SECONDS")
  fi
  # TRAIN_OVERRIDES: more KEY=VALUE overrides, space-separated (e.g. "data.batch_size=48").
  read -r -a extra <<<"${TRAIN_OVERRIDES:-}"
  overrides+=("${extra[@]}")
  if [[ ! -d data/device/train ]]; then
    log "data/device/train is missing: run scripts/pack_device_data.py and carry data/device"
  fi
  # The limit leaves time for the export below (training stops itself at trainer.max_time).
  step train $((DEADLINE - $(date +%s) - 45)) \
    "$PY" -m dfnet.cli train --config configs/texture-gpu.yaml "${overrides[@]}"
  # The run exports model.safetensors itself (output.export_half: false, so float32); when it did not get
  # that far, export the newest complete checkpoint instead.
  if [[ -f $run_dir/model.safetensors ]]; then
    step export 20 cp "$run_dir/model.safetensors" "$OUT/model.safetensors"
  else
    local checkpoint
    checkpoint=$(ls -t "$run_dir"/checkpoints/*.ckpt 2>/dev/null | head -n 1)
    if [[ -n $checkpoint ]]; then
      step export 60 "$PY" -m dfnet.cli export-checkpoint "$checkpoint" "$OUT/model.safetensors"
    else
      printf '%-26s rc=none no model.safetensors and no checkpoint in %s\n' export "$run_dir" >>"$SUMMARY"
    fi
  fi
  local metrics
  metrics=$(ls -t "$run_dir"/csv/*/metrics.csv 2>/dev/null | head -n 1)
  [[ -n $metrics ]] && cp "$metrics" "$OUT/metrics.csv"
  [[ -f $run_dir/config.yaml ]] && cp "$run_dir/config.yaml" "$OUT/config.yaml"
  log "run folder: $(ls -R "$run_dir" 2>/dev/null | head -n 40)"
}

if [[ $MODE == checks ]]; then checks; else train_mode; fi

{
  echo "# finished $(date -u +%Y-%m-%dT%H:%M:%SZ) after $(($(date +%s) - START)) s"
  echo "# files in $OUT:"
  (cd "$OUT" && ls -l | tail -n +2)
} >>"$SUMMARY"
cat "$SUMMARY"
