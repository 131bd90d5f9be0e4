# Sourced by the GPU scripts: finds libcudart.so.12 and libnccl.so.2 (the loader cache, /usr/local/cuda, the system
# lib folder, or the nvidia-* wheels of a CUDA build of PyTorch) and puts their folders on LD_LIBRARY_PATH, which
# NCCL needs (the CUDA libtorch links NCCL into libtorch_cuda.so for itself, but the Trainer's NCCL backend loads
# libnccl.so.2 by name). Returns 1, saying what to install, when one is missing.
find_cuda_library() { # prints the folder holding $1
  local name=$1 dir
  dir=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }' | xargs -r dirname)
  if [[ -z "$dir" ]]; then
    dir=$(find /usr/local/cuda*/lib64 /usr/lib/x86_64-linux-gnu /usr/local/lib/python3*/dist-packages/nvidia \
      /usr/lib/python3/dist-packages/nvidia "$HOME"/.local/lib/python3*/site-packages/nvidia \
      -name "$name" -print -quit 2>/dev/null | xargs -r dirname)
  fi
  echo "$dir"
}

export_cuda_libraries() {
  local lib dir
  for lib in libcudart.so.12 libnccl.so.2; do
    dir=$(find_cuda_library "$lib")
    if [[ -z "$dir" ]]; then
      echo "$lib not found: install it (NCCL: apt-get install libnccl2, or pip install nvidia-nccl-cu12; CUDA runtime: nvidia-cuda-runtime-cu12)" >&2
      return 1
    fi
    echo "$lib in $dir"
    export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
}
