// Multi-scale embedding on CUDA: pad + patchify + project + bias + pos_t + pos_s + residual in one kernel.
// Semantics: edgefer/ops/reference.py multiscale_embedding.
//
// The projection is a GEMM out[m, d] = sum_k A[m, k] W[d, k] with M = B*T*G*G patches, K = C*P*P and
// A[m, k] = feat[bt, c, gy*P + py, gx*P + px] (zero beyond the map: the right/bottom padding), formed on the
// fly while loading tiles (implicit im2col, nothing materialised). Tiles: 64 patches x 64 channels x 16 of K
// per step, 256 threads, 4 x 4 outputs per thread, fp32 accumulation. The epilogue adds bias, pos_t[t],
// pos_s[n] and the residual and writes (B, T, G*G, D) contiguous, i.e. row m of the GEMM is token (bt, n).
#include "cuda_common.cuh"
#include "edgefer/checked_int.h"

namespace edgefer {
namespace cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kBM = 64;   // patches per block tile
constexpr int kBN = 64;   // output channels per block tile
constexpr int kBK = 16;   // reduction step
constexpr int kPad = 4;   // shared-memory row padding (keeps float4 alignment, spreads banks)
constexpr int kThreads = 256;

struct EmbedShape {
  int64_t M;  // B * T * G * G
  int K;      // C * P * P
  int D, T, C, Hin, Win, P, G;
  int64_t fs0, fs1, fs2, fs3;  // feat strides
  int64_t rs0, rs1, rs2, rs3;  // residual strides
};

template <typename Scalar>
__global__ void __launch_bounds__(kThreads)
    multiscale_embedding_gemm(const Scalar* __restrict__ feat, const Scalar* __restrict__ weight,
                              const Scalar* __restrict__ bias, const Scalar* __restrict__ pos_t,
                              const Scalar* __restrict__ pos_s, const Scalar* __restrict__ residual,
                              Scalar* __restrict__ out, EmbedShape s) {
  __shared__ __align__(16) float as[kBK][kBM + kPad];
  __shared__ __align__(16) float bs[kBK][kBN + kPad];

  const int tid = threadIdx.x;
  const int tx = tid % 16;  // output channel group: d = n0 + tx*4 + c
  const int ty = tid / 16;  // patch group: m = m0 + ty*4 + r
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int n0 = blockIdx.y * kBN;
  const int GG = s.G * s.G;
  const int PP = s.P * s.P;

  // Each thread loads 4 A elements (patch-fastest, so P = 1 maps read neighbouring pixels) and 4 W elements
  // (K-fastest, W rows are contiguous). The patch decomposition of a thread's rows is fixed across K steps.
  int64_t a_base[4];
  int a_y0[4], a_x0[4];
  bool a_ok[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int m_local = (tid + j * kThreads) % kBM;
    const int64_t m = m0 + m_local;
    a_ok[j] = m < s.M;
    const int64_t bt = m / GG;
    const int g = static_cast<int>(m % GG);
    a_y0[j] = (g / s.G) * s.P;
    a_x0[j] = (g % s.G) * s.P;
    a_base[j] = bt * s.fs0;
  }

  float acc[4][4];
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;

  for (int k0 = 0; k0 < s.K; k0 += kBK) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int idx = tid + j * kThreads;
      const int m_local = idx % kBM;
      const int k_local = idx / kBM;
      const int k = k0 + k_local;
      float val = 0.f;
      if (a_ok[j] && k < s.K) {
        const int c = k / PP;
        const int rem = k % PP;
        const int y = a_y0[j] + rem / s.P;
        const int x = a_x0[j] + rem % s.P;
        if (y < s.Hin && x < s.Win) val = to_float(feat[a_base[j] + c * s.fs1 + y * s.fs2 + x * s.fs3]);
      }
      as[k_local][m_local] = val;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int idx = tid + j * kThreads;
      const int k_local = idx % kBK;
      const int d_local = idx / kBK;
      const int k = k0 + k_local;
      const int d = n0 + d_local;
      bs[k_local][d_local] =
          (k < s.K && d < s.D) ? to_float(weight[static_cast<int64_t>(d) * s.K + k]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&as[kk][ty * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&bs[kk][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w};
      const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
    }
    __syncthreads();
  }

  // Epilogue: ((conv + bias) + pos_t) + pos_s, then + residual, in the reference's order.
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int64_t m = m0 + ty * 4 + r;
    if (m >= s.M) continue;
    const int64_t bt = m / GG;
    const int n = static_cast<int>(m % GG);
    const int t = static_cast<int>(bt % s.T);
    const int64_t b = bt / s.T;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int d = n0 + tx * 4 + c;
      if (d >= s.D) continue;
      float v = acc[r][c] + to_float(bias[d]);
      v += to_float(pos_t[static_cast<int64_t>(t) * s.D + d]);
      v += to_float(pos_s[static_cast<int64_t>(n) * s.D + d]);
      if (residual != nullptr) v += to_float(residual[b * s.rs0 + t * s.rs1 + n * s.rs2 + d * s.rs3]);
      out[m * s.D + d] = from_float<Scalar>(v);
    }
  }
}

