// edgefer._C: Python bindings of edgefer's compiled kernels (csrc/include/edgefer/kernels.h, kernels_cuda.h).
//
// Every argument is checked before a kernel runs: types, dtypes, devices, zero-size axes and the output here,
// the ops' shape, stride and size rules by edgefer/checks.h (shared with the ONNX Runtime ops). A bad one raises
// TypeError (wrong type or dtype) or ValueError (anything else) naming the argument. Kernels run with the GIL
// released. Semantics: edgefer/ops/reference.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "edgefer/kernels.h"
#include "tensor_view.h"
#if defined(EDGEFER_WITH_CUDA)
#include "edgefer/kernels_cuda.h"
#endif

namespace py = pybind11;
using edgefer::Device;
using edgefer::DType;
using edgefer::TensorView;

namespace {

constexpr bool kCudaBuilt =
#if defined(EDGEFER_WITH_CUDA)
    true;
#else
    false;
#endif

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

// Python integer (anything with __index__, not bool) -> int64, TypeError naming the argument otherwise.
int64_t to_int(const py::object& o, const char* name) {
  if (PyBool_Check(o.ptr()) || !PyIndex_Check(o.ptr()))
    throw py::type_error(std::string(name) + " must be an int, got " +
                         py::str(py::type::handle_of(o).attr("__name__")).cast<std::string>());
  PyObject* idx = PyNumber_Index(o.ptr());
  if (!idx) throw py::error_already_set();
  const long long v = PyLong_AsLongLong(idx);
  Py_DECREF(idx);
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    value_error(std::string(name) + " is out of range");
  }
  return v;
}

std::optional<int64_t> to_opt_int(const py::object& o, const char* name) {
  if (o.is_none()) return std::nullopt;
  return to_int(o, name);
}

