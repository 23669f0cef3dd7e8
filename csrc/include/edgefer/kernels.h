// edgefer's two kernels: the C++ API shared by the pybind11 module, the ONNX Runtime custom ops and the
// TensorRT plugins. Semantics are defined by edgefer/ops/reference.py; these functions must match it.
//
// Layout: tokens are (B, T, N, D), D = H * Dh. Strides are in elements. Callers validate shapes, dtypes and
// strides before calling; these functions assume valid arguments and never allocate Python objects.
#pragma once
#include <cstdint>

namespace edgefer {

// Fused temporal attention (CPU, fp32).
// qkv: logical (B, T, N, 3*D) with strides (sB, sT, sN, 1); channel c = part*D + h*Dh + i, part 0/1/2 = q/k/v.
// out: (B, T, N, D) contiguous. out[b,t,n,h,:] = sum_s softmax_s(scale * q[b,t,n,h,:].k[b,s,n,h,:]) v[b,s,n,h,:].
void temporal_attention_cpu(const float* qkv, int64_t B, int64_t T, int64_t N, int64_t H, int64_t Dh,
                            int64_t sB, int64_t sT, int64_t sN, float scale, float* out);

// Multi-scale embedding (CPU, fp32): pad + patchify + project + bias + pos_t + pos_s + residual.
// feat: (B*T, C, Hin, Win) contiguous NCHW. weight: (D, C, P, P) contiguous. bias: (D). pos_t: (T, D).
// pos_s: (G*G, D). residual: (B, T, G*G, D) contiguous or nullptr. out: (B, T, G*G, D) contiguous.
// Pixels at y >= Hin or x >= Win (the right/bottom zero padding up to G*P) contribute zero.
void multiscale_embedding_cpu(const float* feat, const float* weight, const float* bias, const float* pos_t,
                              const float* pos_s, const float* residual, int64_t B, int64_t T, int64_t C,
                              int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G, float* out);

}  // namespace edgefer
