// edgefer's TensorRT plugins: TemporalAttention and MultiScaleEmbedding as IPluginV3 (IPluginV3OneCore,
// IPluginV3OneBuild, IPluginV3OneRuntime), each made by an IPluginCreatorV3One, around the CUDA kernels of
// csrc/cuda (edgefer/kernels_cuda.h). Semantics: edgefer/ops/reference.py; the ONNX nodes they stand for:
// export/custom_ops.py and csrc/onnxruntime/edgefer_ortops.cc.
//
//   TemporalAttention   (qkv) -> out                  qkv (B, T, N, 3*D) -> out (B, T, N, D), D = H * Dh
//                       fields num_heads (int, required), scale (float, default 0 = 1/sqrt(Dh))
//   MultiScaleEmbedding (feat, weight, bias, pos_t, pos_s[, residual]) -> out
//                       feat (B*T, C, H, W), weight (D, C, P, P), bias (D), pos_t (T, D), pos_s (G*G, D),
//                       residual (B, T, G*G, D) -> out (B, T, G*G, D); field grid (int, default 4)
//
// Every tensor float32 or float16 (all of one call the same), linear format. Name, version "1" and namespace "":
// plugin_common.h. The argument rules are edgefer/checks.h's, applied when the plugin is created (attributes),
// configured and reshaped (shapes), and again before every enqueue; a failure returns a non-zero status and is
// reported through TensorRT (plugin_common.h report()), never thrown.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>

#include "edgefer/checks.h"

namespace edgefer {
namespace tensorrt {

// What the two plugins share: identity, the capability split, the format and type rules, and the error recorder.
class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  explicit PluginBase(const char* name) noexcept : name_(name) {}

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;

  // IPluginV3OneCore
  const char* getPluginName() const noexcept override { return name_; }
  const char* getPluginVersion() const noexcept override;
  const char* getPluginNamespace() const noexcept override;

  // IPluginV3OneBuild (the rest is per plugin)
  int32_t getNbOutputs() const noexcept override { return 1; }
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out, int32_t nb_inputs,
                                 int32_t nb_outputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* output_types, int32_t nb_outputs,
                             nvinfer1::DataType const* input_types, int32_t nb_inputs) const noexcept override;
  const char* getMetadataString() noexcept override { return metadata_; }

  // IPluginV3OneRuntime (the rest is per plugin)
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;

 protected:
  // Reports "edgefer::<name> plugin: what" with code; returns -1, the status the failing call gives TensorRT.
  int32_t fail(nvinfer1::ErrorCode code, const char* what) const noexcept;
  // The same for a failed shared check (CheckStatus.message).
  int32_t fail(const CheckStatus& status) const noexcept;
  // Whether nb_inputs is in [min_inputs, max_inputs] and nb_outputs is 1; reports and returns false otherwise.
  bool io_count_ok(int32_t nb_inputs, int32_t nb_outputs) const noexcept;
  // Checks the types and formats of one call's tensors (all kLINEAR, all of input 0's type, fp32 or fp16) and
  // gives input 0's element size and the kernels' dtype code.
  bool io_types_ok(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs, nvinfer1::PluginTensorDesc const* out,
                   int64_t* itemsize, int32_t* dtype) const noexcept;

  int32_t min_inputs_ = 1, max_inputs_ = 1;
  nvinfer1::IErrorRecorder* recorder_ = nullptr;  // the execution context's, once attached
  char metadata_[96] = {};                         // getMetadataString: the attributes, e.g. "num_heads=8 scale=0"

 private:
  const char* name_;
};

class TemporalAttentionPlugin final : public PluginBase {
 public:
  // num_heads and scale must have passed TemporalAttentionCreator's checks.
  TemporalAttentionPlugin(int64_t num_heads, float scale) noexcept;

  nvinfer1::IPluginV3* clone() noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs, nvinfer1::DimsExprs const* shape_inputs,
                          int32_t nb_shape_inputs, nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                          nvinfer1::IExprBuilder& expr_builder) noexcept override;
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nb_outputs) noexcept override;
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nb_outputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* input_desc, nvinfer1::PluginTensorDesc const* output_desc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  // The shared check on qkv's dims, plus out's dims when given; reports and returns false on failure.
  bool check(nvinfer1::Dims const& qkv, nvinfer1::Dims const* out, int64_t itemsize, AttentionSizes* sizes) const noexcept;

  int64_t num_heads_;
  float scale_;
  nvinfer1::PluginField fields_[2];
  nvinfer1::PluginFieldCollection collection_{};
};

class MultiScaleEmbeddingPlugin final : public PluginBase {
 public:
  // grid must have passed MultiScaleEmbeddingCreator's checks.
  explicit MultiScaleEmbeddingPlugin(int64_t grid) noexcept;

  nvinfer1::IPluginV3* clone() noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs, nvinfer1::DimsExprs const* shape_inputs,
                          int32_t nb_shape_inputs, nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                          nvinfer1::IExprBuilder& expr_builder) noexcept override;
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nb_outputs) noexcept override;
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nb_outputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* input_desc, nvinfer1::PluginTensorDesc const* output_desc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  // The shared check on the inputs' dims (5 or 6 of them), plus out's dims when given.
  bool check(nvinfer1::Dims const* const* in, int32_t nb_inputs, nvinfer1::Dims const* out, int64_t itemsize,
             EmbeddingSizes* sizes) const noexcept;

  int64_t grid_;
  int32_t nb_inputs_seen_ = 0;  // 5 or 6, from configurePlugin / onShapeChange (enqueue is not told)
  nvinfer1::PluginField fields_[1];
  nvinfer1::PluginFieldCollection collection_{};
};

// The creators. createPlugin reads the fields above (unknown names, wrong types or lengths, and values the shared
// checks refuse are reported and give nullptr), for TensorRTPhase::kBUILD (network definition, the ONNX parser) and
// kRUNTIME (deserialization, with the fields getFieldsToSerialize wrote) alike.
class CreatorBase : public nvinfer1::IPluginCreatorV3One {
 public:
  const char* getPluginVersion() const noexcept override;
  const char* getPluginNamespace() const noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &field_names_; }

 protected:
  nvinfer1::PluginFieldCollection field_names_{};
};

class TemporalAttentionCreator final : public CreatorBase {
 public:
  TemporalAttentionCreator() noexcept;
  const char* getPluginName() const noexcept override;
  nvinfer1::IPluginV3* createPlugin(const char* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;

  // The instance REGISTER_TENSORRT_PLUGIN made (nullptr before the library's static initialisation).
  static TemporalAttentionCreator* registered() noexcept;

 private:
  nvinfer1::PluginField names_[2];
};

class MultiScaleEmbeddingCreator final : public CreatorBase {
 public:
  MultiScaleEmbeddingCreator() noexcept;
  const char* getPluginName() const noexcept override;
  nvinfer1::IPluginV3* createPlugin(const char* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;

  static MultiScaleEmbeddingCreator* registered() noexcept;

 private:
  nvinfer1::PluginField names_[1];
};

}  // namespace tensorrt
}  // namespace edgefer
