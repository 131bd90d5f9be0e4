#!/usr/bin/env bash
# The GPU check: one run on a machine with NVIDIA GPUs says whether the CUDA build works and how fast it is.
#   scripts/gpu-check.sh --pack [DIR]  here, with .NET: builds the travelling bundle DIR/gpu-check.tar.gz (at most
#                                      64 MiB): a self-contained, trimmed Trainer without libtorch, and these scripts
#   ./gpu-check.sh                     on the GPU machine, in the unpacked bundle: no .NET and no network needed. It
#                                      takes libtorch, libnccl and libcudart from that machine's PyTorch (the torch and
#                                      nvidia-* packages of its Python), reports what loaded (`Trainer devices`), then
#                                      runs steps 3 and 4 below. A PyTorch of another libtorch version than TorchSharp's
#                                      (2.10) may not load: the report says which library failed and why.
#   scripts/gpu-check.sh               on a GPU machine with .NET and a NuGet source that serves TorchSharp-cuda-linux
#   scripts/gpu-check.sh --cpu         the same steps with the CPU build and 2 ranks, to try the script without a GPU
# Steps:
# 1. the GPUs, libcudart.so.12 and libnccl.so.2, then scripts/gpu-collectives-check.sh (NCCL binding and process
#    group tests, built with -p:TorchBackend=cuda) and GpuTrainingTests (a learner on cuda:0, checkpoint to CPU and back);
# 2. publishes the Trainer self-contained and trimmed,
#      dotnet publish Trainer -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TorchBackend=cuda
#    and measures it. ILLink trims managed code only; libtorch's native libraries (and the CUDA libraries that come
#    with them) are copied as they are, so they are reported apart. What the project ships itself: the managed
#    assemblies, the .NET runtime, libLibTorchSharp.so and the apphost; that part must be at most 64 MiB;
# 3. `Trainer check` from the published build, one rank per GPU over NCCL (TRAINER_BACKEND=nccl, so no silent
#    fallback to the CPU ring): the all-reduce is verified on every rank and rank 0 reports the NCCL bus bandwidth
#    (which needs 2 or more GPUs: NCCL puts two ranks on one GPU nowhere);
# 4. a short training run from the published build, one rank per GPU with --device cuda: the seed's recipe
#    (wrn_22 k=6, bs 128 per rank) for one epoch of CIFAR-10-sized synthetic data, and reports images/s.
# Environment: GPU_CHECK_OUT (folder for the build and the logs; default a new temp folder), GPU_CHECK_RANKS (ranks;
# default the number of GPUs), GPU_CHECK_TRAIN_ARGS (replaces the training arguments after `train`).
# Exits non-zero on the first failure; every run has a time limit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
budget_mib=64
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

