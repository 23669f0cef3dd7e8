// Run-time choice of the instruction set (CPUID via __builtin_cpu_supports), and the kernels.h entry points:
// argument plumbing, scratch buffers and the split of the work over the thread pool.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "edgefer/checked_int.h"
#include "edgefer/kernels.h"
#include "isa.h"
#include "thread_pool.h"

namespace edgefer {
namespace cpu {
namespace {

struct Candidate {
  const char* name;
  const IsaKernels* (*table)();
  bool (*supported)();
};

#if defined(EDGEFER_HAVE_AVX512)
const IsaKernels* t_avx512() { return &avx512_kernels(); }
bool s_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
#if defined(EDGEFER_HAVE_AVX2)
const IsaKernels* t_avx2() { return &avx2_kernels(); }
bool s_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
const IsaKernels* t_generic() { return &generic_kernels(); }
bool s_generic() { return true; }

const Candidate kCandidates[] = {
#if defined(EDGEFER_HAVE_AVX512)
    {"avx512", &t_avx512, &s_avx512},
#endif
#if defined(EDGEFER_HAVE_AVX2)
    {"avx2", &t_avx2, &s_avx2},
#endif
    {"generic", &t_generic, &s_generic},
};

const IsaKernels* find(const char* name) {
  for (const auto& c : kCandidates)
    if (std::strcmp(c.name, name) == 0 && c.supported()) return c.table();
  return nullptr;
}

const IsaKernels* pick_default() {
  if (const char* env = std::getenv("EDGEFER_CPU_ISA")) {
    if (const IsaKernels* k = find(env)) return k;
  }
  for (const auto& c : kCandidates)
    if (c.supported()) return c.table();
  return &generic_kernels();
}

std::atomic<const IsaKernels*>& active_slot() {
  static std::atomic<const IsaKernels*> slot{pick_default()};
  return slot;
}

float* align64(float* p) { return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63)); }

// floats + kAlignSlack floats, or std::bad_alloc. Asks for them without throwing and throws itself: under
// AddressSanitizer a throwing new that fails aborts the process instead.
std::unique_ptr<float[]> allocate_floats(int64_t floats) {
  std::unique_ptr<float[]> mem(new (std::nothrow) float[floats + kAlignSlack]);
  if (mem == nullptr) throw std::bad_alloc();
  return mem;
}

// A per-thread, 64-byte aligned, growing buffer (kernels run on the pool's threads and the caller's). floats
// comes from one of the scratch-size functions of isa.h, checked (>= 0) by edgefer/checks.h. Throws
// std::bad_alloc when it cannot grow.
float* thread_scratch(int slot, int64_t floats) {
  struct Buf {
    std::unique_ptr<float[]> mem;
    int64_t cap = 0;
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[slot];
  if (b.cap < floats) {
    b.mem.reset();  // the old buffer goes first: growing needs no room for both
    b.cap = 0;
    b.mem = allocate_floats(floats);
    b.cap = floats;
  }
  return align64(b.mem.get());
}

}  // namespace

const IsaKernels& active_kernels() { return *active_slot().load(std::memory_order_acquire); }

}  // namespace cpu

const char* cpu_isa() { return cpu::active_kernels().name; }

bool set_cpu_isa(const char* name) {
  if (name == nullptr) return false;
  const cpu::IsaKernels* k = cpu::find(name);
  if (k == nullptr) return false;
  cpu::active_slot().store(k, std::memory_order_release);
  return true;
}

const char* cpu_isas_supported() {
  static const std::string list = [] {
    std::string s;
    for (const auto& c : cpu::kCandidates) {
      if (!c.supported()) continue;
      if (!s.empty()) s += ",";
      s += c.name;
    }
    return s;
  }();
  return list.c_str();
}

void temporal_attention_cpu(const float* qkv, int64_t B, int64_t T, int64_t N, int64_t H, int64_t Dh, int64_t sB,
                            int64_t sT, int64_t sN, float scale, float* out, const ParallelFor* parallel) {
  if (B <= 0 || T <= 0 || N <= 0 || H <= 0 || Dh <= 0) return;  // nothing to write
  const int64_t nseq = B * N * H;  // <= the output's size, which the checks bound
  const cpu::IsaKernels& isa = cpu::active_kernels();  // read once: set_cpu_isa may run concurrently
  const int64_t scratch = cpu::attention_scratch_floats(T, Dh);
  // about 8 tasks per thread for balance, each at least ~64k multiply-adds
  const CheckedInt work_per_seq = CheckedInt(2) * T * T * Dh + 1;
  int64_t chunk = nseq / (int64_t(cpu::runner_threads(parallel)) * 8);
  const int64_t min_chunk = work_per_seq.ok() ? 65535 / work_per_seq.value() + 1 : 1;
  if (chunk < min_chunk) chunk = min_chunk;
  if (chunk < 1) chunk = 1;
  const int64_t ntasks = (nseq + chunk - 1) / chunk;
  cpu::parallel_for(parallel, ntasks, [&](int64_t task) {
    const int64_t begin = task * chunk;
    const int64_t end = begin + chunk < nseq ? begin + chunk : nseq;
    isa.attention_range(qkv, B, T, N, H, Dh, sB, sT, sN, scale, out, begin, end, cpu::thread_scratch(0, scratch));
  });
}

// ---- packed embedding weights -----------------------------------------------------------------------------------

struct EmbeddingWeightPack::Impl {
  const cpu::IsaKernels* isa;  // the instruction set whose panel layout data has
  int64_t D, K;
  std::unique_ptr<float[]> mem;
  float* data;  // 64-byte aligned into mem: packed_weight_floats(isa->nr, D, K) floats
};

