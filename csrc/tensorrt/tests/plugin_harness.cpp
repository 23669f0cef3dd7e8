// A test program for edgefer's TensorRT plugin objects (csrc/tensorrt/plugins.h), run by
// tests/test_tensorrt_plugins.py. It drives the plugins through their IPluginV3 interfaces the way TensorRT's
// documentation says TensorRT does (createPlugin with fields, getFieldsToSerialize and createPlugin(kRUNTIME),
// supportsFormatCombination, getOutputDataTypes, configurePlugin, onShapeChange, enqueue), without TensorRT itself.
//
//   edgefer_tensorrt_plugin_harness          host checks only (no GPU needed)
//   edgefer_tensorrt_plugin_harness --gpu    also enqueue on CUDA device 0, fp32 and fp16, against the CPU kernels
//
// Prints one line per failed expectation and "ok: N checks" at the end; exit status 0 only when all held.
// getPluginRegistry (a libnvinfer function) is defined here returning no registry, so that the plugins' error
// reports fall back to stderr; this program is not TensorRT and does not stand in for it anywhere else.
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "edgefer/kernels.h"
#include "plugin_common.h"
#include "plugins.h"

extern "C" nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return nullptr; }

namespace {

using namespace edgefer::tensorrt;
using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorRTPhase;

int g_checks = 0, g_failures = 0;

void expect(bool ok, const char* what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("FAILED: %s\n", what);
  }
}

struct PluginDeleter {
  void operator()(nvinfer1::IPluginV3* p) const { delete p; }
};
using Plugin = std::unique_ptr<nvinfer1::IPluginV3, PluginDeleter>;

nvinfer1::IPluginV3OneCore* core(nvinfer1::IPluginV3* p) {
  return static_cast<nvinfer1::IPluginV3OneCore*>(p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE));
}
nvinfer1::IPluginV3OneBuild* build(nvinfer1::IPluginV3* p) {
  return static_cast<nvinfer1::IPluginV3OneBuild*>(p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
}
nvinfer1::IPluginV3OneRuntime* runtime(nvinfer1::IPluginV3* p) {
  return static_cast<nvinfer1::IPluginV3OneRuntime*>(
      p->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME));
}

// fields must outlive the collection, which points into it.
PluginFieldCollection collection(const std::vector<PluginField>& fields) {
  PluginFieldCollection fc;
  fc.nbFields = static_cast<int32_t>(fields.size());
  fc.fields = fields.data();
  return fc;
}

nvinfer1::Dims dims(std::initializer_list<int64_t> extents) {
  nvinfer1::Dims d{};
  d.nbDims = static_cast<int32_t>(extents.size());
  int i = 0;
  for (int64_t e : extents) d.d[i++] = e;
  return d;
}

PluginTensorDesc desc(nvinfer1::Dims d, DataType type = DataType::kFLOAT) {
  PluginTensorDesc t{};
  t.dims = d;
  t.type = type;
  t.format = nvinfer1::TensorFormat::kLINEAR;
  t.scale = -1.f;
  return t;
}

// ---- creators and fields ------------------------------------------------------------------------------------------

