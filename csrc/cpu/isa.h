// Internal: the per-instruction-set kernel bodies (csrc/cpu/isa_*.cpp) and the table the dispatcher picks from.
// Each isa_*.cpp compiles kernels_impl.inc with its own target flags inside its own namespace, so code built for
// AVX-512 can never be linked into a path that runs on a CPU without it.
#pragma once
#include <cstdint>

#include "edgefer/checked_int.h"

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

// Bounds over every instruction set's micro-tile, for the checks (edgefer/checks.h), made before a call picks its
// set: each set's mr <= kMaxMr, and its nr divides kMaxNr (static_assert in kernels_impl.inc).
constexpr int kMaxMr = 8;
constexpr int kMaxNr = 32;
// Micro-tiles of mr rows in one task of the embedding GEMM.
constexpr int64_t kTileMicroTiles = 8;
// Floats thread_scratch and the weight pack allocate beyond the size asked for, to align to 64 bytes.
constexpr int64_t kAlignSlack = 16;

// A scratch size in floats, or -1 when the allocation (with its slack) cannot count its bytes in int64.
inline int64_t scratch_floats(CheckedInt floats) {
  return ((floats + kAlignSlack) * int64_t(sizeof(float))).ok() ? floats.value() : -1;
}

// Floats of scratch attention_range needs (an upper bound valid for every instruction set), or -1.
inline int64_t attention_scratch_floats(int64_t T, int64_t Dh) {
  const CheckedInt tp = round_up(T, 16);  // T rounded up to the widest vector
  const CheckedInt tr = round_up(T, 4);   // rows rounded up to the row block
  return scratch_floats(CheckedInt(Dh) * tp + tr * tp + tr + 64);
}

// Floats of scratch one embedding_tile task needs with micro-tiles of mr rows (kTileMicroTiles * mr patch rows
// of K = C*P*P), or -1.
inline int64_t embedding_tile_floats(int64_t mr, int64_t K) {
  return scratch_floats(CheckedInt(kTileMicroTiles) * mr * K);
}

// Floats of a weight (D, K) packed into panels of nr columns, or -1.
inline int64_t packed_weight_floats(int64_t nr, int64_t D, int64_t K) {
  return scratch_floats(round_up(D, nr) * K);
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
