// edgefer/checks.h: the ops' argument rules. Every product is computed with CheckedInt, so that a size which
// does not fit int64 is refused instead of wrapping around into one that passes.
#include "edgefer/checks.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "edgefer/checked_int.h"
#include "isa.h"

namespace edgefer {
namespace {

struct Dims {
  const int64_t* v;
  int64_t n;
};

Dims shape_of(const TensorArg& t) { return {t.shape, t.ndim}; }

// A failed CheckStatus, its message written piece by piece into the fixed buffer (truncated, never overrun).
class Failure {
 public:
  Failure() { status_.ok = false; }

  Failure& operator<<(const char* text) {
    const size_t room = sizeof(status_.message) - 1 - used_;
    const size_t n = std::min(std::strlen(text), room);
    std::memcpy(status_.message + used_, text, n);
    used_ += n;
    status_.message[used_] = '\0';
    return *this;
  }
  Failure& operator<<(int64_t v) {
    char digits[24];
    std::snprintf(digits, sizeof(digits), "%lld", static_cast<long long>(v));
    return *this << digits;
  }
  // "(2, 16, 16, 1536)", "(24,)"
  Failure& operator<<(const Dims& d) {
    *this << "(";
    for (int64_t i = 0; i < d.n; ++i) (i ? *this << ", " : *this) << d.v[i];
    return *this << (d.n == 1 ? ",)" : ")");
  }

  operator CheckStatus() const { return status_; }  // NOLINT(google-explicit-constructor): `return Failure() << ...`

 private:
  CheckStatus status_;
  size_t used_ = 0;
};

CheckStatus no_negative(const TensorArg& t, const char* name) {
  for (int64_t i = 0; i < t.ndim; ++i)
    if (t.shape[i] < 0) return Failure() << name << " has a negative dimension, shape " << shape_of(t);
  return {};
}

bool has_shape(const TensorArg& t, Dims want) {
  return t.ndim == want.n && std::equal(t.shape, t.shape + t.ndim, want.v);
}

// Bytes between the first and one past the last element the tensor can touch (0 when it holds none).
CheckedInt span_bytes(const TensorArg& t, int64_t itemsize) {
  for (int64_t i = 0; i < t.ndim; ++i)
    if (t.shape[i] == 0) return 0;
  CheckedInt elements = 1;
  if (t.strides == nullptr) {
    for (int64_t i = 0; i < t.ndim; ++i) elements = elements * t.shape[i];
  } else {
    for (int64_t i = 0; i < t.ndim; ++i) elements = elements + checked_abs(t.strides[i]) * (t.shape[i] - 1);
  }
  return elements * itemsize;
}

CheckStatus fits(const TensorArg& t, const char* name, int64_t itemsize) {
  if (span_bytes(t, itemsize).ok()) return {};
  Failure f;
  f << name << " is too large: shape " << shape_of(t);
  if (t.strides != nullptr) f << " with strides " << Dims{t.strides, t.ndim};
  return f << " spans more than 2^63 - 1 bytes";
}

CheckStatus output_fits(const char* layout, Dims shape, int64_t itemsize) {
  CheckedInt bytes = itemsize;
  for (int64_t i = 0; i < shape.n; ++i) bytes = bytes * shape.v[i];
  if (bytes.ok()) return {};
  return Failure() << "the output " << layout << " = " << shape << " is too large: more than 2^63 - 1 bytes";
}

// C-contiguous (size-1 axes may have any stride).
CheckStatus contiguous(const TensorArg& t, const char* name) {
  if (t.strides == nullptr) return {};
  CheckedInt expect = 1;
  for (int64_t i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] != 1 && (!expect.ok() || t.strides[i] != expect.value()))
      return Failure() << name << " must be C-contiguous";
    expect = expect * t.shape[i];
  }
  return {};
}

int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

}  // namespace

CheckStatus check_num_heads(int64_t num_heads) {
  if (num_heads < 1) return Failure() << "num_heads must be >= 1, got " << num_heads;
  if (!(CheckedInt(3) * num_heads).ok())
    return Failure() << "num_heads " << num_heads << " is too large: 3 * num_heads overflows int64";
  return {};
}

CheckStatus check_grid(int64_t grid) {
  if (grid < 1) return Failure() << "grid must be >= 1, got " << grid;
  if (!(CheckedInt(grid) * grid).ok())
    return Failure() << "grid " << grid << " is too large: grid * grid overflows int64";
  return {};
}

// Returns expr's status from the calling check when it failed.
#define EDGEFER_TRY(expr)               \
  do {                                  \
    const CheckStatus status_ = (expr); \
    if (!status_.ok) return status_;    \
  } while (0)