void creators_and_fields() {
  TemporalAttentionCreator attention;
  MultiScaleEmbeddingCreator embedding;
  expect(std::strcmp(attention.getPluginName(), "TemporalAttention") == 0, "attention creator name");
  expect(std::strcmp(embedding.getPluginName(), "MultiScaleEmbedding") == 0, "embedding creator name");
  expect(std::strcmp(attention.getPluginVersion(), "1") == 0 && std::strcmp(attention.getPluginNamespace(), "") == 0,
         "attention version 1, namespace empty");
  expect(attention.getFieldNames()->nbFields == 2 && embedding.getFieldNames()->nbFields == 1, "field name lists");

  const int32_t heads = 4, zero = 0;
  const float scale = 0.25f, inf = INFINITY;
  const int64_t heads64 = 4;
  const double scale64 = 0.5;
  auto make = [&](nvinfer1::IPluginCreatorV3One& c, std::vector<PluginField> f) {
    PluginFieldCollection fc = collection(f);
    return Plugin(c.createPlugin("p", &fc, TensorRTPhase::kBUILD));
  };
  // what the ONNX parser passes: ONNX INT -> kINT32, FLOAT -> kFLOAT32
  Plugin ok = make(attention, {{"num_heads", &heads, PluginFieldType::kINT32, 1},
                               {"scale", &scale, PluginFieldType::kFLOAT32, 1}});
  expect(ok != nullptr, "attention from kINT32 num_heads and kFLOAT32 scale");
  expect(make(attention, {{"num_heads", &heads64, PluginFieldType::kINT64, 1},
                          {"scale", &scale64, PluginFieldType::kFLOAT64, 1}}) != nullptr,
         "attention from kINT64 / kFLOAT64 fields");
  expect(make(attention, {{"num_heads", &heads, PluginFieldType::kINT32, 1}}) != nullptr, "scale is optional");
  expect(make(attention, {{"scale", &scale, PluginFieldType::kFLOAT32, 1}}) == nullptr, "num_heads is required");
  expect(make(attention, {{"num_heads", &zero, PluginFieldType::kINT32, 1}}) == nullptr, "num_heads 0 refused");
  expect(make(attention, {{"num_heads", &scale, PluginFieldType::kFLOAT32, 1}}) == nullptr,
         "num_heads as a float refused");
  expect(make(attention, {{"num_heads", &heads, PluginFieldType::kINT32, 2}}) == nullptr,
         "num_heads of length 2 refused");
  expect(make(attention, {{"num_heads", nullptr, PluginFieldType::kINT32, 1}}) == nullptr,
         "num_heads without data refused");
  expect(make(attention, {{"num_heads", &heads, PluginFieldType::kINT32, 1},
                          {"scale", &inf, PluginFieldType::kFLOAT32, 1}}) == nullptr,
         "infinite scale refused");
  expect(make(attention, {{"num_heads", &heads, PluginFieldType::kINT32, 1},
                          {"heads", &heads, PluginFieldType::kINT32, 1}}) == nullptr,
         "unknown attention field refused");
  expect(make(embedding, {}) != nullptr, "grid defaults to 4");
  expect(make(embedding, {{"grid", &zero, PluginFieldType::kINT32, 1}}) == nullptr, "grid 0 refused");
  expect(make(embedding, {{"size", &heads, PluginFieldType::kINT32, 1}}) == nullptr, "unknown embedding field refused");
  PluginFieldCollection none{};
  expect(Plugin(attention.createPlugin("p", nullptr, TensorRTPhase::kBUILD)) == nullptr &&
             Plugin(embedding.createPlugin("p", &none, TensorRTPhase::kRUNTIME)) != nullptr,
         "null and empty field collections");

  // serialization round trip: the fields a plugin writes recreate the same plugin at runtime
  if (ok) {
    PluginFieldCollection const* written = runtime(ok.get())->getFieldsToSerialize();
    Plugin again(attention.createPlugin("p", written, TensorRTPhase::kRUNTIME));
    expect(again != nullptr, "attention recreated from its serialized fields");
    if (again)
      expect(std::strcmp(build(again.get())->getMetadataString(), build(ok.get())->getMetadataString()) == 0 &&
                 std::strcmp(build(ok.get())->getMetadataString(), "num_heads=4 scale=0.25") == 0,
             "attention attributes survive serialization");
  }
  const int32_t grid = 3;
  Plugin emb = make(embedding, {{"grid", &grid, PluginFieldType::kINT32, 1}});
  if (emb) {
    Plugin again(embedding.createPlugin("p", runtime(emb.get())->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
    expect(again && std::strcmp(build(again.get())->getMetadataString(), "grid=3") == 0,
           "embedding attributes survive serialization");
    Plugin copy(emb->clone());
    expect(copy && std::strcmp(build(copy.get())->getMetadataString(), "grid=3") == 0, "clone keeps attributes");
    expect(std::strcmp(core(emb.get())->getPluginName(), "MultiScaleEmbedding") == 0 &&
               std::strcmp(core(emb.get())->getPluginVersion(), "1") == 0,
           "plugin core identity");
  }
}

// ---- format, type and shape rules ----------------------------------------------------------------------------------

void rules() {
  TemporalAttentionCreator creator;
  const int32_t heads = 2;
  PluginField f{"num_heads", &heads, PluginFieldType::kINT32, 1};
  PluginFieldCollection fc{1, &f};
  Plugin p(creator.createPlugin("p", &fc, TensorRTPhase::kBUILD));
  if (!p) {
    expect(false, "attention plugin for the rules");
    return;
  }
  nvinfer1::IPluginV3OneBuild* b = build(p.get());
  nvinfer1::IPluginV3OneRuntime* r = runtime(p.get());
  expect(b->getNbOutputs() == 1, "one output");

  nvinfer1::DynamicPluginTensorDesc io[2]{};
  io[0].desc = desc(dims({1, 16, 4, 12}));
  io[1].desc = desc(dims({1, 16, 4, 4}));
  expect(b->supportsFormatCombination(0, io, 1, 1), "fp32 linear input supported");
  io[1].desc.type = DataType::kHALF;
  expect(!b->supportsFormatCombination(1, io, 1, 1), "output type must follow input 0");
  io[0].desc.type = io[1].desc.type = DataType::kHALF;
  expect(b->supportsFormatCombination(0, io, 1, 1) && b->supportsFormatCombination(1, io, 1, 1), "fp16 supported");
  io[0].desc.type = DataType::kINT8;
  expect(!b->supportsFormatCombination(0, io, 1, 1), "int8 not supported");
  io[0].desc.type = DataType::kFLOAT;
  io[0].desc.format = nvinfer1::TensorFormat::kCHW32;
  expect(!b->supportsFormatCombination(0, io, 1, 1), "non-linear format not supported");
  expect(!b->supportsFormatCombination(2, io, 1, 1), "position out of range");

  DataType out_type = DataType::kINT32;
  const DataType half = DataType::kHALF, i32 = DataType::kINT32;
  expect(b->getOutputDataTypes(&out_type, 1, &half, 1) == 0 && out_type == DataType::kHALF, "output type = input's");
  expect(b->getOutputDataTypes(&out_type, 1, &i32, 1) != 0, "int32 input type refused");

  // configure / shape change / enqueue refuse what the shared checks refuse, before any kernel runs
  nvinfer1::DynamicPluginTensorDesc in{}, out{};
  in.desc = desc(dims({-1, 16, 4, 12}));
  in.min = dims({1, 16, 4, 12});
  in.max = in.opt = dims({8, 16, 4, 12});
  out.desc = desc(dims({-1, 16, 4, 4}));
  expect(b->configurePlugin(&in, 1, &out, 1) == 0, "configure with a dynamic batch");
  in.desc.dims = dims({-1, 16, 4, 10});
  in.max = dims({8, 16, 4, 10});
  expect(b->configurePlugin(&in, 1, &out, 1) != 0, "configure refuses a last axis not a multiple of 3*H");
  in.max = dims({int64_t(1) << 40, int64_t(1) << 20, 4, 12});
  in.desc.dims = dims({-1, 16, 4, 12});
  expect(b->configurePlugin(&in, 1, &out, 1) != 0, "configure refuses a profile whose bytes overflow int64");

  PluginTensorDesc qkv = desc(dims({2, 16, 4, 12})), o = desc(dims({2, 16, 4, 4}));
  expect(r->onShapeChange(&qkv, 1, &o, 1) == 0, "shape change accepted");
  PluginTensorDesc bad_o = desc(dims({2, 16, 4, 5}));
  expect(r->onShapeChange(&qkv, 1, &bad_o, 1) != 0, "shape change refuses a wrong output shape");
  PluginTensorDesc three_d = desc(dims({2, 16, 12}));
  expect(r->onShapeChange(&three_d, 1, &o, 1) != 0, "shape change refuses 3-D qkv");
  expect(r->onShapeChange(&qkv, 2, &o, 1) != 0, "shape change refuses two inputs");
  PluginTensorDesc mixed = desc(dims({2, 16, 4, 4}), DataType::kHALF);
  expect(r->onShapeChange(&qkv, 1, &mixed, 1) != 0, "shape change refuses mixed types");
  const void* in_ptr[1] = {nullptr};
  void* out_ptr[1] = {nullptr};
  PluginTensorDesc bad_qkv = desc(dims({2, 16, 4, 13}));
  expect(r->enqueue(&bad_qkv, &o, in_ptr, out_ptr, nullptr, nullptr) != 0, "enqueue refuses a bad shape");
  expect(r->enqueue(&qkv, &o, in_ptr, out_ptr, nullptr, nullptr) != 0, "enqueue refuses null device addresses");
  PluginTensorDesc empty = desc(dims({0, 16, 4, 12})), empty_o = desc(dims({0, 16, 4, 4}));
  expect(r->enqueue(&empty, &empty_o, in_ptr, out_ptr, nullptr, nullptr) == 0, "enqueue of an empty batch is a no-op");

  MultiScaleEmbeddingCreator emb_creator;
  Plugin e(emb_creator.createPlugin("e", nullptr, TensorRTPhase::kBUILD));
  if (!e) {
    expect(false, "embedding plugin for the rules");
    return;
  }
  // feat (B*T=8, C=3, 7, 7), weight (D=6, 3, 2, 2), bias (6), pos_t (T=4, 6), pos_s (16, 6) -> (2, 4, 16, 6)
  PluginTensorDesc ein[6] = {desc(dims({8, 3, 7, 7})), desc(dims({6, 3, 2, 2})), desc(dims({6})),
                             desc(dims({4, 6})),       desc(dims({16, 6})),      desc(dims({2, 4, 16, 6}))};
  PluginTensorDesc eo = desc(dims({2, 4, 16, 6}));
  nvinfer1::IPluginV3OneRuntime* er = runtime(e.get());
  const void* ein_ptr[6] = {};
  void* eout_ptr[1] = {nullptr};
  expect(er->enqueue(ein, &eo, ein_ptr, eout_ptr, nullptr, nullptr) != 0, "enqueue before any shape change refused");
  expect(er->onShapeChange(ein, 5, &eo, 1) == 0 && er->onShapeChange(ein, 6, &eo, 1) == 0,
         "embedding shape change with and without residual");
  expect(er->onShapeChange(ein, 4, &eo, 1) != 0, "embedding refuses 4 inputs");
  PluginTensorDesc bad_t[5] = {desc(dims({9, 3, 7, 7})), ein[1], ein[2], ein[3], ein[4]};
  expect(er->onShapeChange(bad_t, 5, &eo, 1) != 0, "embedding refuses B*T not a multiple of T");
  PluginTensorDesc bad_w[5] = {ein[0], desc(dims({6, 3, 1, 1})), ein[2], ein[3], ein[4]};
  expect(er->onShapeChange(bad_w, 5, &eo, 1) != 0, "embedding refuses patches that do not cover the map");
  PluginTensorDesc bad_rank[5] = {ein[0], ein[1], desc(dims({6, 1})), ein[3], ein[4]};
  expect(er->onShapeChange(bad_rank, 5, &eo, 1) != 0, "embedding refuses a 2-D bias");
  // enqueue reads as many descriptions as the last shape change had inputs (6 here, with residual)
  PluginTensorDesc bad_t6[6] = {bad_t[0], ein[1], ein[2], ein[3], ein[4], ein[5]};
  expect(er->enqueue(bad_t6, &eo, ein_ptr, eout_ptr, nullptr, nullptr) != 0, "embedding enqueue refuses bad shapes");
}

// ---- enqueue on a GPU ----------------------------------------------------------------------------------------------

std::vector<float> random_vector(size_t n, std::mt19937& rng, float amplitude = 1.f) {
  std::normal_distribution<float> normal(0.f, amplitude);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Device copy of host (as fp32 or, rounding each element, fp16); rounds host in place to what the device holds.
void* to_device(std::vector<float>& host, bool fp16) {
  void* ptr = nullptr;
  const size_t n = host.size();
  if (cudaMalloc(&ptr, n * (fp16 ? 2 : 4)) != cudaSuccess) return nullptr;
  if (fp16) {
    std::vector<__half> h(n);
    for (size_t i = 0; i < n; ++i) {
      h[i] = __float2half(host[i]);
      host[i] = __half2float(h[i]);
    }
    cudaMemcpy(ptr, h.data(), n * 2, cudaMemcpyHostToDevice);
  } else {
    cudaMemcpy(ptr, host.data(), n * 4, cudaMemcpyHostToDevice);
  }
  return ptr;
}

std::vector<float> from_device(const void* ptr, size_t n, bool fp16) {
  std::vector<float> out(n);
  if (fp16) {
    std::vector<__half> h(n);
    cudaMemcpy(h.data(), ptr, n * 2, cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < n; ++i) out[i] = __half2float(h[i]);
  } else {
    cudaMemcpy(out.data(), ptr, n * 4, cudaMemcpyDeviceToHost);
  }
  return out;
}

double max_error(const std::vector<float>& got, const std::vector<float>& want, double rtol) {
  double worst = 0;  // the largest |got - want| / (1 + rtol * |want|)
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]) / (1.0 + rtol * std::fabs(want[i]));
    if (!(err <= worst)) worst = err;  // NaN counts as worst
  }
  return worst;
}

