// ONNX Runtime custom-op library: edgefer's two kernels as nodes of the "edgefer" domain (opset 1).
//
//   TemporalAttention(qkv) -> out          qkv (B, T, N, 3*D) float32; attrs num_heads:int, scale:float
//                                          (0 or absent = 1/sqrt(D / num_heads)); out (B, T, N, D).
//   MultiScaleEmbedding(feat, weight, bias, pos_t, pos_s[, residual]) -> out
//                                          feat (B*T, C, H, W), weight (D, C, P, P), bias (D), pos_t (T, D),
//                                          pos_s (G*G, D), residual (B, T, G*G, D) optional; attr grid:int
//                                          (default 4); out (B, T, G*G, D). All float32.
//
// Semantics: edgefer/ops/reference.py. CPU kernels: edgefer::*_cpu (kernels.h), run on the session's own
// intra-op thread pool (KernelContext_ParallelFor), so that the custom ops and ONNX Runtime's built-in ops share
// one set of threads, sized by SessionOptions.intra_op_num_threads; MultiScaleEmbedding packs a constant weight
// (an initializer) once, when the session creates the kernel. CUDA kernels for the CUDA execution provider when
// built with EDGEFER_WITH_CUDA (kernels_cuda.h). Attributes are checked when the session creates the kernel, and
// every input before a kernel runs, by the rules all bindings share (edgefer/checks.h); a bad attribute, shape or
// dtype comes back as an ORT_INVALID_ARGUMENT status naming it, an allocation failure as an error status, never
// a crash.
//
// Entry point: RegisterCustomOps(OrtSessionOptions*, const OrtApiBase*), what
// SessionOptions.register_custom_ops_library() calls. Built against the C API version of the headers the build
// fetched (ORT_API_VERSION); any ONNX Runtime at least that new loads it.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#include <thread>

#include "edgefer/kernels.h"
#ifdef EDGEFER_WITH_CUDA
#include "edgefer/kernels_cuda.h"
#endif

namespace {

constexpr const char* kDomain = "edgefer";

// An argument problem found by validation: becomes ORT_INVALID_ARGUMENT.
struct BadInput {
  std::string message;
};

[[noreturn]] void bad(const std::string& op, const std::string& what) { throw BadInput{"edgefer::" + op + ": " + what}; }

// A failed shared check becomes BadInput; prefix says what was checked ("attribute " for an attribute).
void require(const std::string& op, const edgefer::CheckStatus& status, const char* prefix = "") {
  if (!status.ok) bad(op, prefix + std::string(status.message));
}

// Runs body and turns whatever it throws into an OrtStatus (nullptr = success).
template <typename F>
OrtStatusPtr guarded(const std::string& op, F&& body) {
  const OrtApi& api = Ort::GetApi();
  try {
    body();
    return nullptr;
  } catch (const BadInput& e) {
    return api.CreateStatus(ORT_INVALID_ARGUMENT, e.message.c_str());
  } catch (const std::bad_alloc&) {
    return api.CreateStatus(ORT_RUNTIME_EXCEPTION, ("edgefer::" + op + ": out of memory (std::bad_alloc)").c_str());
  } catch (const Ort::Exception& e) {
    return api.CreateStatus(e.GetOrtErrorCode(), ("edgefer::" + op + ": " + e.what()).c_str());
  } catch (const std::exception& e) {
    return api.CreateStatus(ORT_RUNTIME_EXCEPTION, ("edgefer::" + op + ": " + e.what()).c_str());
  } catch (...) {
    return api.CreateStatus(ORT_RUNTIME_EXCEPTION, ("edgefer::" + op + ": unknown C++ exception").c_str());
  }
}

struct InputView {
  const void* data = nullptr;
  std::vector<int64_t> shape;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  bool present = false;
};

InputView input(Ort::KernelContext& ctx, size_t index, const std::string& op, const char* name) {
  InputView v;
  if (index >= ctx.GetInputCount()) return v;
  Ort::ConstValue value = ctx.GetInput(index);
  if (!value) return v;  // an omitted optional input
  if (!value.IsTensor()) bad(op, std::string(name) + " must be a tensor");
  auto info = value.GetTensorTypeAndShapeInfo();
  v.shape = info.GetShape();
  v.type = info.GetElementType();
  v.data = value.GetTensorRawData();
  v.present = true;
  if (v.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) bad(op, std::string(name) + " must be float32");
  return v;
}

edgefer::TensorArg tensor_arg(const InputView& v) {  // ONNX Runtime's tensors are C-contiguous
  return {v.shape.data(), nullptr, static_cast<int64_t>(v.shape.size())};
}

// ---------------------------------------------------------------------------------------------------------------
// The session's intra-op thread pool as the CPU kernels' edgefer::ParallelFor.

// CPUs this process may run on: how finely to split work (ONNX Runtime does not tell a kernel its pool size).
int cpus_available() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) >= 1) return CPU_COUNT(&set);
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n >= 1 ? static_cast<int>(n) : 1;
}

