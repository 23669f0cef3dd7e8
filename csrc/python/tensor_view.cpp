#include "tensor_view.h"

#include <pybind11/numpy.h>

#include <sstream>

#include "edgefer/checked_int.h"

namespace edgefer {
namespace {

// DLPack ABI (https://github.com/dmlc/dlpack, include/dlpack/dlpack.h, v0.8 unversioned capsule "dltensor").
struct DLDevice {
  int32_t device_type;  // 1 = CPU, 2 = CUDA, 3 = CUDA host
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; nullptr = C-contiguous
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

std::string dl_dtype_name(const DLDataType& t) {
  const char* kind = t.code == 0 ? "int" : t.code == 1 ? "uint" : t.code == 2 ? "float" : t.code == 4 ? "bfloat"
                                                                                                   : "dtype";
  std::ostringstream s;
  s << kind << int(t.bits);
  if (t.lanes != 1) s << "x" << t.lanes;
  return s.str();
}

void check_alignment(const TensorView& v, size_t itemsize, const char* name) {
  if (reinterpret_cast<uintptr_t>(v.data) % itemsize != 0)
    throw py::type_error(std::string(name) + " is not aligned to its element size; pass an aligned copy");
}

TensorView from_numpy(py::handle obj, const char* name) {
  auto arr = py::reinterpret_borrow<py::array>(obj);
  TensorView v;
  v.source = py::reinterpret_borrow<py::object>(obj);
  v.device = Device::kCPU;
  const py::dtype dt = arr.dtype();
  v.dtype_name = py::str(dt).cast<std::string>();
  const char kind = dt.kind();
  const size_t itemsize = static_cast<size_t>(dt.itemsize());
  const bool native = dt.attr("isnative").cast<bool>();
  if (kind == 'f' && itemsize == 4 && native) v.dtype = DType::kFloat32;
  else if (kind == 'f' && itemsize == 2 && native) v.dtype = DType::kFloat16;
  v.data = const_cast<void*>(arr.data());
  v.writable = arr.writeable();
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    v.shape.push_back(arr.shape(i));
    const py::ssize_t st = arr.strides(i);
    if (st % static_cast<py::ssize_t>(itemsize) != 0)
      throw py::value_error(std::string(name) + " has a stride of " + std::to_string(st) +
                            " bytes, not a whole number of elements");
    v.strides.push_back(st / static_cast<py::ssize_t>(itemsize));
  }
  if (v.dtype != DType::kOther) check_alignment(v, itemsize, name);
  return v;
}

TensorView from_dlpack(py::handle obj, const char* name, int64_t cuda_stream) {
  TensorView v;
  v.source = py::reinterpret_borrow<py::object>(obj);
  const py::handle torch_tensor_type = [] () -> py::handle {
    auto modules = py::module_::import("sys").attr("modules");
    if (!modules.contains("torch")) return py::handle();
    return modules["torch"].attr("Tensor");
  }();
  if (torch_tensor_type && py::isinstance(obj, torch_tensor_type)) {
    v.is_torch = true;
    if (obj.attr("requires_grad").cast<bool>())
      throw py::type_error(std::string(name) +
                           " requires grad; edgefer._C kernels are inference-only (use edgefer.ops.cpp, which "
                           "registers a backward, or pass .detach())");
  }
  // Ask for the producer's device first: CUDA producers take the consumer's stream.
  py::object capsule;
  bool on_cuda = false;
  if (py::hasattr(obj, "__dlpack_device__")) {
    auto dev = obj.attr("__dlpack_device__")().cast<std::pair<int, int>>();
    on_cuda = dev.first == 2;
  }
  try {
    if (on_cuda && cuda_stream >= 0)
      capsule = obj.attr("__dlpack__")(py::arg("stream") = cuda_stream);
    else
      capsule = obj.attr("__dlpack__")();
  } catch (py::error_already_set& e) {
    throw py::type_error(std::string(name) + " cannot be viewed through DLPack: " + e.what());
  }
  PyObject* cap = capsule.ptr();
  if (!PyCapsule_IsValid(cap, "dltensor"))
    throw py::type_error(std::string(name) + ".__dlpack__() did not return a 'dltensor' capsule");
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  PyCapsule_SetName(cap, "used_dltensor");  // we own it now: call its deleter when done
  v.guard = std::shared_ptr<void>(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  const DLTensor& t = managed->dl_tensor;
  v.device = t.device.device_type == 1 ? Device::kCPU : t.device.device_type == 2 ? Device::kCUDA : Device::kOther;
  v.device_id = t.device.device_id;
  v.dtype_name = dl_dtype_name(t.dtype);
  if (t.dtype.code == 2 && t.dtype.lanes == 1 && t.dtype.bits == 32) v.dtype = DType::kFloat32;
  if (t.dtype.code == 2 && t.dtype.lanes == 1 && t.dtype.bits == 16) v.dtype = DType::kFloat16;
  v.data = static_cast<char*>(t.data) + t.byte_offset;
  v.shape.assign(t.shape, t.shape + t.ndim);
  if (t.strides) {
    v.strides.assign(t.strides, t.strides + t.ndim);
  } else {
    v.strides.resize(t.ndim);
    CheckedInt s = 1;
    for (int32_t i = t.ndim - 1; i >= 0; --i) {
      if (!s.ok()) throw py::value_error(std::string(name) + " is too large: its element count overflows int64");
      v.strides[i] = s.value();
      s = s * t.shape[i];
    }
  }
  if (v.dtype != DType::kOther) check_alignment(v, t.dtype.bits / 8, name);
  return v;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

bool TensorView::contiguous() const {
  int64_t expect = 1;
  for (int64_t i = ndim() - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

std::string TensorView::shape_str() const {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) s << ",";
  s << ")";
  return s.str();
}

std::string TensorView::device_str() const {
  if (device == Device::kCPU) return "cpu";
  if (device == Device::kCUDA) return "cuda:" + std::to_string(device_id);
  return "an unsupported device";
}

std::pair<uintptr_t, uintptr_t> TensorView::byte_range(size_t itemsize) const {
  auto lo = reinterpret_cast<intptr_t>(data), hi = lo;
  if (numel() == 0) return {uintptr_t(lo), uintptr_t(lo)};
  for (size_t i = 0; i < shape.size(); ++i) {
    const intptr_t ext = static_cast<intptr_t>((shape[i] - 1) * strides[i]) * static_cast<intptr_t>(itemsize);
    if (ext < 0) lo += ext; else hi += ext;
  }
  return {uintptr_t(lo), uintptr_t(hi + static_cast<intptr_t>(itemsize))};
}

TensorView view_tensor(py::handle obj, const char* name, int64_t cuda_stream) {
  if (py::isinstance<py::array>(obj)) return from_numpy(obj, name);
  if (py::hasattr(obj, "__dlpack__")) return from_dlpack(obj, name, cuda_stream);
  throw py::type_error(std::string(name) + " must be a numpy array or a tensor supporting DLPack (e.g. torch.Tensor), "
                       "got " + py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
}

}  // namespace edgefer