void gpu_attention(bool fp16) {
  const int64_t B = 2, T = 16, N = 8, H = 4, Dh = 16, D = H * Dh;
  std::mt19937 rng(fp16 ? 11 : 10);
  std::vector<float> qkv = random_vector(size_t(B * T * N * 3 * D), rng);
  void* d_qkv = to_device(qkv, fp16);
  void* d_out = nullptr;
  cudaMalloc(&d_out, size_t(B * T * N * D) * (fp16 ? 2 : 4));
  TemporalAttentionCreator creator;
  const int32_t heads = int32_t(H);
  PluginField f{"num_heads", &heads, PluginFieldType::kINT32, 1};
  PluginFieldCollection fc{1, &f};
  Plugin p(creator.createPlugin("p", &fc, TensorRTPhase::kBUILD));
  const DataType type = fp16 ? DataType::kHALF : DataType::kFLOAT;
  PluginTensorDesc in = desc(dims({B, T, N, 3 * D}), type), out = desc(dims({B, T, N, D}), type);
  const void* inputs[1] = {d_qkv};
  void* outputs[1] = {d_out};
  cudaStream_t stream = nullptr;
  cudaStreamCreate(&stream);
  nvinfer1::IPluginV3OneRuntime* r = runtime(p.get());
  const bool ran = r->onShapeChange(&in, 1, &out, 1) == 0 && r->enqueue(&in, &out, inputs, outputs, nullptr, stream) == 0;
  expect(ran, fp16 ? "attention enqueue fp16" : "attention enqueue fp32");
  cudaStreamSynchronize(stream);
  std::vector<float> got = from_device(d_out, size_t(B * T * N * D), fp16);
  std::vector<float> want(got.size());
  edgefer::temporal_attention_cpu(qkv.data(), B, T, N, H, Dh, T * N * 3 * D, N * 3 * D, 3 * D,
                                  1.f / std::sqrt(float(Dh)), want.data());
  const double err = max_error(got, want, 1.0);
  std::printf("attention %s: max error %.3g\n", fp16 ? "fp16" : "fp32", err);
  expect(ran && err < (fp16 ? 2e-2 : 1e-4), fp16 ? "attention fp16 matches the CPU kernel" : "attention fp32 matches");
  cudaFree(d_qkv);
  cudaFree(d_out);
  cudaStreamDestroy(stream);
}

