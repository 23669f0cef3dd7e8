// Shared helpers of edgefer's CUDA kernels: element conversion, warp reductions, launch bookkeeping.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "edgefer/kernels_cuda.h"

namespace edgefer {
namespace cuda {
namespace detail {

constexpr int kWarp = 32;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename Scalar>
__device__ __forceinline__ Scalar from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }

// Sum / max over the 32 lanes of a warp; every lane gets the result. fmaxf ignores a NaN operand, which is
// fine here: a NaN score still turns exp(score - max) and so the whole softmax row into NaN.
__device__ __forceinline__ float warp_sum(float v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Status of the launch just made on this thread (kOk or the cudaError_t value).
inline int32_t launch_status() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? kOk : static_cast<int32_t>(err);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kMaxGridX = 2147483647;  // gridDim.x limit from sm_30 on

}  // namespace detail
}  // namespace cuda
}  // namespace edgefer