std::optional<double> to_opt_float(const py::object& o, const char* name) {
  if (o.is_none()) return std::nullopt;
  if (PyBool_Check(o.ptr()) || !(PyFloat_Check(o.ptr()) || PyIndex_Check(o.ptr())))
    throw py::type_error(std::string(name) + " must be a float or None, got " +
                         py::str(py::type::handle_of(o).attr("__name__")).cast<std::string>());
  const double v = PyFloat_AsDouble(o.ptr());
  if (v == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

size_t itemsize(DType d) { return d == DType::kFloat16 ? 2 : 4; }

// dtype and device of one input; `ref` (the first input) fixes both for the others.
void check_input(const TensorView& v, const char* name, const TensorView* ref) {
  if (v.device == Device::kOther)
    value_error(std::string(name) + " is on an unsupported device; edgefer._C takes CPU or CUDA memory");
  if (v.device == Device::kCUDA && !kCudaBuilt)
    value_error(std::string(name) + " is on " + v.device_str() +
                " but this edgefer._C was built without CUDA (rebuild with nvcc present, EDGEFER_CUDA=ON)");
  if (v.device == Device::kCPU && v.dtype != DType::kFloat32)
    throw py::type_error(std::string(name) + " must be float32 on the CPU, got " + v.dtype_name);
  if (v.device == Device::kCUDA && v.dtype == DType::kOther)
    throw py::type_error(std::string(name) + " must be float32 or float16, got " + v.dtype_name);
  if (ref != nullptr) {
    if (v.device != ref->device || v.device_id != ref->device_id)
      value_error(std::string(name) + " is on " + v.device_str() + " but the first input is on " + ref->device_str());
    if (v.dtype != ref->dtype)
      throw py::type_error(std::string(name) + " is " + v.dtype_name + " but the first input is " + ref->dtype_name);
  }
}

void check_no_zero(const TensorView& v, const char* name) {
  for (int64_t s : v.shape)
    if (s == 0) value_error(std::string(name) + " has a zero-size dimension, shape " + v.shape_str());
}

edgefer::TensorArg tensor_arg(const TensorView& v) { return {v.shape.data(), v.strides.data(), v.ndim()}; }

void require(const edgefer::CheckStatus& status) {
  if (!status.ok) value_error(status.message);
}

void check_contiguous(const TensorView& v, const char* name) {
  if (!v.contiguous()) value_error(std::string(name) + " must be C-contiguous (call .contiguous() / np.ascontiguousarray)");
}

bool overlaps(const TensorView& a, const TensorView& b) {
  const size_t is = itemsize(a.dtype);
  auto ra = a.byte_range(is), rb = b.byte_range(is);
  return ra.first < rb.second && rb.first < ra.second;
}

int64_t current_stream(const TensorView& v, std::optional<int64_t> stream) {
  if (v.device != Device::kCUDA) return -1;
  if (stream) return *stream;
  if (v.is_torch) {
    auto torch = py::module_::import("torch");
    return torch.attr("cuda").attr("current_stream")(v.device_id).attr("cuda_stream").cast<int64_t>();
  }
  return 0;  // the legacy default stream
}

// The output: `out` checked, or a new contiguous array/tensor like `like` (torch -> torch, else numpy on the CPU).
TensorView make_output(const py::object& out, const TensorView& like, const std::vector<int64_t>& shape,
                       const std::vector<const TensorView*>& inputs, const std::vector<const char*>& input_names,
                       int64_t stream) {
  if (!out.is_none()) {
    TensorView o = edgefer::view_tensor(out, "out", stream);
    if (o.device != like.device || o.device_id != like.device_id)
      value_error("out is on " + o.device_str() + " but the inputs are on " + like.device_str());
    if (o.dtype != like.dtype)
      throw py::type_error("out is " + o.dtype_name + " but the inputs are " + like.dtype_name);
    if (o.shape != shape) {
      TensorView want;
      want.shape = shape;
      value_error("out must have shape " + want.shape_str() + ", got " + o.shape_str());
    }
    check_contiguous(o, "out");
    if (!o.writable) value_error("out is read-only");
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i] && overlaps(o, *inputs[i]))
        value_error(std::string("out overlaps ") + input_names[i] + " in memory; pass a separate output buffer");
    return o;
  }
  py::tuple shp(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) shp[i] = shape[i];
  if (like.is_torch) return edgefer::view_tensor(like.source.attr("new_empty")(shp), "out", stream);
  if (like.device != Device::kCPU)
    value_error("pass out= for CUDA arrays that are not torch tensors");
  return edgefer::view_tensor(py::array_t<float>(std::vector<py::ssize_t>(shape.begin(), shape.end())), "out");
}

[[noreturn]] void cuda_failed(int32_t code) {
#if defined(EDGEFER_WITH_CUDA)
  throw std::runtime_error(std::string("edgefer CUDA kernel failed: ") + edgefer::cuda::error_string(code));
#else
  (void)code;
  throw std::runtime_error("edgefer._C was built without CUDA");
#endif
}

// Runs a CPU kernel with the GIL released. Its std::bad_alloc (scratch it could not allocate; the kernel and the
// thread pool have cleaned up) becomes MemoryError naming the op.
template <typename Kernel>
void run_cpu(const char* op, Kernel&& kernel) {
  try {
    py::gil_scoped_release release;
    kernel();
  } catch (const std::bad_alloc&) {
    PyErr_SetString(PyExc_MemoryError, (std::string(op) + " could not allocate its scratch memory").c_str());
    throw py::error_already_set();
  }
}