template <typename Scalar>
int32_t launch(const void* feat, const void* weight, const void* bias, const void* pos_t, const void* pos_s,
               const void* residual, Scalar* out, const EmbedShape& s, cudaStream_t stream) {
  const int64_t blocks_m = detail::ceil_div(s.M, kBM);
  const int64_t blocks_n = detail::ceil_div(s.D, kBN);
  if (blocks_m > detail::kMaxGridX || blocks_n > 65535) return kTooLarge;
  const dim3 grid(static_cast<unsigned>(blocks_m), static_cast<unsigned>(blocks_n));
  multiscale_embedding_gemm<Scalar><<<grid, kThreads, 0, stream>>>(
      static_cast<const Scalar*>(feat), static_cast<const Scalar*>(weight), static_cast<const Scalar*>(bias),
      static_cast<const Scalar*>(pos_t), static_cast<const Scalar*>(pos_s), static_cast<const Scalar*>(residual),
      out, s);
  return detail::launch_status();
}

}  // namespace

int32_t multiscale_embedding_cuda(const void* feat, const int64_t feat_strides[4], const void* weight,
                                  const void* bias, const void* pos_t, const void* pos_s, const void* residual,
                                  const int64_t res_strides[4], int32_t dtype, int64_t B, int64_t T, int64_t C,
                                  int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G, void* out,
                                  void* stream) {
  if (dtype != kFloat32 && dtype != kFloat16) return kBadDType;
  if (B <= 0 || T <= 0 || G <= 0 || D <= 0) return kOk;  // nothing to write
  const CheckedInt K = CheckedInt(C) * P * P, GP = CheckedInt(G) * P, GG = CheckedInt(G) * G, M = GG * B * T;
  if (!K.ok() || !GP.ok() || !M.ok() || K.value() > INT32_MAX - kBK || D > INT32_MAX || T > INT32_MAX ||
      C > INT32_MAX || Hin > INT32_MAX || Win > INT32_MAX || GP.value() > INT32_MAX || GG.value() > INT32_MAX)
    return kTooLarge;
  const bool has_res = residual != nullptr && res_strides != nullptr;
  EmbedShape s{M.value(),
               static_cast<int>(K.value()),
               static_cast<int>(D),
               static_cast<int>(T),
               static_cast<int>(C),
               static_cast<int>(Hin),
               static_cast<int>(Win),
               static_cast<int>(P),
               static_cast<int>(G),
               feat_strides[0],
               feat_strides[1],
               feat_strides[2],
               feat_strides[3],
               has_res ? res_strides[0] : 0,
               has_res ? res_strides[1] : 0,
               has_res ? res_strides[2] : 0,
               has_res ? res_strides[3] : 0};
  const void* res = has_res ? residual : nullptr;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (dtype == kFloat32)
    return launch<float>(feat, weight, bias, pos_t, pos_s, res, static_cast<float*>(out), s, st);
  return launch<__half>(feat, weight, bias, pos_t, pos_s, res, static_cast<__half*>(out), s, st);
}

}  // namespace cuda
}  // namespace edgefer