CheckStatus check_temporal_attention(const TensorArg& qkv, int64_t num_heads, int64_t itemsize,
                                     AttentionSizes* sizes) {
  if (qkv.ndim != 4) return Failure() << "qkv must be 4-D (B, T, N, 3*D), got shape " << shape_of(qkv);
  EDGEFER_TRY(no_negative(qkv, "qkv"));
  EDGEFER_TRY(check_num_heads(num_heads));
  const int64_t B = qkv.shape[0], T = qkv.shape[1], N = qkv.shape[2], D3 = qkv.shape[3];
  if (D3 % (3 * num_heads) != 0)
    return Failure() << "qkv's last axis (" << D3 << ") is not a multiple of 3 * num_heads (" << 3 * num_heads
                     << ")";
  EDGEFER_TRY(fits(qkv, "qkv", itemsize));
  if (qkv.strides != nullptr && D3 > 1 && qkv.strides[3] != 1)
    return Failure() << "qkv's last axis must have stride 1 (other axes may have any stride), got stride "
                     << qkv.strides[3];
  const int64_t D = D3 / 3, Dh = D / num_heads;
  const int64_t out[4] = {B, T, N, D};
  EDGEFER_TRY(output_fits("(B, T, N, D)", {out, 4}, itemsize));
  if (cpu::attention_scratch_floats(T, Dh) < 0)
    return Failure() << "qkv's time axis (" << T << ") is too long: the attention's scratch of about T * T floats "
                     << "overflows int64";
  *sizes = {B, T, N, num_heads, Dh, D};
  return {};
}

CheckStatus check_multiscale_embedding(const TensorArg& feat, const TensorArg& weight, const TensorArg& bias,
                                       const TensorArg& pos_t, const TensorArg& pos_s, const TensorArg* residual,
                                       int64_t grid, int64_t itemsize, EmbeddingSizes* sizes) {
  const TensorArg* tensors[] = {&feat, &weight, &bias, &pos_t, &pos_s, residual};
  const char* names[] = {"feat", "weight", "bias", "pos_t", "pos_s", "residual"};
  if (feat.ndim != 4) return Failure() << "feat must be 4-D (B*T, C, H, W), got shape " << shape_of(feat);
  for (int i = 0; i < 6; ++i)
    if (tensors[i] != nullptr) EDGEFER_TRY(no_negative(*tensors[i], names[i]));
  const int64_t BT = feat.shape[0], C = feat.shape[1], H = feat.shape[2], W = feat.shape[3];
  if (weight.ndim != 4 || weight.shape[1] != C || weight.shape[2] != weight.shape[3])
    return Failure() << "weight must be (D, " << C << ", P, P), got shape " << shape_of(weight);
  const int64_t D = weight.shape[0], P = weight.shape[3];
  EDGEFER_TRY(check_grid(grid));
  // The reference's grid * P >= max(H, W) and (grid - 1) * P < min(H, W), as divisions that cannot overflow.
  if (!(P >= 1 && grid >= ceil_div(std::max(H, W), P) && grid <= ceil_div(std::min(H, W), P)))
    return Failure() << "patch size " << P << " does not cut a " << H << "x" << W << " map into a " << grid << "x"
                     << grid << " grid";
  if (pos_t.ndim != 2 || pos_t.shape[1] != D || pos_t.shape[0] < 1 || BT % pos_t.shape[0] != 0)
    return Failure() << "pos_t must be (T, " << D << ") with T dividing " << BT << ", got shape "
                     << shape_of(pos_t);
  const int64_t T = pos_t.shape[0], B = BT / T, GG = grid * grid;
  const int64_t bias_shape[1] = {D}, pos_s_shape[2] = {GG, D}, out[4] = {B, T, GG, D};
  if (!has_shape(bias, {bias_shape, 1}))
    return Failure() << "bias must be " << Dims{bias_shape, 1} << ", got shape " << shape_of(bias);
  if (!has_shape(pos_s, {pos_s_shape, 2}))
    return Failure() << "pos_s must be " << Dims{pos_s_shape, 2} << ", got shape " << shape_of(pos_s);
  if (residual != nullptr && !has_shape(*residual, {out, 4}))
    return Failure() << "residual must be " << Dims{out, 4} << ", got shape " << shape_of(*residual);
  for (int i = 0; i < 6; ++i)
    if (tensors[i] != nullptr) EDGEFER_TRY(fits(*tensors[i], names[i], itemsize));
  EDGEFER_TRY(output_fits("(B, T, G*G, D)", {out, 4}, itemsize));
  for (int i = 1; i < 5; ++i) EDGEFER_TRY(contiguous(*tensors[i], names[i]));
  const CheckedInt K = CheckedInt(C) * P * P;
  if (!K.ok() || cpu::embedding_tile_floats(cpu::kMaxMr, K.value()) < 0 ||
      cpu::packed_weight_floats(cpu::kMaxNr, D, K.value()) < 0)
    return Failure() << "weight " << shape_of(weight) << " is too large: the embedding's scratch of about "
                     << "(D + " << int64_t(cpu::kMaxNr) << ") * C * P * P floats overflows int64";
  *sizes = {B, T, C, H, W, D, P, grid};
  return {};
}

}  // namespace edgefer