py::object temporal_attention(const py::object& qkv_obj, const py::object& num_heads_obj,
                              const py::object& scale_obj, const py::object& out_obj, const py::object& stream_obj) {
  const int64_t num_heads = to_int(num_heads_obj, "num_heads");
  const std::optional<double> scale = to_opt_float(scale_obj, "scale");
  const std::optional<int64_t> stream_arg = to_opt_int(stream_obj, "stream");
  TensorView qkv = edgefer::view_tensor(qkv_obj, "qkv", stream_arg.value_or(-1));
  check_input(qkv, "qkv", nullptr);
  check_no_zero(qkv, "qkv");
  edgefer::AttentionSizes a;
  require(edgefer::check_temporal_attention(tensor_arg(qkv), num_heads, itemsize(qkv.dtype), &a));
  const int64_t B = a.B, T = a.T, N = a.N, Dh = a.Dh;
  const float s = scale ? static_cast<float>(*scale) : static_cast<float>(1.0 / std::sqrt(static_cast<double>(Dh)));
  const int64_t stream = current_stream(qkv, stream_arg);
  TensorView out = make_output(out_obj, qkv, {B, T, N, a.D}, {&qkv}, {"qkv"}, stream);
  if (qkv.device == Device::kCPU) {
    run_cpu("temporal_attention", [&] {
      edgefer::temporal_attention_cpu(static_cast<const float*>(qkv.data), B, T, N, num_heads, Dh, qkv.strides[0],
                                      qkv.strides[1], qkv.strides[2], s, static_cast<float*>(out.data));
    });
  } else {
#if defined(EDGEFER_WITH_CUDA)
    int32_t rc;
    {
      py::gil_scoped_release release;
      rc = edgefer::cuda::temporal_attention_cuda(
          qkv.data, qkv.dtype == DType::kFloat16 ? edgefer::cuda::kFloat16 : edgefer::cuda::kFloat32, B, T, N,
          num_heads, Dh, qkv.strides[0], qkv.strides[1], qkv.strides[2], s, out.data,
          reinterpret_cast<void*>(static_cast<intptr_t>(stream)));
    }
    if (rc != edgefer::cuda::kOk) cuda_failed(rc);
#endif
  }
  return out.source;
}

py::object multiscale_embedding(const py::object& feat_obj, const py::object& weight_obj, const py::object& bias_obj,
                                const py::object& pos_t_obj, const py::object& pos_s_obj,
                                const py::object& residual_obj, const py::object& grid_obj,
                                const py::object& out_obj, const py::object& stream_obj) {
  const int64_t grid = to_int(grid_obj, "grid");
  const std::optional<int64_t> stream_arg = to_opt_int(stream_obj, "stream");
  const int64_t st = stream_arg.value_or(-1);
  TensorView feat = edgefer::view_tensor(feat_obj, "feat", st);
  check_input(feat, "feat", nullptr);
  TensorView weight = edgefer::view_tensor(weight_obj, "weight", st);
  check_input(weight, "weight", &feat);
  TensorView bias = edgefer::view_tensor(bias_obj, "bias", st);
  check_input(bias, "bias", &feat);
  TensorView pos_t = edgefer::view_tensor(pos_t_obj, "pos_t", st);
  check_input(pos_t, "pos_t", &feat);
  TensorView pos_s = edgefer::view_tensor(pos_s_obj, "pos_s", st);
  check_input(pos_s, "pos_s", &feat);
  std::optional<TensorView> residual;
  if (!residual_obj.is_none()) {
    residual = edgefer::view_tensor(residual_obj, "residual", st);
    check_input(*residual, "residual", &feat);
  }
  check_no_zero(feat, "feat");
  check_no_zero(weight, "weight");
  const edgefer::TensorArg res_arg = residual ? tensor_arg(*residual) : edgefer::TensorArg{};
  edgefer::EmbeddingSizes a;
  require(edgefer::check_multiscale_embedding(tensor_arg(feat), tensor_arg(weight), tensor_arg(bias),
                                              tensor_arg(pos_t), tensor_arg(pos_s), residual ? &res_arg : nullptr,
                                              grid, itemsize(feat.dtype), &a));
  const int64_t B = a.B, T = a.T, C = a.C, Hin = a.H, Win = a.W, D = a.D, P = a.P, NN = grid * grid;
  const int64_t stream = current_stream(feat, stream_arg);
  TensorView out = make_output(out_obj, feat, {B, T, NN, D},
                               {&feat, &weight, &bias, &pos_t, &pos_s, residual ? &*residual : nullptr},
                               {"feat", "weight", "bias", "pos_t", "pos_s", "residual"}, stream);
  const int64_t fs[4] = {feat.strides[0], feat.strides[1], feat.strides[2], feat.strides[3]};
  int64_t rs[4] = {0, 0, 0, 0};
  if (residual)
    for (int i = 0; i < 4; ++i) rs[i] = residual->strides[i];
  const void* res_ptr = residual ? residual->data : nullptr;
  if (feat.device == Device::kCPU) {
    run_cpu("multiscale_embedding", [&] {
      edgefer::multiscale_embedding_cpu_strided(
          static_cast<const float*>(feat.data), fs, static_cast<const float*>(weight.data),
          static_cast<const float*>(bias.data), static_cast<const float*>(pos_t.data),
          static_cast<const float*>(pos_s.data), static_cast<const float*>(res_ptr), rs, B, T, C, Hin, Win, D, P,
          grid, static_cast<float*>(out.data));
    });
  } else {
#if defined(EDGEFER_WITH_CUDA)
    int32_t rc;
    {
      py::gil_scoped_release release;
      rc = edgefer::cuda::multiscale_embedding_cuda(
          feat.data, fs, weight.data, bias.data, pos_t.data, pos_s.data, res_ptr, residual ? rs : nullptr,
          feat.dtype == DType::kFloat16 ? edgefer::cuda::kFloat16 : edgefer::cuda::kFloat32, B, T, C, Hin, Win, D, P,
          grid, out.data, reinterpret_cast<void*>(static_cast<intptr_t>(stream)));
    }
    if (rc != edgefer::cuda::kOk) cuda_failed(rc);
#endif
  }
  return out.source;
}