struct PoolTask {
  void (*task)(void*, int64_t);
  void* arg;
};

void run_pool_task(void* job, size_t i) {
  const PoolTask* t = static_cast<const PoolTask*>(job);
  t->task(t->arg, static_cast<int64_t>(i));
}

void run_on_session_pool(void* context, int64_t n, void (*task)(void*, int64_t), void* arg) {
  PoolTask job{task, arg};
  OrtStatus* st = Ort::GetApi().KernelContext_ParallelFor(static_cast<const OrtKernelContext*>(context),
                                                          &run_pool_task, static_cast<size_t>(n), 0, &job);
  if (st != nullptr) {
    const std::string msg = Ort::GetApi().GetErrorMessage(st);
    Ort::GetApi().ReleaseStatus(st);
    throw std::runtime_error("ONNX Runtime's ParallelFor failed: " + msg);
  }
}

// For work outside a kernel call (packing a weight when the session creates the kernel): the calling thread.
void run_serially(void*, int64_t n, void (*task)(void*, int64_t), void* arg) {
  for (int64_t i = 0; i < n; ++i) task(arg, i);
}

edgefer::ParallelFor session_pool(OrtKernelContext* context) {
  static const int threads = cpus_available();
  return edgefer::ParallelFor{&run_on_session_pool, context, threads};
}

// ---------------------------------------------------------------------------------------------------------------
// TemporalAttention

struct AttentionKernel {
  int64_t num_heads = 0;
  float scale = 0.f;  // 0: 1/sqrt(d_h)
  bool on_cuda = false;

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    const std::string op = "TemporalAttention";
    return guarded(op, [&] {
      Ort::KernelContext ctx(context);
      const InputView qkv = input(ctx, 0, op, "qkv (input 0)");
      if (!qkv.present) bad(op, "qkv (input 0) is missing");
      edgefer::AttentionSizes a;
      require(op, edgefer::check_temporal_attention(tensor_arg(qkv), num_heads, sizeof(float), &a));
      Ort::UnownedValue out_value = ctx.GetOutput(0, std::vector<int64_t>{a.B, a.T, a.N, a.D});
      float* out = out_value.GetTensorMutableData<float>();
      if (a.B == 0 || a.T == 0 || a.N == 0 || a.D == 0) return;
      const float s = scale != 0.f ? scale : 1.f / std::sqrt(static_cast<float>(a.Dh));
      const float* in = static_cast<const float*>(qkv.data);
      const int64_t sN = 3 * a.D, sT = a.N * sN, sB = a.T * sT;
      if (!on_cuda) {
        const edgefer::ParallelFor pool = session_pool(context);
        edgefer::temporal_attention_cpu(in, a.B, a.T, a.N, a.H, a.Dh, sB, sT, sN, s, out, &pool);
        return;
      }
#ifdef EDGEFER_WITH_CUDA
      const int32_t rc = edgefer::cuda::temporal_attention_cuda(in, edgefer::cuda::kFloat32, a.B, a.T, a.N, a.H,
                                                                 a.Dh, sB, sT, sN, s, out,
                                                                 ctx.GetGPUComputeStream());
      if (rc != edgefer::cuda::kOk)
        throw std::runtime_error(std::string("CUDA kernel failed: ") + edgefer::cuda::error_string(rc));
#endif
    });
  }
};

struct AttentionOp : Ort::CustomOpBase<AttentionOp, AttentionKernel, true> {
  explicit AttentionOp(const char* provider) : provider_(provider) {}

  OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** op_kernel) const {
    return guarded("TemporalAttention", [&] {
      auto kernel = std::make_unique<AttentionKernel>();
      int64_t heads = 0;
      OrtStatus* st = api.KernelInfoGetAttribute_int64(info, "num_heads", &heads);
      if (st != nullptr) {
        api.ReleaseStatus(st);
        bad("TemporalAttention", "attribute num_heads (int) is required");
      }
      require("TemporalAttention", edgefer::check_num_heads(heads), "attribute ");
      float scale = 0.f;
      st = api.KernelInfoGetAttribute_float(info, "scale", &scale);
      if (st != nullptr) {  // absent: default 1/sqrt(d_h)
        api.ReleaseStatus(st);
        scale = 0.f;
      }
      if (!std::isfinite(scale)) bad("TemporalAttention", "attribute scale must be finite");
      kernel->num_heads = heads;
      kernel->scale = scale;
      kernel->on_cuda = std::strcmp(provider_, "CUDAExecutionProvider") == 0;
      *op_kernel = kernel.release();
    });
  }

  const char* GetName() const { return "TemporalAttention"; }
  const char* GetExecutionProviderType() const { return provider_; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }

 private:
  const char* provider_;
};

// ---------------------------------------------------------------------------------------------------------------
// MultiScaleEmbedding

struct EmbeddingKernel {
  int64_t grid = 4;
  bool on_cuda = false;
  // The weight input packed at kernel creation when it is a constant initializer (CPU only), and the address
  // it was packed from: a call whose weight is elsewhere packs its own.
  std::unique_ptr<edgefer::EmbeddingWeightPack> packed;
  const void* packed_from = nullptr;

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    const std::string op = "MultiScaleEmbedding";
    return guarded(op, [&] {
      Ort::KernelContext ctx(context);
      const char* names[] = {"feat (input 0)", "weight (input 1)", "bias (input 2)", "pos_t (input 3)",
                             "pos_s (input 4)", "residual (input 5)"};
      InputView in[6];
      for (size_t i = 0; i < 6; ++i) {
        in[i] = input(ctx, i, op, names[i]);
        if (i < 5 && !in[i].present) bad(op, std::string(names[i]) + " is missing");
      }
      const edgefer::TensorArg residual_arg = tensor_arg(in[5]);
      edgefer::EmbeddingSizes a;
      require(op, edgefer::check_multiscale_embedding(tensor_arg(in[0]), tensor_arg(in[1]), tensor_arg(in[2]),
                                                      tensor_arg(in[3]), tensor_arg(in[4]),
                                                      in[5].present ? &residual_arg : nullptr, grid, sizeof(float),
                                                      &a));
      Ort::UnownedValue out_value = ctx.GetOutput(0, std::vector<int64_t>{a.B, a.T, a.G * a.G, a.D});
      float* out = out_value.GetTensorMutableData<float>();
      if (a.B == 0 || a.D == 0) return;  // no output element (T and G are >= 1)
      auto f = [&](int i) { return static_cast<const float*>(in[i].data); };
      const float* residual = in[5].present ? f(5) : nullptr;
      if (!on_cuda) {
        const edgefer::ParallelFor pool = session_pool(context);
        const edgefer::EmbeddingWeightPack* pack = in[1].data == packed_from ? packed.get() : nullptr;
        edgefer::multiscale_embedding_cpu(f(0), f(1), f(2), f(3), f(4), residual, a.B, a.T, a.C, a.H, a.W, a.D,
                                          a.P, a.G, out, pack, &pool);
        return;
      }
#ifdef EDGEFER_WITH_CUDA
      const int64_t fs[4] = {a.C * a.H * a.W, a.H * a.W, a.W, 1};
      const int64_t GG = a.G * a.G;
      const int64_t rs[4] = {a.T * GG * a.D, GG * a.D, a.D, 1};
      const int32_t rc = edgefer::cuda::multiscale_embedding_cuda(
          f(0), fs, f(1), f(2), f(3), f(4), residual, residual ? rs : nullptr, edgefer::cuda::kFloat32, a.B, a.T,
          a.C, a.H, a.W, a.D, a.P, a.G, out, ctx.GetGPUComputeStream());
      if (rc != edgefer::cuda::kOk)
        throw std::runtime_error(std::string("CUDA kernel failed: ") + edgefer::cuda::error_string(rc));
#endif
    });
  }
};

