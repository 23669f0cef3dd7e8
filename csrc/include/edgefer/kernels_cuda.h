// edgefer's two kernels on CUDA: the C++ API of the static library `edgefer_cuda_kernels` (csrc/cuda/).
// Semantics are defined by edgefer/ops/reference.py, exactly as for the CPU functions in kernels.h.
//
// No CUDA header is needed to include this file: the stream is passed as `void*` (a cudaStream_t, nullptr for
// the legacy default stream). All pointers are DEVICE pointers; strides are in elements. Every tensor has the
// same dtype (kFloat32 or kFloat16); softmax and GEMM accumulation are always fp32.
//
// Callers check the arguments with the same functions as for the CPU (edgefer/checks.h: shapes, strides, sizes
// that fit int64) and check dtypes and devices themselves. These functions then check only the dtype code and
// what the launch grid can cover (kTooLarge: a dimension over INT32_MAX, too many blocks); for arguments that
// passed, they never read or write out of bounds. A call with a zero-size dimension launches nothing and
// returns kOk. Launches are asynchronous on `stream`; the return
// value reports launch errors only (cudaGetLastError right after the launch).
//
// The target `edgefer_cuda_kernels` carries the compile definition EDGEFER_WITH_CUDA=1 to whoever links it.
#pragma once
#include <cstdint>

namespace edgefer {
namespace cuda {

// Element type of every tensor passed to one call.
enum DType : int32_t { kFloat32 = 0, kFloat16 = 1 };

// Return codes: kOk, kBadDType, kTooLarge (a dimension exceeds what the launch grid can cover), or a positive
// cudaError_t value from the launch. error_string() turns any of them into a message.
enum Status : int32_t { kOk = 0, kBadDType = -1, kTooLarge = -2 };

// Human-readable text of a return code of the functions below (never nullptr).
const char* error_string(int32_t code);

// Fused temporal attention (source: edgefer/ops/reference.py temporal_attention).
// qkv: logical (B, T, N, 3*D) with strides (sB, sT, sN, 1), D = H * Dh; channel c = part*D + h*Dh + i with
//      part 0/1/2 = q/k/v. Read strided in place: no copy or permute.
// out: (B, T, N, D) contiguous, same dtype.
// out[b,t,n,h,:] = sum_s softmax_s(scale * q[b,t,n,h,:] . k[b,s,n,h,:]) v[b,s,n,h,:].
// Several (b, n, h) sequences share one thread block (one warp each, K/V tiles in shared memory); a T so long
// that a tile does not fit uses a streaming (online-softmax) kernel instead. Any T >= 1 and Dh >= 1 work.
int32_t temporal_attention_cuda(const void* qkv, int32_t dtype, int64_t B, int64_t T, int64_t N, int64_t H,
                                int64_t Dh, int64_t sB, int64_t sT, int64_t sN, float scale, void* out,
                                void* stream);

// Multi-scale embedding (source: edgefer/ops/reference.py multiscale_embedding): zero-pad right/bottom to G*P,
// patchify into G x G patches of P x P, project to D (= Conv2d(C, D, P, stride P)), add bias, pos_t, pos_s and
// the residual, written as (B, T, G*G, D).
// feat: logical (B*T, C, Hin, Win) with strides feat_strides[4] (any, e.g. NCHW or NHWC).
// weight: (D, C, P, P) contiguous. bias: (D). pos_t: (T, D) contiguous. pos_s: (G*G, D) contiguous.
// residual: logical (B, T, G*G, D) with strides res_strides[4], or nullptr (then res_strides may be nullptr).
// out: (B, T, G*G, D) contiguous.
// Implemented as an implicit-im2col tiled GEMM (M = B*T*G*G patches, N = D, K = C*P*P) with the additions fused
// into its epilogue. Pixels at y >= Hin or x >= Win contribute zero.
int32_t multiscale_embedding_cuda(const void* feat, const int64_t feat_strides[4], const void* weight,
                                  const void* bias, const void* pos_t, const void* pos_s, const void* residual,
                                  const int64_t res_strides[4], int32_t dtype, int64_t B, int64_t T, int64_t C,
                                  int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G, void* out,
                                  void* stream);

}  // namespace cuda
}  // namespace edgefer
