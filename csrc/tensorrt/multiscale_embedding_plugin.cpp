// MultiScaleEmbeddingPlugin and its creator (plugins.h): edgefer::cuda::multiscale_embedding_cuda as an IPluginV3.
#include <cstdio>
#include <cstring>
#include <new>

#include "edgefer/kernels_cuda.h"
#include "plugin_common.h"
#include "plugins.h"

namespace edgefer {
namespace tensorrt {
namespace {

MultiScaleEmbeddingCreator* g_registered_embedding = nullptr;

constexpr int64_t kDefaultGrid = 4;  // the design's G, and the ONNX node's default (csrc/onnxruntime)
const int32_t kRanks[6] = {4, 4, 1, 2, 2, 4};  // feat, weight, bias, pos_t, pos_s, residual
const char* const kRankMessages[6] = {
    "feat (input 0) must be 4-D (B*T, C, H, W)", "weight (input 1) must be 4-D (D, C, P, P)",
    "bias (input 2) must be 1-D (D,)",           "pos_t (input 3) must be 2-D (T, D)",
    "pos_s (input 4) must be 2-D (G*G, D)",      "residual (input 5) must be 4-D (B, T, G*G, D)"};

}  // namespace

MultiScaleEmbeddingPlugin::MultiScaleEmbeddingPlugin(int64_t grid) noexcept
    : PluginBase(kMultiScaleEmbeddingName), grid_(grid) {
  min_inputs_ = 5;
  max_inputs_ = 6;
  std::snprintf(metadata_, sizeof(metadata_), "grid=%lld", static_cast<long long>(grid));
}

nvinfer1::IPluginV3* MultiScaleEmbeddingPlugin::clone() noexcept {
  auto* copy = new (std::nothrow) MultiScaleEmbeddingPlugin(grid_);
  if (copy == nullptr) {
    fail(nvinfer1::ErrorCode::kFAILED_ALLOCATION, "out of memory cloning the plugin");
    return nullptr;
  }
  copy->recorder_ = recorder_;
  copy->nb_inputs_seen_ = nb_inputs_seen_;
  return copy;
}

bool MultiScaleEmbeddingPlugin::check(nvinfer1::Dims const* const* in, int32_t nb_inputs, nvinfer1::Dims const* out,
                                      int64_t itemsize, EmbeddingSizes* sizes) const noexcept {
  for (int32_t i = 0; i < nb_inputs; ++i) {
    if (in[i]->nbDims != kRanks[i]) {
      fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, kRankMessages[i]);
      return false;
    }
  }
  const TensorArg residual = nb_inputs == 6 ? tensor_arg(*in[5]) : TensorArg{nullptr, nullptr, 0};
  const CheckStatus status =
      check_multiscale_embedding(tensor_arg(*in[0]), tensor_arg(*in[1]), tensor_arg(*in[2]), tensor_arg(*in[3]),
                                 tensor_arg(*in[4]), nb_inputs == 6 ? &residual : nullptr, grid_, itemsize, sizes);
  if (!status.ok) {
    fail(status);
    return false;
  }
  if (out != nullptr) {
    const int64_t want[4] = {sizes->B, sizes->T, sizes->G * sizes->G, sizes->D};
    bool same = out->nbDims == 4;
    for (int32_t i = 0; same && i < 4; ++i) same = out->d[i] == want[i];
    if (!same) {
      fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "the output is not (B, T, G*G, D)");
      return false;
    }
  }
  return true;
}

int32_t MultiScaleEmbeddingPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                                                   nvinfer1::DimsExprs const* /*shape_inputs*/,
                                                   int32_t /*nb_shape_inputs*/, nvinfer1::DimsExprs* outputs,
                                                   int32_t nb_outputs, nvinfer1::IExprBuilder& expr_builder) noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs) || inputs == nullptr || outputs == nullptr) return -1;
  for (int32_t i = 0; i < nb_inputs; ++i)
    if (inputs[i].nbDims != kRanks[i]) return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, kRankMessages[i]);
  nvinfer1::Dims known[6]{};
  nvinfer1::Dims const* known_ptr[6];
  bool all_known = true;
  for (int32_t i = 0; i < nb_inputs; ++i) {
    all_known = all_known && constant_dims(inputs[i], &known[i]);
    known_ptr[i] = &known[i];
  }
  EmbeddingSizes sizes{};
  if (all_known && !check(known_ptr, nb_inputs, nullptr, 2, &sizes)) return -1;
  nvinfer1::DimsExprs const& feat = inputs[0];
  nvinfer1::DimsExprs const& weight = inputs[1];
  nvinfer1::DimsExprs const& pos_t = inputs[3];
  nvinfer1::IDimensionExpr const* tokens = expr_builder.constant(grid_ * grid_);  // check_grid: fits int64
  nvinfer1::IDimensionExpr const* batch =
      feat.d[0] != nullptr && pos_t.d[0] != nullptr
          ? expr_builder.operation(nvinfer1::DimensionOperation::kFLOOR_DIV, *feat.d[0], *pos_t.d[0])
          : nullptr;
  if (tokens == nullptr || batch == nullptr || pos_t.d[0] == nullptr || weight.d[0] == nullptr)
    return fail(nvinfer1::ErrorCode::kINTERNAL_ERROR, "could not build the output's shape");
  outputs[0].nbDims = 4;
  outputs[0].d[0] = batch;       // B = (B*T) / T
  outputs[0].d[1] = pos_t.d[0];  // T
  outputs[0].d[2] = tokens;      // G*G
  outputs[0].d[3] = weight.d[0];  // D
  return 0;
}

int32_t MultiScaleEmbeddingPlugin::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs,
                                                   nvinfer1::DynamicPluginTensorDesc const* out,
                                                   int32_t nb_outputs) noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs) || in == nullptr || out == nullptr) return -1;
  nvinfer1::PluginTensorDesc descs[6];
  nvinfer1::Dims const* dims[6];
  bool all_known = true;
  for (int32_t i = 0; i < nb_inputs; ++i) {
    descs[i] = in[i].desc;
    dims[i] = &in[i].desc.dims;
    if (in[i].desc.dims.nbDims != kRanks[i]) return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, kRankMessages[i]);
    all_known = all_known && fully_known(in[i].desc.dims);
  }
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!io_types_ok(descs, nb_inputs, &out[0].desc, &itemsize, &dtype)) return -1;
  // Only a fully known call is checked here: a profile's bounds on B*T need not be multiples of T.
  EmbeddingSizes sizes{};
  if (all_known && !check(dims, nb_inputs, nullptr, itemsize, &sizes)) return -1;
  nb_inputs_seen_ = nb_inputs;
  return 0;
}

int32_t MultiScaleEmbeddingPlugin::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                                                 nvinfer1::PluginTensorDesc const* out, int32_t nb_outputs) noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs)) return -1;
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!io_types_ok(in, nb_inputs, out, &itemsize, &dtype)) return -1;
  nvinfer1::Dims const* dims[6];
  for (int32_t i = 0; i < nb_inputs; ++i) dims[i] = &in[i].dims;
  EmbeddingSizes sizes{};
  if (!check(dims, nb_inputs, &out[0].dims, itemsize, &sizes)) return -1;
  nb_inputs_seen_ = nb_inputs;
  return 0;
}

