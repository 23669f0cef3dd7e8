// Text of the return codes of edgefer's CUDA kernel functions (see kernels_cuda.h).
#include <cuda_runtime.h>

#include "edgefer/kernels_cuda.h"

namespace edgefer {
namespace cuda {

const char* error_string(int32_t code) {
  switch (code) {
    case kOk:
      return "no error";
    case kBadDType:
      return "unsupported dtype code (expected 0 = float32 or 1 = float16)";
    case kTooLarge:
      return "tensor too large for one kernel launch grid";
    default:
      return code > 0 ? cudaGetErrorString(static_cast<cudaError_t>(code)) : "unknown edgefer CUDA error";
  }
}

}  // namespace cuda
}  // namespace edgefer
