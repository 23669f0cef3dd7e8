// PluginBase and CreatorBase (plugins.h): what TemporalAttention and MultiScaleEmbedding share.
#include <new>

#include "plugin_common.h"
#include "plugins.h"

namespace edgefer {
namespace tensorrt {

nvinfer1::IPluginCapability* PluginBase::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
  }
  return nullptr;
}

const char* PluginBase::getPluginVersion() const noexcept { return kPluginVersion; }
const char* PluginBase::getPluginNamespace() const noexcept { return kPluginNamespace; }

int32_t PluginBase::fail(nvinfer1::ErrorCode code, const char* what) const noexcept {
  report(recorder_, code, name_, what);
  return -1;
}

int32_t PluginBase::fail(const CheckStatus& status) const noexcept {
  return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, status.message);
}

bool PluginBase::io_count_ok(int32_t nb_inputs, int32_t nb_outputs) const noexcept {
  if (nb_inputs < min_inputs_ || nb_inputs > max_inputs_) {
    fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT,
         min_inputs_ == max_inputs_ ? "wrong number of inputs (takes 1: qkv)"
                                    : "wrong number of inputs (takes 5 or 6: feat, weight, bias, pos_t, pos_s[, residual])");
    return false;
  }
  if (nb_outputs != 1) {
    fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "wrong number of outputs (gives 1)");
    return false;
  }
  return true;
}

bool PluginBase::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out,
                                           int32_t nb_inputs, int32_t nb_outputs) noexcept {
  if (in_out == nullptr || pos < 0 || pos >= nb_inputs + nb_outputs) return false;
  return linear_same_type(pos, in_out);
}

int32_t PluginBase::getOutputDataTypes(nvinfer1::DataType* output_types, int32_t nb_outputs,
                                       nvinfer1::DataType const* input_types, int32_t nb_inputs) const noexcept {
  if (!io_count_ok(nb_inputs, nb_outputs) || output_types == nullptr || input_types == nullptr) return -1;
  int64_t itemsize = 0;
  int32_t dtype = 0;
  if (!kernel_dtype(input_types[0], &itemsize, &dtype))
    return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "input 0 must be float32 or float16");
  for (int32_t i = 1; i < nb_inputs; ++i)
    if (input_types[i] != input_types[0])
      return fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "every input must have the type of input 0");
  output_types[0] = input_types[0];
  return 0;
}

bool PluginBase::io_types_ok(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                             nvinfer1::PluginTensorDesc const* out, int64_t* itemsize, int32_t* dtype) const noexcept {
  if (in == nullptr || out == nullptr) {
    fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "missing tensor descriptions");
    return false;
  }
  if (!kernel_dtype(in[0].type, itemsize, dtype)) {
    fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "input 0 must be float32 or float16");
    return false;
  }
  for (int32_t i = 0; i <= nb_inputs; ++i) {
    nvinfer1::PluginTensorDesc const& d = i < nb_inputs ? in[i] : out[0];
    if (d.type != in[0].type) {
      fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "every input and the output must have the type of input 0");
      return false;
    }
    if (d.format != nvinfer1::TensorFormat::kLINEAR) {
      fail(nvinfer1::ErrorCode::kINVALID_ARGUMENT, "every tensor must be in the linear (row-major) format");
      return false;
    }
  }
  return true;
}

nvinfer1::IPluginV3* PluginBase::attachToContext(nvinfer1::IPluginResourceContext* context) noexcept {
  nvinfer1::IPluginV3* copy = clone();
  if (copy != nullptr && context != nullptr) {
    // clone() makes an object of this class, so the IPluginV3 it returns is a PluginBase.
    static_cast<PluginBase*>(copy)->recorder_ = context->getErrorRecorder();
  }
  return copy;
}

const char* CreatorBase::getPluginVersion() const noexcept { return kPluginVersion; }
const char* CreatorBase::getPluginNamespace() const noexcept { return kPluginNamespace; }

}  // namespace tensorrt
}  // namespace edgefer
