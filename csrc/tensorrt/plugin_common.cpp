// csrc/tensorrt/plugin_common.h
#include "plugin_common.h"

#include <atomic>
#include <cstdio>

#include "edgefer/kernels_cuda.h"

namespace edgefer {
namespace tensorrt {
namespace {

std::atomic<nvinfer1::ILoggerFinder*> g_logger_finder{nullptr};

}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept {
  nvinfer1::ILoggerFinder* none = nullptr;
  if (finder != nullptr) g_logger_finder.compare_exchange_strong(none, finder);
}

void report(nvinfer1::IErrorRecorder* recorder, nvinfer1::ErrorCode code, const char* op, const char* what) noexcept {
  char message[512];
  std::snprintf(message, sizeof(message), "edgefer::%s plugin: %s", op, what);
  if (recorder == nullptr) {
    nvinfer1::IPluginRegistry* registry = getPluginRegistry();
    if (registry != nullptr) recorder = registry->getErrorRecorder();
  }
  if (recorder != nullptr) {
    recorder->reportError(code, message);
    return;
  }
  nvinfer1::ILoggerFinder* finder = g_logger_finder.load();
  nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
  if (logger != nullptr) {
    logger->log(nvinfer1::ILogger::Severity::kERROR, message);
    return;
  }
  std::fprintf(stderr, "%s\n", message);
}

bool read_int(nvinfer1::PluginField const& field, int64_t* value, const char** why) noexcept {
  if (field.data == nullptr || field.length != 1) {
    *why = "must be a single integer";
    return false;
  }
  switch (field.type) {
    case nvinfer1::PluginFieldType::kINT8: *value = *static_cast<int8_t const*>(field.data); return true;
    case nvinfer1::PluginFieldType::kINT16: *value = *static_cast<int16_t const*>(field.data); return true;
    case nvinfer1::PluginFieldType::kINT32: *value = *static_cast<int32_t const*>(field.data); return true;
    case nvinfer1::PluginFieldType::kINT64: *value = *static_cast<int64_t const*>(field.data); return true;
    default: *why = "must be an integer (kINT8, kINT16, kINT32 or kINT64)"; return false;
  }
}

bool read_float(nvinfer1::PluginField const& field, double* value, const char** why) noexcept {
  if (field.data == nullptr || field.length != 1) {
    *why = "must be a single float";
    return false;
  }
  switch (field.type) {
    case nvinfer1::PluginFieldType::kFLOAT32: *value = *static_cast<float const*>(field.data); return true;
    case nvinfer1::PluginFieldType::kFLOAT64: *value = *static_cast<double const*>(field.data); return true;
    default: *why = "must be a float (kFLOAT32 or kFLOAT64)"; return false;
  }
}

bool kernel_dtype(nvinfer1::DataType type, int64_t* itemsize, int32_t* dtype) noexcept {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: *itemsize = 4; *dtype = edgefer::cuda::kFloat32; return true;
    case nvinfer1::DataType::kHALF: *itemsize = 2; *dtype = edgefer::cuda::kFloat16; return true;
    default: return false;
  }
}

bool fully_known(nvinfer1::Dims const& dims) noexcept {
  if (dims.nbDims < 0 || dims.nbDims > nvinfer1::Dims::MAX_DIMS) return false;
  for (int32_t i = 0; i < dims.nbDims; ++i)
    if (dims.d[i] < 0) return false;
  return true;
}

bool constant_dims(nvinfer1::DimsExprs const& exprs, nvinfer1::Dims* dims) noexcept {
  if (exprs.nbDims < 0 || exprs.nbDims > nvinfer1::Dims::MAX_DIMS) return false;
  dims->nbDims = exprs.nbDims;
  for (int32_t i = 0; i < exprs.nbDims; ++i) {
    if (exprs.d[i] == nullptr || !exprs.d[i]->isConstant()) return false;
    dims->d[i] = exprs.d[i]->getConstantValue();
  }
  return true;
}

bool linear_same_type(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out) noexcept {
  nvinfer1::PluginTensorDesc const& desc = in_out[pos].desc;
  if (desc.format != nvinfer1::TensorFormat::kLINEAR) return false;
  if (desc.type != nvinfer1::DataType::kFLOAT && desc.type != nvinfer1::DataType::kHALF) return false;
  return pos == 0 || desc.type == in_out[0].desc.type;
}

}  // namespace tensorrt
}  // namespace edgefer
