#!/usr/bin/env bash
# Builds edgefer's C++ (the CPU kernels, edgefer._C, libedgefer_ortops) with AddressSanitizer and
# UndefinedBehaviorSanitizer (CMake option EDGEFER_SANITIZE=ON, CPU only) into build/asan, then runs tests against
# that build: by default the hostile-input, fuzz and race tests; any other pytest arguments instead.
#
#   tools/sanitize.sh                                  # build, then the default tests
#   tools/sanitize.sh tests/test_cpp_bindings.py -x    # build, then these
#
# Run it from the environment the package was installed into (numpy, torch, onnx, onnxruntime, pytest,
# hypothesis, pybind11). The installed package is not touched: the sanitized edgefer._C is put ahead of it by a
# sitecustomize.py in build/asan/site (on PYTHONPATH), the sanitized ONNX Runtime library by
# EDGEFER_ORTOPS_LIBRARY. ONNX Runtime's headers are reused from an earlier build's download when one exists
# (set EDGEFER_ONNXRUNTIME_INCLUDE_DIR to choose). EDGEFER_ASAN_BUILD overrides the build folder.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EDGEFER_ASAN_BUILD:-$repo/build/asan}"
out="$build/out"
python="$(command -v python)"

ort_include="${EDGEFER_ONNXRUNTIME_INCLUDE_DIR:-}"
if [[ -z "$ort_include" ]]; then
  for dir in "$repo"/build/*/_deps/onnxruntime-headers/pkg/usr/include/onnxruntime; do
    if [[ -f "$dir/onnxruntime_c_api.h" ]]; then ort_include="$dir"; break; fi
  done
fi

cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEFER_SANITIZE=ON -DEDGEFER_CUDA=OFF \
  -DEDGEFER_ORTOPS_REQUIRED=ON -DEDGEFER_DEV_OUTPUT_DIR="$out" -DPython_EXECUTABLE="$python" \
  ${ort_include:+-DEDGEFER_ONNXRUNTIME_INCLUDE_DIR="$ort_include"}
cmake --build "$build" -j "$(nproc)"

extension="$(ls "$out"/_C*.so)"
mkdir -p "$build/site"
cat >"$build/site/sitecustomize.py" <<EOF
# Written by tools/sanitize.sh: import edgefer._C from the sanitized build, ahead of any installed one.
import importlib.util
import sys


class _SanitizedExtension:
    @staticmethod
    def find_spec(name, path=None, target=None):
        return importlib.util.spec_from_file_location(name, "$extension") if name == "edgefer._C" else None


sys.meta_path.insert(0, _SanitizedExtension)
EOF

export PYTHONPATH="$build/site${PYTHONPATH:+:$PYTHONPATH}"
export EDGEFER_ORTOPS_LIBRARY="$out/libedgefer_ortops.so"
export EDGEFER_REQUIRE_BUILD=1
# Python itself is not instrumented: the ASan runtime must be loaded first, and libstdc++ with it (ASan's
# __cxa_throw interceptor needs it at start-up). CPython keeps memory until exit by design (no leak checks); an
# allocation over 1 GiB fails (std::bad_alloc, MemoryError) instead of aborting, as on a machine without it.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=1024"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

cd "$repo"
"$python" -c "import edgefer._C, edgefer.ortops; print('sanitized build:', edgefer._C.__file__, edgefer.ortops.library_path())"
if [[ $# -eq 0 ]]; then
  set -- tests/test_cpp_hostile.py tests/test_cpp_fuzz.py tests/test_cpp_races.py tests/test_ort_hostile.py
fi
exec "$python" -m pytest -q -p no:cacheprovider "$@"
