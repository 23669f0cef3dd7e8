// How TensorRT finds edgefer's plugin creators in libedgefer_tensorrt_plugins.so. Two ways, both supported:
//
// 1. Static registration: REGISTER_TENSORRT_PLUGIN below registers both creators with getPluginRegistry() when the
//    library is loaded at all (dlopen, ctypes.CDLL, LD_PRELOAD as Triton Inference Server's TensorRT backend does,
//    or a program linking it). This is why the library needs libnvinfer's getPluginRegistry when it is loaded.
// 2. The plugin-library entry points that IPluginRegistry::loadLibrary (Python:
//    trt.get_plugin_registry().load_library; trtexec --dynamicPlugins) looks up after opening a library:
//      extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder*);
//      extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
//    (NVIDIA's TensorRT repository: samples/trtexec/README.md, plugin/vc/vfcCommon.cpp.) loadLibrary registers
//    what getCreators returns and refuses a library whose creators are already registered, which static
//    registration has just done when loadLibrary's own dlopen ran it; so getCreators first withdraws the static
//    registration of the very creators it returns, and loadLibrary then owns them (deregisterLibrary works).
//
// Nothing else is exported (hidden visibility).
#include <NvInferRuntime.h>

#include <cstdint>

#include "plugin_common.h"
#include "plugins.h"

using edgefer::tensorrt::MultiScaleEmbeddingCreator;
using edgefer::tensorrt::TemporalAttentionCreator;

REGISTER_TENSORRT_PLUGIN(TemporalAttentionCreator);
REGISTER_TENSORRT_PLUGIN(MultiScaleEmbeddingCreator);

#define EDGEFER_TRT_EXPORT extern "C" __attribute__((visibility("default")))

EDGEFER_TRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  edgefer::tensorrt::set_logger_finder(finder);
}

EDGEFER_TRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  // The registrars' instances when static initialisation made them (always, once the library is loaded); fallbacks
  // only for a loader that skipped it.
  static TemporalAttentionCreator fallback_attention;
  static MultiScaleEmbeddingCreator fallback_embedding;
  static nvinfer1::IPluginCreatorInterface* creators[2];
  TemporalAttentionCreator* attention = TemporalAttentionCreator::registered();
  MultiScaleEmbeddingCreator* embedding = MultiScaleEmbeddingCreator::registered();
  creators[0] = attention != nullptr ? attention : &fallback_attention;
  creators[1] = embedding != nullptr ? embedding : &fallback_embedding;
  if (nvinfer1::IPluginRegistry* registry = getPluginRegistry()) {
    for (nvinfer1::IPluginCreatorInterface* creator : creators) registry->deregisterCreator(*creator);
  }
  nbCreators = 2;
  return creators;
}