// The _check_* hooks: a tensor as a (shape, strides or None) pair of int sequences.
struct TensorSpec {
  std::vector<int64_t> shape, strides;
  bool strided = false;
  edgefer::TensorArg arg() const {
    return {shape.data(), strided ? strides.data() : nullptr, static_cast<int64_t>(shape.size())};
  }
};

std::vector<int64_t> to_ints(const py::handle& seq, const std::string& name) {
  if (!py::isinstance<py::sequence>(seq) || py::isinstance<py::str>(seq))
    throw py::type_error(name + " must be a sequence of ints");
  std::vector<int64_t> v;
  for (const auto& item : py::reinterpret_borrow<py::sequence>(seq))
    v.push_back(to_int(py::reinterpret_borrow<py::object>(item), name.c_str()));
  return v;
}

TensorSpec to_spec(const py::object& o, const std::string& name) {
  if (!py::isinstance<py::tuple>(o) || py::len(o) != 2)
    throw py::type_error(name + " must be a (shape, strides or None) tuple");
  const auto pair = py::reinterpret_borrow<py::tuple>(o);
  TensorSpec t;
  t.shape = to_ints(pair[0], name + "'s shape");
  if (!pair[1].is_none()) {
    t.strides = to_ints(pair[1], name + "'s strides");
    t.strided = true;
    if (t.strides.size() != t.shape.size()) value_error(name + "'s strides and shape differ in length");
  }
  return t;
}

int64_t to_itemsize(const py::object& o) {
  const int64_t n = to_int(o, "itemsize");
  if (n != 2 && n != 4) value_error("itemsize must be 2 or 4, got " + std::to_string(n));
  return n;
}

py::object message_or_none(const edgefer::CheckStatus& status) {
  return status.ok ? py::object(py::none()) : py::object(py::str(status.message));
}

py::object check_attention_hook(const py::object& qkv, const py::object& num_heads, const py::object& itemsize) {
  const TensorSpec q = to_spec(qkv, "qkv");
  edgefer::AttentionSizes sizes;
  return message_or_none(
      edgefer::check_temporal_attention(q.arg(), to_int(num_heads, "num_heads"), to_itemsize(itemsize), &sizes));
}

