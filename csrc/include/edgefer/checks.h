// The argument rules of edgefer's two ops, in one place. The pybind11 module (edgefer._C), the ONNX Runtime
// custom ops and any TensorRT plugin call these before a kernel runs, on the CPU and on CUDA alike; the kernels
// (kernels.h, kernels_cuda.h) assume arguments that passed them. edgefer/ops/reference.py states the same
// shape rules in Python.
//
// Beyond the reference's shape rules, the checks refuse whatever a kernel could not address in int64: element
// counts and byte extents (strides included) of every tensor and of the output, and the CPU kernels' scratch.
// So a call that passes them cannot read or write outside its tensors. They take plain int64s (no framework
// type), never throw or allocate, and cost O(rank) per call.
#pragma once
#include <cstdint>

namespace edgefer {

// The outcome of a check: ok, or a one-line message naming the argument and the problem, e.g.
// "qkv's last axis (10) is not a multiple of 3 * num_heads (6)". Bindings raise it as their invalid-argument
// error (ValueError in Python, ORT_INVALID_ARGUMENT in ONNX Runtime).
struct CheckStatus {
  bool ok = true;
  char message[384] = {};
};

// One tensor argument: ndim extents and strides in elements (any sign), or strides == nullptr for C-contiguous.
struct TensorArg {
  const int64_t* shape;
  const int64_t* strides;
  int64_t ndim;
};

// num_heads on its own (an ONNX attribute is checked when the session loads): 1 <= num_heads and 3 * num_heads
// fits in int64.
CheckStatus check_num_heads(int64_t num_heads);

// grid on its own: 1 <= grid and grid * grid fits in int64.
CheckStatus check_grid(int64_t grid);

// Sizes of a temporal-attention call: qkv (B, T, N, 3*D) -> out (B, T, N, D), D = H * Dh.
struct AttentionSizes {
  int64_t B, T, N, H, Dh, D;
};

// Fused temporal attention (kernels.h temporal_attention_cpu, kernels_cuda.h temporal_attention_cuda).
// qkv: 4-D (B, T, N, 3*D), itemsize bytes an element, any strides but 1 on the last axis.
// num_heads: as check_num_heads, with 3 * num_heads dividing the last axis. Zero-size axes are allowed (the call
// then writes nothing). On success fills *sizes.
CheckStatus check_temporal_attention(const TensorArg& qkv, int64_t num_heads, int64_t itemsize,
                                     AttentionSizes* sizes);

// Sizes of a multi-scale embedding call: feat (B*T, C, H, W) -> out (B, T, G*G, D), weight (D, C, P, P).
struct EmbeddingSizes {
  int64_t B, T, C, H, W, D, P, G;
};

// Multi-scale embedding (kernels.h multiscale_embedding_cpu[_strided], kernels_cuda.h multiscale_embedding_cuda).
// feat: 4-D (B*T, C, H, W), any strides. weight: (D, C, P, P) with grid * P >= H, W and (grid - 1) * P < H, W.
// bias: (D,). pos_t: (T, D) with T >= 1 dividing B*T. pos_s: (grid*grid, D). weight, bias, pos_t and pos_s
// C-contiguous. residual: (B, T, grid*grid, D) with any strides, or nullptr. grid: as check_grid. Every tensor
// itemsize bytes an element. On success fills *sizes.
CheckStatus check_multiscale_embedding(const TensorArg& feat, const TensorArg& weight, const TensorArg& bias,
                                       const TensorArg& pos_t, const TensorArg& pos_s, const TensorArg* residual,
                                       int64_t grid, int64_t itemsize, EmbeddingSizes* sizes);

}  // namespace edgefer
