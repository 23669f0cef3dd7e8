// Overflow-safe int64 arithmetic for the argument checks and the kernels' size computations (GCC/Clang
// __builtin_*_overflow; host code only, nvcc's host compiler included).
//
//   CheckedInt n = CheckedInt(B) * T * N * D;   // any step that overflows int64 poisons the result
//   if (!n.ok()) ...                             // n.value() is meaningful only when ok()
#pragma once
#include <cstdint>

namespace edgefer {

class CheckedInt {
 public:
  constexpr CheckedInt(int64_t v) : v_(v) {}  // NOLINT(google-explicit-constructor): reads as plain arithmetic

  bool ok() const { return ok_; }
  int64_t value() const { return v_; }

  friend CheckedInt operator*(CheckedInt a, CheckedInt b) {
    CheckedInt r(0);
    r.ok_ = a.ok_ && b.ok_ && !__builtin_mul_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend CheckedInt operator+(CheckedInt a, CheckedInt b) {
    CheckedInt r(0);
    r.ok_ = a.ok_ && b.ok_ && !__builtin_add_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend CheckedInt operator-(CheckedInt a, CheckedInt b) {
    CheckedInt r(0);
    r.ok_ = a.ok_ && b.ok_ && !__builtin_sub_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  // b > 0. Rounds toward zero, as C++ does.
  friend CheckedInt operator/(CheckedInt a, int64_t b) {
    CheckedInt r(a.ok_ ? a.v_ / b : 0);
    r.ok_ = a.ok_;
    return r;
  }

 private:
  int64_t v_;
  bool ok_ = true;
};

// |v| (fails for INT64_MIN).
inline CheckedInt checked_abs(int64_t v) { return v >= 0 ? CheckedInt(v) : CheckedInt(0) - v; }

// a rounded up to a multiple of m (m > 0, a >= 0).
inline CheckedInt round_up(CheckedInt a, int64_t m) { return (a + (m - 1)) / m * m; }

}  // namespace edgefer
