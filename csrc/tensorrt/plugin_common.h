// What edgefer's two TensorRT plugins share (csrc/tensorrt/): their identity (names, version, namespace), error
// reporting, reading PluginFields, and turning TensorRT tensor descriptions into the arguments of the shared checks
// (edgefer/checks.h) and the CUDA kernels (edgefer/kernels_cuda.h).
//
// Written from TensorRT's public headers (NvInferRuntime.h, NvInferRuntimePlugin.h; NvInferPluginBase.h in 11.x),
// versions 10.3 (JetPack 6) and 11.1. Nothing here throws: every function is noexcept, and failures come back as a
// status plus a one-line message reported through TensorRT (see report()).
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>

#include "edgefer/checks.h"

namespace edgefer {
namespace tensorrt {

// The identity the ONNX parser looks up for a node it has no importer for: the node's op type as the plugin name,
// with its attributes plugin_version (default "1") and plugin_namespace (default "") -- edgefer's export emits
// neither, so the defaults must match. REGISTER_TENSORRT_PLUGIN registers under namespace "" as well.
constexpr const char* kTemporalAttentionName = "TemporalAttention";
constexpr const char* kMultiScaleEmbeddingName = "MultiScaleEmbedding";
constexpr const char* kPluginVersion = "1";
constexpr const char* kPluginNamespace = "";

// Where a plugin reports an error: the execution context's IErrorRecorder once attachToContext gave it one;
// otherwise the plugin registry's recorder, else the logger TensorRT handed to setLoggerFinder (loadLibrary does),
// else stderr. The message is "edgefer::<op> plugin: <what>".
void report(nvinfer1::IErrorRecorder* recorder, nvinfer1::ErrorCode code, const char* op, const char* what) noexcept;

// Remembers the ILoggerFinder TensorRT passes to the library's setLoggerFinder entry point (first non-null wins).
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;

// One attribute of a PluginFieldCollection read as a scalar: a length-1 field of an integer type (kINT8, kINT16,
// kINT32, kINT64) for read_int, of a float type (kFLOAT32, kFLOAT64) for read_float. The ONNX parser passes ONNX INT
// attributes as kINT32 and FLOAT ones as kFLOAT32. False (with *why set) for another type, length or a null data.
bool read_int(nvinfer1::PluginField const& field, int64_t* value, const char** why) noexcept;
bool read_float(nvinfer1::PluginField const& field, double* value, const char** why) noexcept;

// The element size in bytes and the kernels' dtype code (edgefer::cuda::kFloat32 / kFloat16) of a TensorRT type;
// false for a type the kernels do not take (anything but kFLOAT and kHALF).
bool kernel_dtype(nvinfer1::DataType type, int64_t* itemsize, int32_t* dtype) noexcept;

// A TensorRT tensor's dims as a C-contiguous edgefer::TensorArg (TensorRT's linear format is dense row-major).
// The TensorArg points into dims, which must outlive it.
inline TensorArg tensor_arg(nvinfer1::Dims const& dims) noexcept {
  return TensorArg{dims.d, nullptr, static_cast<int64_t>(dims.nbDims)};
}

// Whether every extent of dims is known (no -1 placeholder of a runtime dimension).
bool fully_known(nvinfer1::Dims const& dims) noexcept;

// Whether every expression is a build-time constant; if so, writes their values into *dims.
bool constant_dims(nvinfer1::DimsExprs const& exprs, nvinfer1::Dims* dims) noexcept;

// supportsFormatCombination's rule for both plugins: linear (row-major) format, fp32 or fp16, and every input and
// output of the type of input 0.
bool linear_same_type(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out) noexcept;

}  // namespace tensorrt
}  // namespace edgefer
