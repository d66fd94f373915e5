#!/usr/bin/env bash
# One prepared run on the lent GPU (issue 18), at most about 6 minutes, so that a rerun fits in
# a session's 15 minutes of device time: per 3D model at the real-data patch (64 x 128 x 128,
# batch 2, base 16 filters, depth 5), samples per second through the real training path
# (loaders included) and peak GPU memory, in float32, mixed_float16 and mixed_bfloat16:
#   1. Keras on JAX (XLA compiles the step);
#   2. Keras on PyTorch, channels_first layout (training.data_format), against channels_last;
#   3. the plain-PyTorch reference (AMP with channels-last memory), the target's yardstick;
#   4. the parity check: the same short training in each precision, validation Dice within 0.01.
# Every stage has its own time limit and writes its JSON after each row: a stage cut short
# still hands back what it measured. Figures go to BENCHMARKS.md ("GPU back ends").
#
# The GPU machine has PyTorch and JAX but no Keras: carry Keras and what it needs as wheels.
# Here, once, in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   for w in keras==3.15.1 namex==0.1.0 optree==0.20.0 nibabel==5.4.2; do
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl "$w"; done
# Then the device tool's run: command "bash bench/gpu_backends.sh", carry [".whl"],
# timeout_s 420. SMOKE=1 bash bench/gpu_backends.sh tries every stage on a CPU at toy sizes
# (with the project's .venv: PYTHON=.venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_backends}
mkdir -p "$OUT"
python=${PYTHON:-python3}
if [ -d .whl ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD/src
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
log=$OUT/log.txt
if [ "${SMOKE:-0}" = 1 ]; then
    size="--cases 3 --epochs 2 --steps 2 --workers 1 --patch3d 16 32 32 --depth 3 --base-filters 4"
    parity="--cases 3 --epochs 1 --steps 2 --patch 16 32 32 --depth 3 --base-filters 4"
    reference="--patch3d 16 32 32 --depth 3 --base-filters 4 --warmup 1 --steps 1 --repeats 1"
    scale=4  # a CPU: longer limits
else
    size="--cases 4 --epochs 3 --steps 15 --workers 12"
    parity="--epochs 3 --steps 20"
    reference=""
    scale=1
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  "$python" -c "import keras, torch, jax; print('keras', keras.__version__, 'torch', torch.__version__, 'jax', jax.__version__)"
} | tee "$log"
stage() {  # stage NAME LIMIT_S BACKEND ARGS...: one benchmark under its time limit, logged
    local name=$1 limit=$(($2 * scale)) backend=$3
    shift 3
    echo "== $name (KERAS_BACKEND=$backend, at most $limit s): $*" | tee -a "$log"
    local start=$SECONDS
    KERAS_BACKEND=$backend timeout "$limit" "$python" "$@" 2>&1 | grep -v Warning | tee -a "$log"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$log"
}
stage jax 120 jax bench/gpu_training.py $size --models unet3d resunet3d --out "$OUT/jax.json"
stage torch_channels_first 70 torch bench/gpu_training.py $size --models unet3d resunet3d \
    --precisions float32 mixed_float16 --data-format channels_first --out "$OUT/torch_cf.json"
stage torch_channels_last 40 torch bench/gpu_training.py $size --models unet3d \
    --precisions float32 mixed_float16 --out "$OUT/torch_cl.json"
stage reference 45 torch bench/gpu_mixed_precision.py --models unet3d resunet3d --batch3d 2 \
    $reference --only "torch reference: fp32_tf32" "torch reference: amp_channels_last" \
    --out "$OUT/reference.json"
stage parity 120 jax bench/gpu_parity.py $parity --out "$OUT/parity.json"
ls -l "$OUT" | tee -a "$log"