int32_t MultiScaleEmbeddingPlugin::enqueue(nvinfer1::PluginTensorDesc const* input_desc,
                                           nvinfer1::PluginTensorDesc const* output_desc, void const* const* inputs,
                                           void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept {
  // TensorRT passes as many descriptions as the layer has inputs; the optional residual is present exactly when
  // the layer was built with 6 inputs, which this plugin learns from onShapeChange/configurePlugin.
  const int32_t nb_inputs = nb_inputs_seen_;
  if (nb_inputs < min_inputs_ || nb_inputs > max_inputs_)
    return fail(nvinfer1::ErrorCode::kINVALID_STATE, "enqueue before the plugin was configured for its inputs");
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!io_types_ok(input_desc, nb_inputs, output_desc, &itemsize, &dtype)) return -1;
  nvinfer1::Dims const* dims[6];
  for (int32_t i = 0; i < nb_inputs; ++i) dims[i] = &input_desc[i].dims;
  EmbeddingSizes a{};
  if (!check(dims, nb_inputs, &output_desc[0].dims, itemsize, &a)) return -1;
  if (a.B == 0 || a.D == 0) return 0;  // no output element (T and G are >= 1)
  if (inputs == nullptr || outputs == nullptr || outputs[0] == nullptr)
    return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "an input or the output has no device address");
  for (int32_t i = 0; i < nb_inputs; ++i)
    if (inputs[i] == nullptr) return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "an input has no device address");
  const void* residual = nb_inputs == 6 ? inputs[5] : nullptr;
  const int64_t fs[4] = {a.C * a.H * a.W, a.H * a.W, a.W, 1};  // contiguous; products passed the check
  const int64_t GG = a.G * a.G;
  const int64_t rs[4] = {a.T * GG * a.D, GG * a.D, a.D, 1};
  const int32_t rc = cuda::multiscale_embedding_cuda(inputs[0], fs, inputs[1], inputs[2], inputs[3], inputs[4],
                                                     residual, residual != nullptr ? rs : nullptr, dtype, a.B, a.T,
                                                     a.C, a.H, a.W, a.D, a.P, a.G, outputs[0], stream);
  if (rc != cuda::kOk) {
    char what[256];
    std::snprintf(what, sizeof(what), "CUDA kernel failed: %s", cuda::error_string(rc));
    return fail(nvinfer1::ErrorCode::kFAILED_EXECUTION, what);
  }
  return 0;
}

nvinfer1::PluginFieldCollection const* MultiScaleEmbeddingPlugin::getFieldsToSerialize() noexcept {
  fields_[0] = nvinfer1::PluginField("grid", &grid_, nvinfer1::PluginFieldType::kINT64, 1);
  collection_.nbFields = 1;
  collection_.fields = fields_;
  return &collection_;
}

// ---- creator -----------------------------------------------------------------------------------------------------

MultiScaleEmbeddingCreator::MultiScaleEmbeddingCreator() noexcept {
  names_[0] = nvinfer1::PluginField("grid", nullptr, nvinfer1::PluginFieldType::kINT32, 1);
  field_names_.nbFields = 1;
  field_names_.fields = names_;
  if (g_registered_embedding == nullptr) g_registered_embedding = this;
}

MultiScaleEmbeddingCreator* MultiScaleEmbeddingCreator::registered() noexcept { return g_registered_embedding; }

const char* MultiScaleEmbeddingCreator::getPluginName() const noexcept { return kMultiScaleEmbeddingName; }

nvinfer1::IPluginV3* MultiScaleEmbeddingCreator::createPlugin(const char* /*name*/,
                                                              nvinfer1::PluginFieldCollection const* fc,
                                                              nvinfer1::TensorRTPhase /*phase*/) noexcept {
  char what[448];
  int64_t grid = kDefaultGrid;
  const int32_t n = fc != nullptr && fc->fields != nullptr ? fc->nbFields : 0;
  for (int32_t i = 0; i < n; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    const char* why = nullptr;
    if (f.name != nullptr && std::strcmp(f.name, "grid") == 0) {
      if (!read_int(f, &grid, &why)) {
        std::snprintf(what, sizeof(what), "field grid %s", why);
        report(nullptr, nvinfer1::ErrorCode::kINVALID_ARGUMENT, kMultiScaleEmbeddingName, what);
        return nullptr;
      }
    } else {
      std::snprintf(what, sizeof(what), "unknown field '%.200s' (takes grid)", f.name != nullptr ? f.name : "");
      report(nullptr, nvinfer1::ErrorCode::kINVALID_ARGUMENT, kMultiScaleEmbeddingName, what);
      return nullptr;
    }
  }
  const CheckStatus status = check_grid(grid);
  if (!status.ok) {
    std::snprintf(what, sizeof(what), "field grid: %s", status.message);
    report(nullptr, nvinfer1::ErrorCode::kINVALID_ARGUMENT, kMultiScaleEmbeddingName, what);
    return nullptr;
  }
  auto* plugin = new (std::nothrow) MultiScaleEmbeddingPlugin(grid);
  if (plugin == nullptr)
    report(nullptr, nvinfer1::ErrorCode::kFAILED_ALLOCATION, kMultiScaleEmbeddingName, "out of memory");
  return plugin;
}

}  // namespace tensorrt
}  // namespace edgefer
