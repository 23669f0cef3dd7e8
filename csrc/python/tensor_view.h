// Zero-copy views of the arrays passed to edgefer._C: numpy arrays (buffer protocol) and any object with
// __dlpack__ (torch tensors, CuPy, JAX, ...). Nothing is copied; the view keeps its source alive.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgefer {
namespace py = pybind11;

enum class DType { kFloat32, kFloat16, kOther };
enum class Device { kCPU, kCUDA, kOther };

struct TensorView {
  void* data = nullptr;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
  DType dtype = DType::kOther;
  std::string dtype_name;        // for messages, e.g. "float64"
  Device device = Device::kOther;
  int device_id = 0;
  bool writable = true;
  bool is_torch = false;         // a torch.Tensor (outputs are allocated as torch tensors)
  py::object source;             // the Python object the data belongs to
  std::shared_ptr<void> guard;   // releases a consumed DLPack capsule

  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const;
  bool contiguous() const;       // C-contiguous (size-1 axes may have any stride)
  std::string shape_str() const; // "(2, 16, 16, 1536)"
  std::string device_str() const;
  // [lowest, highest) byte addresses the view can touch
  std::pair<uintptr_t, uintptr_t> byte_range(size_t itemsize) const;
};

// Views `obj`, the argument called `name` in error messages. `cuda_stream` (a cudaStream_t as an integer, or -1
// for none) is passed to __dlpack__ so that the producer orders its work before the kernel's.
// Raises TypeError when obj is neither a numpy array nor a DLPack producer, when a float element is not 4-byte /
// 2-byte aligned, or when a torch tensor requires grad; ValueError when strides are not whole elements or a
// DLPack tensor without strides has more elements than int64 counts.
TensorView view_tensor(py::handle obj, const char* name, int64_t cuda_stream = -1);

}  // namespace edgefer
