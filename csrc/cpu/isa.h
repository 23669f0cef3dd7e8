// Internal: the per-instruction-set kernel bodies (csrc/cpu/isa_*.cpp) and the table the dispatcher picks from.
// Each isa_*.cpp compiles kernels_impl.inc with its own target flags inside its own namespace, so code built for
// AVX-512 can never be linked into a path that runs on a CPU without it.
#pragma once
#include <cstdint>

namespace edgefer {
namespace cpu {

// Attention over sequences [begin, end) of the B*N*H (b, n, h) sequences, h fastest. scratch holds at least
// attention_scratch_floats(T, Dh) floats, 64-byte aligned.
using AttentionRangeFn = void (*)(const float* qkv, int64_t B, int64_t T, int64_t N, int64_t H, int64_t Dh,
                                  int64_t sB, int64_t sT, int64_t sN, float scale, float* out, int64_t begin,
                                  int64_t end, float* scratch);

// Packs weight (D, K) row-major into panels of nr columns: packed[p][k][j] = weight[p*nr + j][k] (0 past D),
// for panels [p_begin, p_end).
using PackWeightFn = void (*)(const float* weight, int64_t D, int64_t K, float* packed, int64_t p_begin,
                              int64_t p_end);

struct EmbeddingArgs {
  const float* feat;
  int64_t fs[4];  // feat strides (B*T, C, Hin, Win)
  const float* packed_weight;
  const float* bias;
  const float* pos_t;
  const float* pos_s;
  const float* residual;  // nullptr: none
  int64_t rs[4];          // residual strides (B, T, N, D)
  int64_t B, T, C, Hin, Win, D, P, G;
  float* out;
};

// One tile of the embedding GEMM: output rows [m_begin, m_end) (m = (b*T + t)*G*G + n), weight panels
// [p_begin, p_end). Writes bias + pos_t + pos_s + residual + patch . weight into those outputs. scratch holds at
// least (m_end - m_begin rounded up to mr) * C*P*P floats, 64-byte aligned.
using EmbeddingTileFn = void (*)(const EmbeddingArgs& a, int64_t m_begin, int64_t m_end, int64_t p_begin,
                                 int64_t p_end, float* scratch);

struct IsaKernels {
  const char* name;
  int vector_width;  // floats per SIMD register
  int mr;            // embedding micro-tile rows
  int nr;            // embedding micro-tile columns (weight panel width)
  AttentionRangeFn attention_range;
  PackWeightFn pack_weight;
  EmbeddingTileFn embedding_tile;
};

// Floats of scratch attention_range needs (an upper bound valid for every instruction set).
inline int64_t attention_scratch_floats(int64_t T, int64_t Dh) {
  const int64_t tp = (T + 15) / 16 * 16;    // T rounded up to the widest vector
  const int64_t tr = (T + 3) / 4 * 4;       // rows rounded up to the row block
  return Dh * tp + tr * tp + tr + 64;
}

const IsaKernels& generic_kernels();
#if defined(EDGEFER_HAVE_AVX2)
const IsaKernels& avx2_kernels();
#endif
#if defined(EDGEFER_HAVE_AVX512)
const IsaKernels& avx512_kernels();
#endif

// The table in use (see edgefer::cpu_isa()).
const IsaKernels& active_kernels();

}  // namespace cpu
}  // namespace edgefer
