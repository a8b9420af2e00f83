#!/usr/bin/env bash
# Builds llama.cpp's llama-server, llama-bench and llama-batched-bench from the llama-cpp-python
# source distribution (the same llama.cpp our fixtures come from), for side-by-side benchmarks.
# Output: .build-llamacpp/bin/. Not part of CI (about 10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
OUT="$PWD/.build-llamacpp"
if [ -x "$OUT/bin/llama-server" ] && [ -x "$OUT/bin/llama-bench" ] && [ -x "$OUT/bin/llama-batched-bench" ]; then
  echo "llama.cpp already built in $OUT/bin"; exit 0
fi
mkdir -p "$OUT/src"
python3 -m pip install --quiet --disable-pip-version-check cmake
if [ ! -d "$OUT/src/llama_cpp_python-$VERSION" ]; then
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python -d "$OUT/src" "llama-cpp-python==$VERSION"
  tar -xzf "$OUT/src/llama_cpp_python-$VERSION.tar.gz" -C "$OUT/src"
fi
SRC="$OUT/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$SRC" -B "$OUT/cmake" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$OUT/cmake" -j "$(nproc)" --target llama-server llama-bench llama-batched-bench
mkdir -p "$OUT/bin"
cp "$OUT/cmake/bin/llama-server" "$OUT/cmake/bin/llama-bench" "$OUT/cmake/bin/llama-batched-bench" "$OUT/bin/"
echo "built: $OUT/bin"