namespace cpu {
namespace {

// Packs weight (D, K) into packed for isa, its panels split over the runner's threads.
void pack_all(const IsaKernels& isa, const float* weight, int64_t D, int64_t K, float* packed,
              const ParallelFor* parallel) {
  const int64_t npanels = (D + isa.nr - 1) / isa.nr;
  const int64_t ntasks = npanels < 4 * runner_threads(parallel) ? npanels : 4 * runner_threads(parallel);
  const int64_t per = (npanels + ntasks - 1) / ntasks;
  parallel_for(parallel, (npanels + per - 1) / per, [&](int64_t task) {
    const int64_t p0 = task * per, p1 = p0 + per < npanels ? p0 + per : npanels;
    isa.pack_weight(weight, D, K, packed, p0, p1);
  });
}

}  // namespace
}  // namespace cpu

EmbeddingWeightPack::EmbeddingWeightPack(const float* weight, int64_t D, int64_t C, int64_t P,
                                         const ParallelFor* parallel)
    : impl_(nullptr) {
  auto impl = std::make_unique<Impl>();
  const cpu::IsaKernels& isa = cpu::active_kernels();
  impl->isa = &isa;
  impl->D = D;
  impl->K = C * P * P;
  const int64_t n = cpu::packed_weight_floats(isa.nr, D, impl->K);
  if (n < 0) throw std::bad_alloc();
  impl->mem = cpu::allocate_floats(n);
  impl->data = cpu::align64(impl->mem.get());
  if (n > 0) cpu::pack_all(isa, weight, D, impl->K, impl->data, parallel);
  impl_ = impl.release();
}

EmbeddingWeightPack::~EmbeddingWeightPack() { delete impl_; }

// ---- multi-scale embedding --------------------------------------------------------------------------------------

void multiscale_embedding_cpu_strided(const float* feat, const int64_t feat_strides[4], const float* weight,
                                      const float* bias, const float* pos_t, const float* pos_s,
                                      const float* residual, const int64_t res_strides[4], int64_t B, int64_t T,
                                      int64_t C, int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G,
                                      float* out, const EmbeddingWeightPack* packed, const ParallelFor* parallel) {
  if (B <= 0 || T <= 0 || G <= 0 || D <= 0) return;  // nothing to write
  const int64_t M = B * T * G * G;  // <= the output's size, which the checks bound
  const int64_t K = C * P * P;
  // Read once: set_cpu_isa may run concurrently, and the packing and the tiles must share one panel layout.
  const cpu::IsaKernels& isa = cpu::active_kernels();
  const int64_t nr = isa.nr, mr = isa.mr;
  const int64_t npanels = (D + nr - 1) / nr;
  const float* packed_weight;
  if (packed != nullptr && packed->impl()->isa == &isa && packed->impl()->D == D && packed->impl()->K == K) {
    packed_weight = packed->impl()->data;
  } else {  // packed for this call only, in the calling thread's buffer
    float* buf = cpu::thread_scratch(1, cpu::packed_weight_floats(nr, D, K));
    cpu::pack_all(isa, weight, D, K, buf, parallel);
    packed_weight = buf;
  }
  cpu::EmbeddingArgs a;
  a.feat = feat;
  for (int i = 0; i < 4; ++i) a.fs[i] = feat_strides[i];
  a.packed_weight = packed_weight;
  a.bias = bias;
  a.pos_t = pos_t;
  a.pos_s = pos_s;
  a.residual = residual;
  for (int i = 0; i < 4; ++i) a.rs[i] = residual ? res_strides[i] : 0;
  a.B = B; a.T = T; a.C = C; a.Hin = Hin; a.Win = Win; a.D = D; a.P = P; a.G = G;
  a.out = out;
  // Tiles of mb rows x all D columns, so that each tile's patches are gathered (im2col) once. Only when that
  // leaves fewer than two tiles per thread are the columns split too (each column block regathers its rows).
  const int64_t mb = mr * cpu::kTileMicroTiles;
  const int64_t mtiles = (M + mb - 1) / mb;
  const int64_t want = 2 * int64_t(cpu::runner_threads(parallel));
  int64_t ptiles = mtiles >= want ? 1 : (want + mtiles - 1) / mtiles;
  if (ptiles > npanels) ptiles = npanels;
  const int64_t pb = (npanels + ptiles - 1) / ptiles;
  ptiles = (npanels + pb - 1) / pb;
  cpu::parallel_for(parallel, mtiles * ptiles, [&](int64_t task) {
    const int64_t mt = task / ptiles, pt = task % ptiles;
    const int64_t m0 = mt * mb, m1 = m0 + mb < M ? m0 + mb : M;
    const int64_t p0 = pt * pb, p1 = p0 + pb < npanels ? p0 + pb : npanels;
    isa.embedding_tile(a, m0, m1, p0, p1, cpu::thread_scratch(0, cpu::embedding_tile_floats(mr, K)));
  });
}

void multiscale_embedding_cpu(const float* feat, const float* weight, const float* bias, const float* pos_t,
                              const float* pos_s, const float* residual, int64_t B, int64_t T, int64_t C,
                              int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G, float* out,
                              const EmbeddingWeightPack* packed, const ParallelFor* parallel) {
  if (B <= 0 || T <= 0 || G <= 0 || D <= 0) return;  // nothing to write; below, the strides fit the tensors
  const int64_t fs[4] = {C * Hin * Win, Hin * Win, Win, 1};
  const int64_t rs[4] = {T * G * G * D, G * G * D, D, 1};
  multiscale_embedding_cpu_strided(feat, fs, weight, bias, pos_t, pos_s, residual, rs, B, T, C, Hin, Win, D, P, G,
                                   out, packed, parallel);
}

}  // namespace edgefer
