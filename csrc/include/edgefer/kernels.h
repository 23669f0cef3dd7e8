// edgefer's two kernels: the C++ API shared by the pybind11 module, the ONNX Runtime custom ops and the
// TensorRT plugins. Semantics are defined by edgefer/ops/reference.py; these functions must match it.
//
// Layout: tokens are (B, T, N, D), D = H * Dh. Strides are in elements. Callers check the arguments with
// check_temporal_attention / check_multiscale_embedding (edgefer/checks.h, included here) and check dtypes
// themselves; these functions assume arguments that passed and never allocate Python objects. They throw
// std::bad_alloc when their scratch cannot be allocated, and let an exception of a ParallelFor's run through,
// each time after every task they started has finished; nothing else.
#pragma once
#include <cstdint>

#include "edgefer/checks.h"

namespace edgefer {

// Where a CPU kernel runs its parallel tasks. nullptr (the default everywhere): edgefer's own thread pool (see
// set_num_threads). A host framework with its own pool passes one of these instead, so that its threads and
// edgefer's never compete for the same cores (the ONNX Runtime custom ops run on the session's intra-op pool).
struct ParallelFor {
  // Runs task(task_arg, i) once for every i in [0, n), on any threads in any order, and returns when all have
  // run. task never throws (the kernels catch inside it); run may throw, from the calling thread.
  void (*run)(void* self, int64_t n, void (*task)(void* task_arg, int64_t i), void* task_arg);
  void* self;
  // About how many threads run executes tasks on (>= 1); used only to size the split of the work.
  int threads;
};

// Fused temporal attention (CPU, fp32).
// qkv: logical (B, T, N, 3*D) with strides (sB, sT, sN, 1); channel c = part*D + h*Dh + i, part 0/1/2 = q/k/v.
// out: (B, T, N, D) contiguous. out[b,t,n,h,:] = sum_s softmax_s(scale * q[b,t,n,h,:].k[b,s,n,h,:]) v[b,s,n,h,:].
void temporal_attention_cpu(const float* qkv, int64_t B, int64_t T, int64_t N, int64_t H, int64_t Dh,
                            int64_t sB, int64_t sT, int64_t sN, float scale, float* out,
                            const ParallelFor* parallel = nullptr);

// The projection weight of one multi-scale embedding, packed once into the GEMM panel layout of the instruction
// set active when it was made (cpu_isa()), so that calls need not repack it: for a graph whose weights are
// constants (an ONNX Runtime session) the packing is paid once, at load. Holds its own copy; the source may go.
class EmbeddingWeightPack {
 public:
  // weight: (D, C, P, P) contiguous float32. Throws std::bad_alloc when the packing cannot be allocated.
  EmbeddingWeightPack(const float* weight, int64_t D, int64_t C, int64_t P, const ParallelFor* parallel = nullptr);
  ~EmbeddingWeightPack();
  EmbeddingWeightPack(const EmbeddingWeightPack&) = delete;
  EmbeddingWeightPack& operator=(const EmbeddingWeightPack&) = delete;

  struct Impl;  // defined in csrc/cpu/dispatch.cpp
  const Impl* impl() const { return impl_; }

 private:
  Impl* impl_;
};

// Multi-scale embedding (CPU, fp32): pad + patchify + project + bias + pos_t + pos_s + residual.
// feat: (B*T, C, Hin, Win) contiguous NCHW. weight: (D, C, P, P) contiguous. bias: (D). pos_t: (T, D).
// pos_s: (G*G, D). residual: (B, T, G*G, D) contiguous or nullptr. out: (B, T, G*G, D) contiguous.
// Pixels at y >= Hin or x >= Win (the right/bottom zero padding up to G*P) contribute zero.
// packed: weight already packed, or nullptr. A call reads the instruction set once and uses packed only when it
// was made under that set for these D, C, P; otherwise it packs weight for itself.
void multiscale_embedding_cpu(const float* feat, const float* weight, const float* bias, const float* pos_t,
                              const float* pos_s, const float* residual, int64_t B, int64_t T, int64_t C,
                              int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G, float* out,
                              const EmbeddingWeightPack* packed = nullptr, const ParallelFor* parallel = nullptr);

// Multi-scale embedding with strided feat and residual (everything else as multiscale_embedding_cpu, which is
// this function with NCHW-contiguous strides). feat_strides: the 4 strides of feat (B*T, C, Hin, Win) in
// elements, any sign; res_strides: the 4 strides of residual (B, T, G*G, D), ignored when residual is nullptr.
// weight, bias, pos_t and pos_s stay contiguous; out stays (B, T, G*G, D) contiguous.
void multiscale_embedding_cpu_strided(const float* feat, const int64_t feat_strides[4], const float* weight,
                                      const float* bias, const float* pos_t, const float* pos_s,
                                      const float* residual, const int64_t res_strides[4], int64_t B, int64_t T,
                                      int64_t C, int64_t Hin, int64_t Win, int64_t D, int64_t P, int64_t G,
                                      float* out, const EmbeddingWeightPack* packed = nullptr,
                                      const ParallelFor* parallel = nullptr);

// --- CPU runtime controls (csrc/cpu/) -------------------------------------------------------------------------
// A call given no ParallelFor runs on edgefer's own thread pool (edgefer._C does: torch's OpenMP pool is not
// reachable from here; the ONNX Runtime custom ops pass the session's pool instead). Default size: the
// EDGEFER_NUM_THREADS environment variable, else the number of CPUs this process may run on. A call made while
// another call is using the pool (from another thread, or nested) runs single-threaded in its caller instead of
// waiting. The pool's threads start on its first use. A kernel whose task throws (std::bad_alloc) leaves the pool
// usable: the remaining tasks are skipped, and the first exception reaches the caller once all have stopped.

// Sets the number of threads the CPU kernels use (the calling thread counts as one); n < 1 means the default.
// Returns the number now in use. Throws (std::system_error, std::bad_alloc) when the threads cannot be started;
// the pool then keeps the count it had (or, failing that too, runs in the caller alone), as get_num_threads()
// tells.
int set_num_threads(int n);
// The number of threads the CPU kernels use.
int get_num_threads();

// The instruction set the CPU kernels run with: "avx512", "avx2" or "generic" (portable C++, vectorised by the
// compiler for the build's baseline, e.g. SSE2 or NEON). Picked at run time from what the CPU supports
// (AVX-512F for "avx512"; AVX2 + FMA for "avx2"), or from EDGEFER_CPU_ISA in the environment if set.
const char* cpu_isa();
// Forces one instruction set (for tests and benchmarks); returns false, changing nothing, when the name is
// unknown, not compiled in, or not supported by this CPU.
bool set_cpu_isa(const char* name);
// Comma-separated list of the instruction sets compiled in AND supported by this CPU, best first.
const char* cpu_isas_supported();

}  // namespace edgefer
