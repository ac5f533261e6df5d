#!/usr/bin/env bash
# The device check: CUDA tests, the loss and training benchmarks, and a short SS-RML-CNN run
# with AMP and one label refresh. Run on a GPU machine from the repository root; results go
# to $OUT (default benchmarks/results). No install needed beyond torch, torchvision,
# scikit-learn, tqdm, PyYAML and Pillow.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch, torchvision; print('torch', torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
$PY -c "import triton; print('triton', triton.__version__)" 2>&1 | tail -1
echo "== the fused Triton kernel, compiled, against the literal loop"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/losses/test_fused_triton.py 2>&1 | tail -5
echo "== loss benchmark"
timeout 120 $PY benchmarks/bench_losses.py --device cuda --rounds 10 --out "$OUT" 2>&1 | tail -30
echo "== training throughput"
timeout 150 $PY benchmarks/bench_training.py --device cuda --epochs 5 --rounds 4 --amp bf16 \
    --out "$OUT" 2>&1 | tail -12
echo "== CUDA tests"
timeout 90 $PY -m pytest -q -p no:cacheprovider tests/losses/test_cuda.py tests/test_propagation.py \
    -k "cuda or gpu or Cuda or GPU" 2>&1 | tail -5
echo "== SS-RML-CNN with AMP (bf16), channels-last, one refresh"
timeout 90 $PY -m rmlc train --device cuda --amp bf16 --channels-last --backbone resnet18 --small-input \
    --semi-supervised --num-labeled 1000 --warmup-epochs 2 --refresh-every 2 --epochs 4 \
    --out "$OUT/ss-run" --no-progress --no-tensorboard 2>&1 | tail -14
cp "$OUT/ss-run/metrics.json" "$OUT/gpu-ss-metrics.json" 2>/dev/null
cp "$OUT/ss-run/train.log" "$OUT/gpu-ss-train.log" 2>/dev/null
rm -rf "$OUT/ss-run"