void gpu_embedding(bool fp16, bool with_residual) {
  const int64_t B = 2, T = 4, C = 8, Hin = 7, Win = 7, D = 32, G = 4, P = 2, GG = G * G;
  std::mt19937 rng(20 + 2 * fp16 + with_residual);
  std::vector<float> host[6] = {random_vector(size_t(B * T * C * Hin * Win), rng), random_vector(size_t(D * C * P * P), rng, 0.2f),
                                random_vector(size_t(D), rng),  random_vector(size_t(T * D), rng),
                                random_vector(size_t(GG * D), rng), random_vector(size_t(B * T * GG * D), rng)};
  const int32_t nb = with_residual ? 6 : 5;
  void* dev[6] = {};
  for (int32_t i = 0; i < nb; ++i) dev[i] = to_device(host[i], fp16);
  void* d_out = nullptr;
  cudaMalloc(&d_out, size_t(B * T * GG * D) * (fp16 ? 2 : 4));
  MultiScaleEmbeddingCreator creator;
  Plugin p(creator.createPlugin("e", nullptr, TensorRTPhase::kBUILD));
  const DataType type = fp16 ? DataType::kHALF : DataType::kFLOAT;
  PluginTensorDesc in[6] = {desc(dims({B * T, C, Hin, Win}), type), desc(dims({D, C, P, P}), type),
                            desc(dims({D}), type),                  desc(dims({T, D}), type),
                            desc(dims({GG, D}), type),              desc(dims({B, T, GG, D}), type)};
  PluginTensorDesc out = desc(dims({B, T, GG, D}), type);
  const void* inputs[6] = {dev[0], dev[1], dev[2], dev[3], dev[4], dev[5]};
  void* outputs[1] = {d_out};
  nvinfer1::IPluginV3OneRuntime* r = runtime(p.get());
  const bool ran = r->onShapeChange(in, nb, &out, 1) == 0 && r->enqueue(in, &out, inputs, outputs, nullptr, nullptr) == 0;
  expect(ran, "embedding enqueue");
  cudaDeviceSynchronize();
  std::vector<float> got = from_device(d_out, size_t(B * T * GG * D), fp16);
  std::vector<float> want(got.size());
  edgefer::multiscale_embedding_cpu(host[0].data(), host[1].data(), host[2].data(), host[3].data(), host[4].data(),
                                    with_residual ? host[5].data() : nullptr, B, T, C, Hin, Win, D, P, G, want.data());
  const double err = max_error(got, want, 1.0);
  std::printf("embedding %s%s: max error %.3g\n", fp16 ? "fp16" : "fp32", with_residual ? " +residual" : "", err);
  expect(ran && err < (fp16 ? 2e-2 : 1e-4), "embedding matches the CPU kernel");
  for (void* d : dev) cudaFree(d);
  cudaFree(d_out);
}

}  // namespace

int main(int argc, char** argv) {
  const bool gpu = argc > 1 && std::strcmp(argv[1], "--gpu") == 0;
  creators_and_fields();
  rules();
  if (gpu) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1) {
      std::printf("FAILED: --gpu given but no CUDA device\n");
      return 2;
    }
    for (bool fp16 : {false, true}) {
      gpu_attention(fp16);
      gpu_embedding(fp16, false);
      gpu_embedding(fp16, true);
    }
  }
  if (g_failures == 0) std::printf("ok: %d checks\n", g_checks);
  return g_failures == 0 ? 0 : 1;
}
