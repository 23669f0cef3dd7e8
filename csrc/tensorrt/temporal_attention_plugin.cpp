// TemporalAttentionPlugin and its creator (plugins.h): edgefer::cuda::temporal_attention_cuda as an IPluginV3.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include "edgefer/kernels_cuda.h"
#include "plugin_common.h"
#include "plugins.h"

namespace edgefer {
namespace tensorrt {
namespace {

TemporalAttentionCreator* g_registered_attention = nullptr;

}  // namespace

TemporalAttentionPlugin::TemporalAttentionPlugin(int64_t num_heads, float scale) noexcept
    : PluginBase(kTemporalAttentionName), num_heads_(num_heads), scale_(scale) {
  min_inputs_ = max_inputs_ = 1;
  std::snprintf(metadata_, sizeof(metadata_), "num_heads=%lld scale=%.9g", static_cast<long long>(num_heads), scale);
}

nvinfer1::IPluginV3* TemporalAttentionPlugin::clone() noexcept {
  auto* copy = new (std::nothrow) TemporalAttentionPlugin(num_heads_, scale_);
  if (copy == nullptr) {
    fail(nvinfer1::ErrorCode::kFAILED_ALLOCATION, "out of memory cloning the plugin");
    return nullptr;
  }
  copy->recorder_ = recorder_;
  return copy;
}

bool TemporalAttentionPlugin::check(nvinfer1::Dims const& qkv, nvinfer1::Dims const* out, int64_t itemsize,
                                    AttentionSizes* sizes) const noexcept {
  const CheckStatus status = check_temporal_attention(tensor_arg(qkv), num_heads_, itemsize, sizes);
  if (!status.ok) {
    fail(status);
    return false;
  }
  if (out != nullptr) {
    const int64_t want[4] = {sizes->B, sizes->T, sizes->N, sizes->D};
    bool same = out->nbDims == 4;
    for (int32_t i = 0; same && i < 4; ++i) same = out->d[i] == want[i];
    if (!same) {
      fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "the output is not (B, T, N, D) of qkv (B, T, N, 3*D)");
      return false;
    }
  }
  return true;
}

int32_t TemporalAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                                                 nvinfer1::DimsExprs const* /*shape_inputs*/,
                                                 int32_t /*nb_shape_inputs*/, nvinfer1::DimsExprs* outputs,
                                                 int32_t nb_outputs, nvinfer1::IExprBuilder& expr_builder) noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs) || inputs == nullptr || outputs == nullptr) return -1;
  nvinfer1::DimsExprs const& qkv = inputs[0];
  if (qkv.nbDims != 4) return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "qkv must be 4-D (B, T, N, 3*D)");
  nvinfer1::Dims known{};
  AttentionSizes sizes{};
  if (constant_dims(qkv, &known) && !check(known, nullptr, 2, &sizes)) return -1;  // fp16: the smaller extents
  nvinfer1::IDimensionExpr const* three = expr_builder.constant(3);
  nvinfer1::IDimensionExpr const* d = three != nullptr && qkv.d[3] != nullptr
                                          ? expr_builder.operation(nvinfer1::DimensionOperation::kFLOOR_DIV,
                                                                   *qkv.d[3], *three)
                                          : nullptr;
  if (d == nullptr) return fail(nvinfer1::ErrorCode::kINTERNAL_ERROR, "could not build the output's last axis");
  outputs[0].nbDims = 4;
  outputs[0].d[0] = qkv.d[0];
  outputs[0].d[1] = qkv.d[1];
  outputs[0].d[2] = qkv.d[2];
  outputs[0].d[3] = d;
  return 0;
}

int32_t TemporalAttentionPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs,
                                                 nvinfer1::DynamicPluginTensorDesc const* out,
                                                 int32_t nb_outputs) noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs) || in == nullptr || out == nullptr) return -1;
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!io_types_ok(&in[0].desc, 1, &out[0].desc, &itemsize, &dtype)) return -1;
  if (in[0].desc.dims.nbDims != 4) return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "qkv must be 4-D (B, T, N, 3*D)");
  AttentionSizes sizes{};
  // The profile's upper bounds: every rule is per axis or grows with the extents (int64 overflow).
  if (fully_known(in[0].max) && !check(in[0].max, nullptr, itemsize, &sizes)) return -1;
  if (fully_known(in[0].desc.dims) && !check(in[0].desc.dims, nullptr, itemsize, &sizes)) return -1;
  return 0;
}

int32_t TemporalAttentionPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                                               nvinfer1::PluginTensorDesc const* out, int32_t nb_outputs) noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs)) return -1;
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!io_types_ok(in, nb_inputs, out, &itemsize, &dtype)) return -1;
  AttentionSizes sizes{};
  return check(in[0].dims, &out[0].dims, itemsize, &sizes) ? 0 : -1;
}