py::object check_embedding_hook(const py::object& feat, const py::object& weight, const py::object& bias,
                                const py::object& pos_t, const py::object& pos_s, const py::object& residual,
                                const py::object& grid, const py::object& itemsize) {
  const TensorSpec f = to_spec(feat, "feat"), w = to_spec(weight, "weight"), b = to_spec(bias, "bias"),
                   pt = to_spec(pos_t, "pos_t"), ps = to_spec(pos_s, "pos_s");
  std::optional<TensorSpec> r;
  if (!residual.is_none()) r = to_spec(residual, "residual");
  const edgefer::TensorArg r_arg = r ? r->arg() : edgefer::TensorArg{};
  edgefer::EmbeddingSizes sizes;
  return message_or_none(edgefer::check_multiscale_embedding(f.arg(), w.arg(), b.arg(), pt.arg(), ps.arg(),
                                                             r ? &r_arg : nullptr, to_int(grid, "grid"),
                                                             to_itemsize(itemsize), &sizes));
}

py::list split_isas(const char* s) {
  py::list l;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!cur.empty()) l.append(cur);
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur += *p;
    }
  }
  return l;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() =
      "edgefer's compiled kernels: fused temporal attention and multi-scale embedding on the CPU (C++, AVX2 / "
      "AVX-512 picked at run time) and, when built with CUDA, on NVIDIA GPUs. Semantics: edgefer.ops.reference. "
      "Use edgefer.ops.cpp for the torch.library ops (autograd, torch.export); these functions take numpy arrays "
      "or DLPack tensors (torch) without copying them.";

  m.def("temporal_attention", &temporal_attention, py::arg("qkv"), py::arg("num_heads"),
        py::arg("scale") = py::none(), py::arg("out") = py::none(), py::arg("stream") = py::none(),
        R"doc(Fused multi-head self-attention along the time axis (edgefer.ops.reference.temporal_attention).

Args:
    qkv: (B, T, N, 3*D) float32 (CPU) or float32/float16 (CUDA) array or tensor, the QKV projection's output;
        any strides with stride 1 on the last axis. Read in place.
    num_heads: H, with 3*H dividing the last axis; head dim Dh = D / H.
    scale: softmax temperature; 1/sqrt(Dh) when None.
    out: optional (B, T, N, D) C-contiguous output of qkv's dtype and device, not overlapping qkv.
    stream: CUDA stream (cudaStream_t as int) for CUDA inputs; torch's current stream when None.

Returns:
    out, or a new (B, T, N, D) array (numpy for numpy input, torch.Tensor for torch input).

Raises:
    TypeError: qkv/out is not an array or DLPack tensor, has the wrong dtype, or requires grad.
    ValueError: wrong rank, zero-size axis, num_heads < 1 or so large that 3*num_heads overflows int64, last
        axis not a multiple of 3*num_heads or not of stride 1, sizes the kernels cannot address in int64
        (output bytes, strided extent, T*T scratch), bad out, or a device this build cannot run on.
    MemoryError: the output or the kernel's scratch cannot be allocated (the call leaves nothing behind).)doc");

  m.def("multiscale_embedding", &multiscale_embedding, py::arg("feat"), py::arg("weight"), py::arg("bias"),
        py::arg("pos_t"), py::arg("pos_s"), py::arg("residual") = py::none(), py::arg("grid") = 4,
        py::arg("out") = py::none(), py::arg("stream") = py::none(),
        R"doc(MSSTNet's multi-scale embedding for one scale (edgefer.ops.reference.multiscale_embedding).

pad right/bottom to grid*P + patchify into grid x grid P x P patches + project (Conv2d(C, D, P, stride=P)) + bias
+ pos_t + pos_s + residual, written as (B, T, grid*grid, D).

Args:
    feat: (B*T, C, H, W) float32 (CPU) or float32/float16 (CUDA), any strides.
    weight: (D, C, P, P), C-contiguous, with grid*P >= H, W and (grid-1)*P < H, W.
    bias: (D,), pos_t: (T, D) with T dividing B*T, pos_s: (grid*grid, D); all C-contiguous.
    residual: (B, T, grid*grid, D) with any strides, or None.
    grid: G, patches per side.
    out: optional (B, T, grid*grid, D) C-contiguous output, overlapping no input.
    stream: CUDA stream for CUDA inputs; torch's current stream when None.

Returns:
    out, or a new array/tensor like feat.

Raises:
    TypeError: an argument is not an array/DLPack tensor, or dtypes differ / are not float.
    ValueError: shapes, zero-size axes, contiguity, devices or out do not fit; grid < 1 or grid*grid
        overflows int64; sizes the kernels cannot address in int64 (output bytes, strided extents, scratch).
    MemoryError: the output or the kernel's scratch cannot be allocated (the call leaves nothing behind).)doc");

  m.def("cpu_features", [] {
    py::dict d;
    d["isa"] = std::string(edgefer::cpu_isa());
    d["supported"] = split_isas(edgefer::cpu_isas_supported());
    d["threads"] = edgefer::get_num_threads();
    return d;
  }, "{'isa': the instruction set the CPU kernels use, 'supported': those this CPU and build can use (best "
     "first), 'threads': the kernels' thread count}.");
  m.def("set_cpu_isa", [](const py::object& name_obj) {
    if (!py::isinstance<py::str>(name_obj)) throw py::type_error("name must be a str");
    const std::string name = name_obj.cast<std::string>();
    if (!edgefer::set_cpu_isa(name.c_str()))
      value_error("instruction set " + name + " is not available here; choose one of " +
                  std::string(edgefer::cpu_isas_supported()));
  }, py::arg("name"), "Forces the CPU kernels' instruction set ('avx512', 'avx2', 'generic'); ValueError if this "
                      "CPU or build lacks it. For tests and benchmarks.");
  m.def("cuda_built", [] { return kCudaBuilt; }, "Whether this edgefer._C was compiled with the CUDA kernels.");
  m.def("set_num_threads", [](const py::object& n_obj) {
    const int64_t n = to_int(n_obj, "n");
    if (n > 4096) value_error("n must be <= 4096, got " + std::to_string(n));
    if (n < 0) value_error("n must be >= 0 (0 = default), got " + std::to_string(n));
    py::gil_scoped_release release;
    try {
      return edgefer::set_num_threads(static_cast<int>(n));
    } catch (const std::system_error& e) {
      throw std::runtime_error("set_num_threads(" + std::to_string(n) + ") could not start the threads (" +
                               e.what() + "); the kernels keep " + std::to_string(edgefer::get_num_threads()));
    }
  }, py::arg("n"), "Sets the CPU kernels' thread count (their own pool, separate from torch's and ONNX Runtime's; "
                   "0 = the default: $EDGEFER_NUM_THREADS or the CPUs this process may use). Returns the count. "
                   "RuntimeError (or MemoryError) when the threads cannot be started: the count then stays as it "
                   "was, as get_num_threads() tells.");
  m.def("get_num_threads", [] { return edgefer::get_num_threads(); }, "The CPU kernels' thread count.");

  // Test hooks over the shared argument rules (edgefer/checks.h), no tensor needed: tests compare them with the
  // Python reference's and fuzz them near the int64 limits.
  m.def("_check_temporal_attention", &check_attention_hook, py::arg("qkv"), py::arg("num_heads"),
        py::arg("itemsize") = 4,
        "check_temporal_attention on qkv = (shape, strides or None): None when the arguments pass, else the "
        "ValueError message temporal_attention would raise.");
  m.def("_check_multiscale_embedding", &check_embedding_hook, py::arg("feat"), py::arg("weight"), py::arg("bias"),
        py::arg("pos_t"), py::arg("pos_s"), py::arg("residual") = py::none(), py::arg("grid") = 4,
        py::arg("itemsize") = 4,
        "check_multiscale_embedding on (shape, strides or None) pairs (residual None: absent): None when the "
        "arguments pass, else the ValueError message multiscale_embedding would raise.");
}