// Packs the weight (input 1) into kernel.packed when the graph holds it as a constant float32 (D, C, P, P)
// initializer; otherwise (a graph input, or a shape Compute will reject with a message) leaves it unpacked.
void pack_constant_weight(const OrtApi& api, const OrtKernelInfo* info, EmbeddingKernel& kernel) {
  int is_constant = 0;
  const OrtValue* value = nullptr;
  OrtStatus* st = api.KernelInfoGetConstantInput_tensor(info, 1, &is_constant, &value);
  if (st != nullptr) {
    api.ReleaseStatus(st);
    return;
  }
  if (!is_constant || value == nullptr) return;
  Ort::ConstValue weight(value);
  auto shape_info = weight.GetTensorTypeAndShapeInfo();
  const std::vector<int64_t> shape = shape_info.GetShape();
  if (shape_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || shape.size() != 4 ||
      shape[2] != shape[3] || shape_info.GetElementCount() == 0)
    return;
  const void* data = weight.GetTensorRawData();
  const edgefer::ParallelFor serial{&run_serially, nullptr, 1};  // no edgefer pool in this library at all
  kernel.packed = std::make_unique<edgefer::EmbeddingWeightPack>(static_cast<const float*>(data), shape[0],
                                                                 shape[1], shape[2], &serial);
  kernel.packed_from = data;
}

struct EmbeddingOp : Ort::CustomOpBase<EmbeddingOp, EmbeddingKernel, true> {
  explicit EmbeddingOp(const char* provider) : provider_(provider) {}

  OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** op_kernel) const {
    return guarded("MultiScaleEmbedding", [&] {
      auto kernel = std::make_unique<EmbeddingKernel>();
      int64_t grid = 4;
      OrtStatus* st = api.KernelInfoGetAttribute_int64(info, "grid", &grid);
      if (st != nullptr) {  // absent: the design's default G = 4
        api.ReleaseStatus(st);
        grid = 4;
      }
      require("MultiScaleEmbedding", edgefer::check_grid(grid), "attribute ");
      kernel->grid = grid;
      kernel->on_cuda = std::strcmp(provider_, "CUDAExecutionProvider") == 0;
      if (!kernel->on_cuda) pack_constant_weight(api, info, *kernel);
      *op_kernel = kernel.release();
    });
  }

  const char* GetName() const { return "MultiScaleEmbedding"; }
  const char* GetExecutionProviderType() const { return provider_; }
  size_t GetInputTypeCount() const { return 6; }
  ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t index) const {
    return index == 5 ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
                      : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }

 private:
  const char* provider_;
};

// The ops and their domain live as long as the process: sessions keep pointers to them.
struct Registry {
  AttentionOp attention_cpu{"CPUExecutionProvider"};
  EmbeddingOp embedding_cpu{"CPUExecutionProvider"};
#ifdef EDGEFER_WITH_CUDA
  AttentionOp attention_cuda{"CUDAExecutionProvider"};
  EmbeddingOp embedding_cuda{"CUDAExecutionProvider"};
#endif
  OrtCustomOpDomain* domain = nullptr;
};

}  // namespace

extern "C" {

// Registers the "edgefer" domain (TemporalAttention, MultiScaleEmbedding) on the session options.
__attribute__((visibility("default"))) OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                                                 const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    // This ONNX Runtime is older than the headers we were built with: report it through the oldest C API.
    const OrtApi* oldest = api_base->GetApi(1);
    std::string msg = std::string("libedgefer_ortops needs ONNX Runtime C API version ") +
                      std::to_string(ORT_API_VERSION) + " or newer; this ONNX Runtime is " +
                      api_base->GetVersionString();
    return oldest ? oldest->CreateStatus(ORT_FAIL, msg.c_str()) : nullptr;
  }
  Ort::InitApi(api);
  static Registry* registry = nullptr;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (registry == nullptr) {
    auto* r = new Registry();  // never freed: sessions may outlive any scope we could tie it to
    OrtStatus* st = api->CreateCustomOpDomain(kDomain, &r->domain);
    if (st != nullptr) return st;
    OrtCustomOp* ops[] = {&r->attention_cpu, &r->embedding_cpu
#ifdef EDGEFER_WITH_CUDA
                          ,
                          &r->attention_cuda, &r->embedding_cuda
#endif
    };
    for (OrtCustomOp* op : ops) {
      st = api->CustomOpDomain_Add(r->domain, op);
      if (st != nullptr) return st;
    }
    registry = r;
  }
  return api->AddCustomOpDomain(options, registry->domain);
}

// Whether the library was built with the CUDA execution provider's kernels (1) or CPU only (0).
__attribute__((visibility("default"))) int EdgeferOrtOpsHasCuda() {
#ifdef EDGEFER_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

}  // extern "C"
