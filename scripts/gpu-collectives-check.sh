#!/usr/bin/env bash
# GPU checks of the NCCL backend, for a machine with NVIDIA GPUs. Run from anywhere:
#   scripts/gpu-collectives-check.sh
# 1. shows the GPUs and finds libcudart.so.12 and libnccl.so.2 (system paths, /usr/local/cuda, or the nvidia-*
#    wheels of a CUDA build of PyTorch) and puts their folders on LD_LIBRARY_PATH;
# 2. runs the binding tests with no GPU needed (ids, enums, signatures);
# 3. runs NcclBindingGpuTests: all-reduce (sum/max/avg), broadcast and all-gather through the raw NCCL bindings
#    on device memory, one rank per GPU (up to 4) — needs only the two libraries, not a CUDA build of TorchSharp;
# 4. runs GpuCollectiveTests (the NcclProcessGroup end to end), which additionally need TorchSharp with CUDA:
#    the test project must then reference a libtorch-cuda-12 package instead of libtorch-cpu-linux-x64 (the NuGet
#    mirror of the dev machines does not serve one); without it these report "skipped" with the reason.
# Exits non-zero if a test fails, or if step 3 was skipped although a GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== GPUs"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
  echo "no NVIDIA GPU or driver (nvidia-smi failed): nothing to check here" >&2
  exit 1
fi
gpus=$(nvidia-smi -L | wc -l)

echo "== CUDA runtime and NCCL libraries"
find_lib() { # prints the folder holding $1, searching the loader cache, CUDA and Python wheels
  local name=$1 dir
  dir=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }' | xargs -r dirname)
  if [[ -z "$dir" ]]; then
    dir=$(find /usr/local/cuda*/lib64 /usr/lib/x86_64-linux-gnu /usr/local/lib/python3*/dist-packages/nvidia \
      /usr/lib/python3/dist-packages/nvidia "$HOME"/.local/lib/python3*/site-packages/nvidia \
      -name "$name" -print -quit 2>/dev/null | xargs -r dirname)
  fi
  echo "$dir"
}
for lib in libcudart.so.12 libnccl.so.2; do
  dir=$(find_lib "$lib")
  if [[ -z "$dir" ]]; then
    echo "$lib not found: install it (NCCL: apt-get install libnccl2, or pip install nvidia-nccl-cu12; CUDA runtime: nvidia-cuda-runtime-cu12)" >&2
    exit 1
  fi
  echo "$lib in $dir"
  export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done

echo "== build"
dotnet build tests/Trainer.Tests -v quiet -nologo

run_tests() {
  local filter=$1 log
  log=$(mktemp)
  dotnet test tests/Trainer.Tests --no-build --filter "$filter" --logger "console;verbosity=normal" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  SKIPPED=$(grep -c "^\s*Skipped " "$log" || true)
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
echo "GpuCollectiveTests skipped: $SKIPPED (a CPU-only TorchSharp skips them with the reason above)"
echo "== GPU collective checks passed"
