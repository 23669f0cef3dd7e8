// Fused temporal attention on CUDA: softmax(scale * q k^T) v along T for every (clip, spatial token, head),
// q/k/v read strided straight from the QKV projection's output, written in (B, T, N, D) layout.
// Semantics: edgefer/ops/reference.py temporal_attention.
//
// T (16 in MSSTNet/STT) is tiny, so one sequence is one warp and several sequences share a thread block:
// each warp stages its sequence's K and V (fp32) in shared memory, then for each query t lane s computes the
// score against key s, the warp reduces max and sum with shuffles, and lane i accumulates output element i.
// Rows are padded to an odd length so that lanes reading different keys hit different banks.
// A sequence whose tile does not fit in shared memory goes to a streaming kernel (one warp per query, online
// softmax over the keys straight from global memory), so any T and head dim work.
#include <cmath>

#include "cuda_common.cuh"
#include "edgefer/checked_int.h"

namespace edgefer {
namespace cuda {
namespace {

using detail::from_float;
using detail::kWarp;
using detail::to_float;
using detail::warp_max;
using detail::warp_sum;

constexpr int kMaxWarpsPerBlock = 8;
constexpr int64_t kSharedBudget = 48 * 1024;  // bytes per block without the opt-in attribute, sm_75 and up
constexpr int kStreamDims = 256;              // head-dim elements a lane group keeps in registers (8 per lane)

struct AttnShape {
  int T, N, H, Dh;
  int64_t sB, sT, sN;
  float scale;
  int64_t num_seq;  // B * N * H
};

// Offsets of one sequence seq = (b * N + n) * H + h: input base (q of token 0) and output base (token 0).
__device__ __forceinline__ void sequence_bases(const AttnShape& s, int64_t seq, int64_t* in_base,
                                               int64_t* out_base) {
  const int64_t h = seq % s.H;
  const int64_t bn = seq / s.H;
  const int64_t n = bn % s.N;
  const int64_t b = bn / s.N;
  const int64_t D = static_cast<int64_t>(s.H) * s.Dh;
  *in_base = b * s.sB + n * s.sN + h * s.Dh;
  *out_base = (b * s.T * s.N + n) * D + h * s.Dh;
}

// Floats of shared memory one warp uses: K and V tiles (T x ld), one query row (Dh), the T scores.
__host__ __device__ inline int64_t tiled_floats_per_warp(int64_t T, int64_t Dh, int64_t ld) {
  return 2 * T * ld + Dh + T;
}

template <typename Scalar>
__global__ void temporal_attention_tiled(const Scalar* __restrict__ qkv, Scalar* __restrict__ out, AttnShape s,
                                         int ld) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t seq = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (seq >= s.num_seq) return;  // whole warp leaves; only __syncwarp is used below

  const int T = s.T, Dh = s.Dh;
  float* ks = smem + static_cast<int64_t>(warp) * tiled_floats_per_warp(T, Dh, ld);
  float* vs = ks + static_cast<int64_t>(T) * ld;
  float* qs = vs + static_cast<int64_t>(T) * ld;
  float* ps = qs + Dh;

  int64_t in_base, out_base;
  sequence_bases(s, seq, &in_base, &out_base);
  const int64_t D = static_cast<int64_t>(s.H) * Dh;
  const Scalar* q = qkv + in_base;
  const Scalar* k = q + D;
  const Scalar* v = q + 2 * D;

  for (int t = 0; t < T; ++t) {
    for (int i = lane; i < Dh; i += kWarp) {
      ks[t * ld + i] = to_float(k[t * s.sT + i]);
      vs[t * ld + i] = to_float(v[t * s.sT + i]);
    }
  }
  __syncwarp();

