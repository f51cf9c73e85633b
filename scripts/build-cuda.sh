#!/usr/bin/env bash
# Builds `omakase` with candle's CUDA backend (`--features cuda`) on a machine without a GPU, for a GPU
# machine with NVIDIA driver ≥ 580 (CUDA 13.0) and compute capability $CUDA_COMPUTE_CAP (default 90:
# H100/H200). Everything comes from PyPI, sha256-checked (scripts/cuda-requirements.txt):
#
#   bash scripts/build-cuda.sh            → target/cuda/release/omakase
#
# The toolchain lands in $OMAKASE_CUDA_TOOLCHAIN (default ~/.cache/omakase/cuda-13.0), once. The binary
# links against libcuda.so.1 (the driver's), libcublas(Lt).so.13, libcurand.so.10 and libnvrtc.so.13,
# found at run time through the loader's usual paths or LD_LIBRARY_PATH (the wheels' nvidia/cu13/lib
# holds the last four). Building needs no GPU: the driver library is linked against a stub generated
# here from cudarc's own list of driver functions, as the CUDA toolkit's lib64/stubs/libcuda.so is.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain="${OMAKASE_CUDA_TOOLCHAIN:-$HOME/.cache/omakase/cuda-13.0}"
cuda_home="$toolchain/nvidia/cu13"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

step() { printf '\n==> %s\n' "$*" >&2; }

install_toolchain() {
  [ -x "$cuda_home/bin/nvcc" ] && [ -f "$cuda_home/lib/stubs/libcuda.so" ] && return
  step "installing the CUDA 13.0 toolchain from PyPI into $toolchain (~700 MB of wheels, sha256-checked)"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    --target "$toolchain" -r scripts/cuda-requirements.txt
  # The wheels ship versioned sonames only; the linker's -lcublas needs the plain names.
  local lib="$cuda_home/lib"
  for soname in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
    ln -sf "$soname" "$lib/${soname%.so.*}.so"
  done
  make_driver_stub "$lib/stubs"
}

# A libcuda.so that defines every driver function cudarc can call (as no-ops) with the driver's soname,
# so the binary links here and binds to the real libcuda.so.1 on the GPU machine.
make_driver_stub() {
  local dir="$1" cudarc
  cudarc="$(cargo_registry_crate cudarc)"
  mkdir -p "$dir"
  grep -oP '^pub unsafe fn \Kcu\w+' "$cudarc/src/driver/sys/mod.rs" | sort -u \
    | sed 's/.*/int &(void) { return 999; }/' > "$dir/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$dir/libcuda_stub.c"
}

# The source folder of the crate version that Cargo.lock pins (fetched first when absent).
cargo_registry_crate() {
  local name="$1" version
  cargo fetch --quiet
  version="$(awk -v n="$name" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
  [ -n "$version" ] || { echo "build-cuda: $name is not in Cargo.lock (is the cuda feature declared?)" >&2; exit 1; }
  ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$name-$version" | head -n 1
}

install_toolchain
export CUDA_HOME="$cuda_home"
export PATH="$cuda_home/bin:$PATH"
export LIBRARY_PATH="$cuda_home/lib:$cuda_home/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
step "nvcc: $(nvcc --version | tail -n 1); compute capability $CUDA_COMPUTE_CAP"
step "cargo build --release --features cuda (candle's kernels take a while with nvcc the first time)"
cargo build --release --features cuda --bin omakase --target-dir target/cuda
echo "target/cuda/release/omakase"