mode=gpu
if [[ -x "$here/publish/Trainer" && $# -eq 0 ]]; then
  mode=bundle # the unpacked bundle on the GPU machine
elif [[ "${1:-}" == "--cpu" ]]; then
  mode=cpu
elif [[ "${1:-}" == "--pack" ]]; then
  mode=pack
elif [[ $# -gt 0 ]]; then
  echo "usage: scripts/gpu-check.sh [--cpu | --pack [DIR]]" >&2
  exit 2
fi
out=${GPU_CHECK_OUT:-$(mktemp -d -t gpu-check.XXXXXX)}
mkdir -p "$out"

if [[ $mode == pack ]]; then
  cd "$here/.."
  dest=${2:-$out}
  bundle="$out/bundle"
  rm -rf "$bundle" && mkdir -p "$bundle"
  echo "== the travelling bundle: self-contained, trimmed Trainer without libtorch (the GPU machine's PyTorch has its own)"
  # libLibTorchSharp (TorchSharp's glue to libtorch) is the same for the CPU and CUDA packages; only libtorch differs.
  dotnet publish Trainer -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TorchBackend=cpu -o "$bundle/publish" -nologo -v quiet
  find "$bundle/publish" -maxdepth 1 -type f \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' -o -name 'libshm*.so*' \
    -o -name 'libbackend_with_compiler.so' -o -name 'libjitbackend_test.so' -o -name 'libtorchbind_test.so' \) -delete
  cp scripts/gpu-check.sh scripts/cuda-libraries.sh "$bundle/"
  mkdir -p "$dest"
  tar -C "$bundle" -czf "$dest/gpu-check.tar.gz" .
  size=$(stat -c %s "$dest/gpu-check.tar.gz")
  echo "bundle: $dest/gpu-check.tar.gz, $(mib "$size") MiB ($(du -sm "$bundle" | cut -f1) MiB unpacked; budget $budget_mib MiB)"
  echo "on the GPU machine: mkdir gpu-check && tar -C gpu-check -xzf gpu-check.tar.gz && gpu-check/gpu-check.sh"
  (( size <= budget_mib * 1024 * 1024 )) || { echo "the bundle is over the $budget_mib MiB budget" >&2; exit 1; }
  exit 0
fi

if [[ $mode == bundle ]]; then
  publish="$here/publish"
  echo "== 1. the GPU machine's own libtorch, CUDA runtime and NCCL (from its Python's torch and nvidia-* packages)"
  torch_dir=""
  for py in python3 python; do
    command -v "$py" >/dev/null 2>&1 || continue
    torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) && break
  done
  if [[ -z "$torch_dir" ]]; then
    torch_dir=$(ls -d /usr/local/lib/python3*/*-packages/torch /usr/lib/python3*/*-packages/torch /opt/conda/lib/python3*/site-packages/torch \
      "$HOME"/.local/lib/python3*/site-packages/torch 2>/dev/null | head -n 1 || true)
  fi
  [[ -n "$torch_dir" && -d "$torch_dir/lib" ]] || { echo "no PyTorch found (import torch failed, and no .../site-packages/torch): install PyTorch with CUDA" >&2; exit 1; }
  echo "PyTorch: $torch_dir ($(cat "$torch_dir/version.py" 2>/dev/null | sed -n "s/^__version__ = '\(.*\)'/\1/p"))"
  libs="$torch_dir/lib"
  for dir in "$(dirname "$torch_dir")"/nvidia/*/lib; do [[ -d "$dir" ]] && libs="$libs:$dir"; done
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "$publish/Trainer" devices | tee "$out/devices.log" || { echo "CUDA or NCCL cannot be used from this PyTorch: see the lines above" >&2; exit 1; }
  nvidia-smi -L 2>/dev/null || true
  ranks=${GPU_CHECK_RANKS:-$(nvidia-smi -L 2>/dev/null | wc -l)}
  (( ranks > 0 )) || ranks=1
  train_args=(--preset seed --dataset synthetic --epochs 1 --device cuda --log-every 100)
  [[ -n "${GPU_CHECK_TRAIN_ARGS:-}" ]] && read -r -a train_args <<< "$GPU_CHECK_TRAIN_ARGS"
  ours=$(du -sb "$publish" | cut -f1)
  libtorch=0
  mode=gpu
else
cd "$here/.."

if [[ $mode == gpu ]]; then
  echo "== 1. GPUs, libraries and GPU tests"
  scripts/gpu-collectives-check.sh
  source scripts/cuda-libraries.sh
  export_cuda_libraries
  dotnet test tests/Trainer.Tests --no-build --filter "FullyQualifiedName~Training.GpuTrainingTests" --logger "console;verbosity=normal" \
    2>&1 | tee "$out/gpu-training-tests.log"
  if grep -q '\[SKIP\]$' "$out/gpu-training-tests.log"; then
    echo "GpuTrainingTests were skipped although this machine has a GPU; see the reason above" >&2
    exit 1
  fi
  ranks=${GPU_CHECK_RANKS:-$(nvidia-smi -L | wc -l)}
  backend=cuda
  train_args=(--preset seed --dataset synthetic --epochs 1 --device cuda --log-every 100)
else
  echo "== 1. (--cpu: no GPU tests)"
  ranks=${GPU_CHECK_RANKS:-2}
  backend=cpu
  train_args=(--preset quick --dataset synthetic --limit-train 512 --limit-valid 256 --bs 64 --device cpu)
fi
if [[ -n "${GPU_CHECK_TRAIN_ARGS:-}" ]]; then
  read -r -a train_args <<< "$GPU_CHECK_TRAIN_ARGS"
fi

echo "== 2. self-contained, trimmed publish (TorchBackend=$backend)"
publish="$out/publish"
rm -rf "$publish"
dotnet publish Trainer -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TorchBackend="$backend" -o "$publish" -nologo -v quiet
# What the project ships itself vs libtorch's native libraries (everything else that is a shared library).
dotnet_native='^(libcoreclr.*|libclr.*|libhostfxr|libhostpolicy|libmscord.*|libSystem\..*|createdump)(\.so)?$'
report=$(cd "$publish" && find . -maxdepth 1 -type f -printf '%s %f\n' | awk -v dn="$dotnet_native" '
  { size = $1; name = $2
    if (name ~ /\.dll$/) group = "managed"
    else if (name == "libLibTorchSharp.so") group = "torchsharp"
    else if (name ~ dn) group = "dotnet"
    else if (name ~ /\.so(\.[0-9]+)*$/) group = "libtorch"
    else group = "other"
    bytes[group] += size; files[group]++ }
  END { for (g in bytes) printf "%s %d %d\n", g, bytes[g], files[g] }')
bytes_of() { awk -v g="$1" '$1 == g { print $2 }' <<< "$report" | grep . || echo 0; }
files_of() { awk -v g="$1" '$1 == g { print $3 }' <<< "$report" | grep . || echo 0; }
ours=0
for group in managed dotnet torchsharp other; do ours=$((ours + $(bytes_of $group))); done
libtorch=$(bytes_of libtorch)
echo "managed assemblies (trimmed; TorchSharp and Trainer kept whole): $(mib "$(bytes_of managed)") MiB in $(files_of managed) files"
echo ".NET runtime native libraries:                                  $(mib "$(bytes_of dotnet)") MiB in $(files_of dotnet) files"
echo "libLibTorchSharp.so:                                            $(mib "$(bytes_of torchsharp)") MiB"
echo "apphost, *.json, *.pdb:                                         $(mib "$(bytes_of other)") MiB in $(files_of other) files"
echo "shipped by the project (the four above):                        $(mib $ours) MiB (budget $budget_mib MiB)"
echo "libtorch native libraries (untouched by trimming):              $(mib "$libtorch") MiB in $(files_of libtorch) files; largest:"
(cd "$publish" && find . -maxdepth 1 -type f -name 'lib*.so*' -printf '%s %f\n' | sort -rn \
  | awk -v dn="$dotnet_native" '$2 !~ dn && $2 != "libLibTorchSharp.so" && shown++ < 5 { printf "    %8.1f MiB  %s\n", $1 / 1048576, $2 }')
if (( ours > budget_mib * 1024 * 1024 )); then
  echo "the part the project ships is $(mib $ours) MiB, over the $budget_mib MiB budget" >&2
  exit 1
fi

fi

threads=$(( $(nproc) / ranks > 0 ? $(nproc) / ranks : 1 )) # torch CPU threads per rank, as the app host gives them
# Starts $ranks ranks of the published Trainer with torchrun's variables, each under a time limit; fails if one fails.
run_ranks() {
  local name=$1 limit=$2 port rank pids=() status=0
  shift 2
  port=$(( 20000 + RANDOM % 20000 ))
  for ((rank = 0; rank < ranks; rank++)); do
    RANK=$rank LOCAL_RANK=$rank WORLD_SIZE=$ranks LOCAL_WORLD_SIZE=$ranks GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      TORCHELASTIC_RUN_ID="gpu-check-$name" TRAINER_BACKEND=$([[ $mode == gpu ]] && echo nccl || echo cpu) TRAINER_THREADS=$threads \
      timeout "$limit" "$publish/Trainer" "$@" > "$out/$name-$rank.log" 2>&1 &
    pids+=($!)
  done
  for rank in "${!pids[@]}"; do
    if ! wait "${pids[$rank]}"; then
      echo "rank $rank of '$name' failed (log: $out/$name-$rank.log):" >&2
      tail -n 20 "$out/$name-$rank.log" >&2
      status=1
    fi
  done
  return $status
}

echo "== 3. Trainer check, $ranks rank(s)"
run_ranks check 300 check
grep -h '^check: ' "$out"/check-*.log
check_line=$(grep -h '^check: rank 0/' "$out/check-0.log")
if [[ $mode == gpu && "$check_line" != *"verified (nccl)"* ]]; then
  echo "the check did not run over NCCL: $check_line" >&2
  exit 1
fi
bandwidth="$(sed -n 's/.*bus bandwidth \([0-9.]*\) GB\/s.*/\1/p' <<< "$check_line") GB/s"
(( ranks > 1 )) || bandwidth="not measured (one rank; NCCL needs a GPU per rank)"

echo "== 4. training run, $ranks rank(s): train ${train_args[*]}"
run_ranks train 3600 train "${train_args[@]}" --output "$out/run"
tail -n 3 "$out/train-0.log"
summary="$out/run/summary.json"
images=$(sed -n 's/.*"images_per_second": \([0-9.]*\).*/\1/p' "$summary" | head -n 1)
per_rank=$(sed -n 's/.*"images_per_second_per_rank": \([0-9.]*\).*/\1/p' "$summary" | head -n 1)

echo "== results ($mode)"
echo "published Trainer: $(mib $ours) MiB shipped by the project (budget $budget_mib MiB) + $(mib "$libtorch") MiB libtorch native libraries"
echo "check over $([[ $mode == gpu ]] && echo NCCL || echo the CPU ring), $ranks rank(s): all-reduce of 16 MiB verified, bus bandwidth $bandwidth"
printf 'training: %.0f images/s in all (%.0f per rank) over %s rank(s); summary: %s\n' "$images" "$per_rank" "$ranks" "$summary"
echo "logs and build: $out"