  const int64_t out_row = static_cast<int64_t>(s.N) * D;  // elements between frames t and t + 1
  for (int t = 0; t < T; ++t) {
    for (int i = lane; i < Dh; i += kWarp) qs[i] = to_float(q[t * s.sT + i]);
    __syncwarp();

    float mx = -INFINITY;
    for (int j = lane; j < T; j += kWarp) {
      const float* kr = ks + j * ld;
      float dot = 0.f;
      for (int i = 0; i < Dh; ++i) dot = fmaf(qs[i], kr[i], dot);
      dot *= s.scale;
      ps[j] = dot;
      mx = fmaxf(mx, dot);
    }
    mx = warp_max(mx);
    float sum = 0.f;
    for (int j = lane; j < T; j += kWarp) {
      const float e = expf(ps[j] - mx);
      ps[j] = e;
      sum += e;
    }
    sum = warp_sum(sum);
    const float inv = 1.f / sum;
    __syncwarp();

    Scalar* o = out + out_base + t * out_row;
    for (int i = lane; i < Dh; i += kWarp) {
      float acc = 0.f;
      for (int j = 0; j < T; ++j) acc = fmaf(ps[j], vs[j * ld + i], acc);
      o[i] = from_float<Scalar>(acc * inv);
    }
    __syncwarp();  // qs and ps are rewritten for the next query
  }
}

// One warp per (sequence, query): online softmax over the keys, K/V read from global memory. Head dims beyond
// kStreamDims are handled in further passes over the keys (scores recomputed).
template <typename Scalar>
__global__ void temporal_attention_streaming(const Scalar* __restrict__ qkv, Scalar* __restrict__ out,
                                             AttnShape s) {
  constexpr int kPerLane = kStreamDims / kWarp;
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (row >= s.num_seq * s.T) return;
  const int t = static_cast<int>(row % s.T);
  const int64_t seq = row / s.T;

  int64_t in_base, out_base;
  sequence_bases(s, seq, &in_base, &out_base);
  const int64_t D = static_cast<int64_t>(s.H) * s.Dh;
  const Scalar* q = qkv + in_base + t * s.sT;
  const Scalar* k = qkv + in_base + D;
  const Scalar* v = qkv + in_base + 2 * D;
  Scalar* o = out + out_base + t * static_cast<int64_t>(s.N) * D;

  for (int d0 = 0; d0 < s.Dh; d0 += kStreamDims) {
    float acc[kPerLane];
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) acc[c] = 0.f;
    float m = -INFINITY, l = 0.f;
    for (int j = 0; j < s.T; ++j) {
      float dot = 0.f;
      for (int i = lane; i < s.Dh; i += kWarp) dot = fmaf(to_float(q[i]), to_float(k[j * s.sT + i]), dot);
      dot = warp_sum(dot) * s.scale;
      const float m_new = fmaxf(m, dot);
      const float corr = (m == m_new) ? 1.f : expf(m - m_new);
      const float e = (dot == -INFINITY) ? 0.f : expf(dot - m_new);
      l = l * corr + e;
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int i = d0 + lane + c * kWarp;
        const float vi = (i < s.Dh) ? to_float(v[j * s.sT + i]) : 0.f;
        acc[c] = acc[c] * corr + e * vi;
      }
      m = m_new;
    }
    const float inv = 1.f / l;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int i = d0 + lane + c * kWarp;
      if (i < s.Dh) o[i] = from_float<Scalar>(acc[c] * inv);
    }
  }
}

template <typename Scalar>
int32_t launch(const void* qkv, void* out, const AttnShape& s, cudaStream_t stream) {
  const Scalar* in = static_cast<const Scalar*>(qkv);
  Scalar* o = static_cast<Scalar*>(out);
  const int ld = s.Dh | 1;  // odd row length: lanes reading different keys hit different banks
  const int64_t bytes_per_warp = tiled_floats_per_warp(s.T, s.Dh, ld) * static_cast<int64_t>(sizeof(float));
  if (bytes_per_warp <= kSharedBudget) {
    int warps = static_cast<int>(kSharedBudget / bytes_per_warp);
    warps = warps > kMaxWarpsPerBlock ? kMaxWarpsPerBlock : warps;
    if (warps > s.num_seq) warps = static_cast<int>(s.num_seq);
    const int64_t blocks = detail::ceil_div(s.num_seq, warps);
    if (blocks > detail::kMaxGridX) return kTooLarge;
    temporal_attention_tiled<Scalar><<<static_cast<unsigned>(blocks), warps * kWarp,
                                       static_cast<size_t>(bytes_per_warp * warps), stream>>>(in, o, s, ld);
  } else {
    constexpr int warps = 4;
    const int64_t blocks = detail::ceil_div(s.num_seq * s.T, warps);
    if (blocks > detail::kMaxGridX) return kTooLarge;
    temporal_attention_streaming<Scalar><<<static_cast<unsigned>(blocks), warps * kWarp, 0, stream>>>(in, o, s);
  }
  return detail::launch_status();
}

}  // namespace

int32_t temporal_attention_cuda(const void* qkv, int32_t dtype, int64_t B, int64_t T, int64_t N, int64_t H,
                                int64_t Dh, int64_t sB, int64_t sT, int64_t sN, float scale, void* out,
                                void* stream) {
  if (dtype != kFloat32 && dtype != kFloat16) return kBadDType;
  if (B <= 0 || T <= 0 || N <= 0 || H <= 0 || Dh <= 0) return kOk;
  const CheckedInt num_seq = CheckedInt(B) * N * H;
  // num_seq * T: the streaming kernel's rows
  if (!(num_seq * T).ok() || T > INT32_MAX || N > INT32_MAX || H > INT32_MAX || Dh > INT32_MAX) return kTooLarge;
  AttnShape s{static_cast<int>(T), static_cast<int>(N), static_cast<int>(H), static_cast<int>(Dh), sB, sT, sN,
              scale, num_seq.value()};
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  return dtype == kFloat32 ? launch<float>(qkv, out, s, st) : launch<__half>(qkv, out, s, st);
}

}  // namespace cuda
}  // namespace edgefer
