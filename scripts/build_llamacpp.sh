#!/usr/bin/env bash
# Builds llama.cpp's llama-server, llama-bench and llama-batched-bench from the llama-cpp-python
# source distribution (the same llama.cpp our fixtures come from), for side-by-side benchmarks.
# Output: .build-llamacpp/bin/. Not part of CI (about 10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
OUT="$PWD/.build-llamacpp"
if [ -x "$OUT/bin/llama-server" ] && [ -x "$OUT/bin/llama-bench" ] && [ -x "$OUT/bin/llama-batched-bench" ]; then
  echo "llama.cpp already built in $OUT/bin: $(cat "$OUT/bin/BUILD" 2>/dev/null || echo 'build flags not recorded')"; exit 0
fi
mkdir -p "$OUT/src"
python3 -m pip install --quiet --disable-pip-version-check cmake
if [ ! -d "$OUT/src/llama_cpp_python-$VERSION" ]; then
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python -d "$OUT/src" "llama-cpp-python==$VERSION"
  tar -xzf "$OUT/src/llama_cpp_python-$VERSION.tar.gz" -C "$OUT/src"
fi
SRC="$OUT/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
# On a CPU with AMX, llama.cpp's native build (GGML_NATIVE=ON, its default) includes its AMX kernels,
# which die with SIGILL on the first prompt on the Xeons we measured (../shared/PLATFORM.md): build
# for the CPU's vector extensions without AMX there, and say which build this is.
FLAGS=(-DGGML_NATIVE=ON)
BUILD="native (-DGGML_NATIVE=ON)"
if grep -qw amx_int8 /proc/cpuinfo; then
  FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
  for f in avx512f:GGML_AVX512 avx512_vnni:GGML_AVX512_VNNI avx512_vbmi:GGML_AVX512_VBMI avx512_bf16:GGML_AVX512_BF16 avx_vnni:GGML_AVX_VNNI; do
    grep -qw "${f%%:*}" /proc/cpuinfo && FLAGS+=("-D${f#*:}=ON")
  done
  BUILD="without AMX (the CPU has AMX; llama.cpp's AMX kernels crash): ${FLAGS[*]}"
fi
echo "llama.cpp build: $BUILD"
cmake -S "$SRC" -B "$OUT/cmake" -DCMAKE_BUILD_TYPE=Release "${FLAGS[@]}" -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$OUT/cmake" -j "$(nproc)" --target llama-server llama-bench llama-batched-bench
mkdir -p "$OUT/bin"
cp "$OUT/cmake/bin/llama-server" "$OUT/cmake/bin/llama-bench" "$OUT/cmake/bin/llama-batched-bench" "$OUT/bin/"
echo "$BUILD" > "$OUT/bin/BUILD"
echo "built: $OUT/bin ($BUILD)"
