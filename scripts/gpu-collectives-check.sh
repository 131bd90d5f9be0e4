#!/usr/bin/env bash
# GPU checks of the NCCL backend, for a machine with NVIDIA GPUs. Run from anywhere:
#   scripts/gpu-collectives-check.sh
# 1. shows the GPUs and finds libcudart.so.12 and libnccl.so.2 (system paths, /usr/local/cuda, or the nvidia-*
#    wheels of a CUDA build of PyTorch) and puts their folders on LD_LIBRARY_PATH;
# 2. runs the binding tests with no GPU needed (ids, enums, signatures);
# 3. runs NcclBindingGpuTests: all-reduce (sum/max/avg), broadcast and all-gather through the raw NCCL bindings
#    on device memory, one rank per GPU (up to 4) — needs only the two libraries, not a CUDA build of TorchSharp;
# 4. runs GpuCollectiveTests (the NcclProcessGroup end to end), which additionally need TorchSharp with CUDA: the
#    tests are built with -p:TorchBackend=$TORCH_BACKEND (default cuda: the TorchSharp-cuda-linux package, which the
#    NuGet mirror of the dev machines does not serve; TORCH_BACKEND=cpu makes these report "skipped" with the reason).
# Exits non-zero if a test fails, if step 3 was skipped although a GPU is present, or if step 4 was skipped with cuda.
# scripts/gpu-check.sh runs this first.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_BACKEND=${TORCH_BACKEND:-cuda}

echo "== GPUs"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
  echo "no NVIDIA GPU or driver (nvidia-smi failed): nothing to check here" >&2
  exit 1
fi
gpus=$(nvidia-smi -L | wc -l)

echo "== CUDA runtime and NCCL libraries"
source scripts/cuda-libraries.sh
export_cuda_libraries

echo "== build"
dotnet build tests/Trainer.Tests -v quiet -nologo -p:TorchBackend="$TORCH_BACKEND"

run_tests() {
  local filter=$1 log
  log=$(mktemp)
  dotnet test tests/Trainer.Tests --no-build --filter "$filter" --logger "console;verbosity=normal" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  # Skipped tests, less those that need more GPUs than this machine has (their reason says "needs N CUDA devices").
  SKIPPED=$(grep -A1 '\[SKIP\]$' "$log" | grep -v -e '\[SKIP\]$' -e '^--$' | grep -cv 'needs [0-9]* CUDA devices' || true)
  rm -f "$log"
  return "$status"
}

echo "== bindings (no GPU needed)"
run_tests "FullyQualifiedName~Distributed.NcclInteropTests"

echo "== NCCL through the raw bindings on $gpus GPU(s)"
run_tests "FullyQualifiedName~Distributed.NcclBindingGpuTests"
if [[ "$SKIPPED" != 0 ]]; then
  echo "the raw NCCL test was skipped although nvidia-smi sees $gpus GPU(s); see the reason above" >&2
  exit 1
fi

echo "== NcclProcessGroup end to end (needs a CUDA build of TorchSharp)"
run_tests "FullyQualifiedName~Distributed.GpuCollectiveTests"
echo "GpuCollectiveTests skipped for want of CUDA or NCCL: $SKIPPED (a CPU-only TorchSharp skips them with the reason above)"
if [[ "$SKIPPED" != 0 && "$TORCH_BACKEND" == cuda ]]; then
  echo "GpuCollectiveTests were skipped although the tests were built with the CUDA libtorch; see the reason above" >&2
  exit 1
fi
echo "== GPU collective checks passed"