int32_t TemporalAttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* input_desc,
                                         nvinfer1::PluginTensorDesc const* output_desc, void const* const* inputs,
                                         void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept {
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!io_types_ok(input_desc, 1, output_desc, &itemsize, &dtype)) return -1;
  AttentionSizes a{};
  if (!check(input_desc[0].dims, &output_desc[0].dims, itemsize, &a)) return -1;
  if (a.B == 0 || a.T == 0 || a.N == 0 || a.D == 0) return 0;  // nothing to write
  if (inputs == nullptr || outputs == nullptr || inputs[0] == nullptr || outputs[0] == nullptr)
    return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "qkv or the output has no device address");
  const float scale = scale_ != 0.f ? scale_ : 1.f / std::sqrt(static_cast<float>(a.Dh));
  const int64_t sN = 3 * a.D, sT = a.N * sN, sB = a.T * sT;  // contiguous; products passed the check
  const int32_t rc = cuda::temporal_attention_cuda(inputs[0], dtype, a.B, a.T, a.N, a.H, a.Dh, sB, sT, sN, scale,
                                                   outputs[0], stream);
  if (rc != cuda::kOk) {
    char what[256];
    std::snprintf(what, sizeof(what), "CUDA kernel failed: %s", cuda::error_string(rc));
    return fail(nvinfer1::ErrorCode::kFAILED_EXECUTION, what);
  }
  return 0;
}

nvinfer1::PluginFieldCollection const* TemporalAttentionPlugin::getFieldsToSerialize() noexcept {
  fields_[0] = nvinfer1::PluginField("num_heads", &num_heads_, nvinfer1::PluginFieldType::kINT64, 1);
  fields_[1] = nvinfer1::PluginField("scale", &scale_, nvinfer1::PluginFieldType::kFLOAT32, 1);
  collection_.nbFields = 2;
  collection_.fields = fields_;
  return &collection_;
}

// ---- creator -----------------------------------------------------------------------------------------------------

TemporalAttentionCreator::TemporalAttentionCreator() noexcept {
  names_[0] = nvinfer1::PluginField("num_heads", nullptr, nvinfer1::PluginFieldType::kINT32, 1);
  names_[1] = nvinfer1::PluginField("scale", nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1);
  field_names_.nbFields = 2;
  field_names_.fields = names_;
  if (g_registered_attention == nullptr) g_registered_attention = this;
}

TemporalAttentionCreator* TemporalAttentionCreator::registered() noexcept { return g_registered_attention; }

const char* TemporalAttentionCreator::getPluginName() const noexcept { return kTemporalAttentionName; }

nvinfer1::IPluginV3* TemporalAttentionCreator::createPlugin(const char* /*name*/,
                                                            nvinfer1::PluginFieldCollection const* fc,
                                                            nvinfer1::TensorRTPhase /*phase*/) noexcept {
  char what[448];
  auto refuse = [&](const char* field, const char* why) -> nvinfer1::IPluginV3* {
    std::snprintf(what, sizeof(what), "field %s %s", field, why);
    report(nullptr, nvinfer1::ErrorCode::kINVALID_ARGUMENT, kTemporalAttentionName, what);
    return nullptr;
  };
  bool have_heads = false;
  int64_t num_heads = 0;
  double scale = 0.0;  // 0: 1/sqrt(d_h), as an absent ONNX attribute
  const int32_t n = fc != nullptr && fc->fields != nullptr ? fc->nbFields : 0;
  for (int32_t i = 0; i < n; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    const char* why = nullptr;
    if (f.name == nullptr) return refuse("(unnamed)", "has no name");
    if (std::strcmp(f.name, "num_heads") == 0) {
      if (!read_int(f, &num_heads, &why)) return refuse("num_heads", why);
      have_heads = true;
    } else if (std::strcmp(f.name, "scale") == 0) {
      if (!read_float(f, &scale, &why)) return refuse("scale", why);
    } else {
      std::snprintf(what, sizeof(what), "unknown field '%.200s' (takes num_heads, scale)", f.name);
      report(nullptr, nvinfer1::ErrorCode::kINVALID_ARGUMENT, kTemporalAttentionName, what);
      return nullptr;
    }
  }
  if (!have_heads) return refuse("num_heads", "(int) is required");
  const CheckStatus heads = check_num_heads(num_heads);
  if (!heads.ok) return refuse("num_heads:", heads.message);
  const float scale32 = static_cast<float>(scale);
  if (!std::isfinite(scale32)) return refuse("scale", "must be finite (and within float32)");
  auto* plugin = new (std::nothrow) TemporalAttentionPlugin(num_heads, scale32);
  if (plugin == nullptr)
    report(nullptr, nvinfer1::ErrorCode::kFAILED_ALLOCATION, kTemporalAttentionName, "out of memory");
  return plugin;
}

}  // namespace tensorrt
}  // namespace edgefer
