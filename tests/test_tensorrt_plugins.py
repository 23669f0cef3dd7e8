"""edgefer's TensorRT plugins (csrc/tensorrt): they compile against both TensorRT header sets; numerics where
TensorRT runs.

- Compile (runs wherever nvcc and CMake exist): ``csrc/tensorrt`` is configured as its own CMake project against
  the public headers of TensorRT 10.3 (JetPack 6) and 11.1 in ``shared/vendor/tensorrt-headers`` (or
  ``$EDGEFER_TENSORRT_HEADERS``, a folder holding ``<version>/include``), for sm_75 only, and linked without
  libnvinfer (its symbols left unresolved, as CI does). The shared library must export exactly the entry points
  ``IPluginRegistry::loadLibrary`` looks up (``getCreators``, ``setLoggerFinder``) and reference
  ``getPluginRegistry`` (the static registration of REGISTER_TENSORRT_PLUGIN). Skipped, with the reason, where
  nvcc or the headers are missing; a compile error fails.
- TensorRT (skipped where ``import tensorrt`` fails, or no CUDA GPU is visible to torch): the installed library
  (``edgefer/libedgefer_tensorrt_plugins.so``, or ``$EDGEFER_TENSORRT_PLUGINS``) is loaded with
  ``trt.get_plugin_registry().load_library``, both creators are found under the names the ONNX parser looks up,
  and one-plugin networks built with ``add_plugin_v3`` (engines serialized and deserialized, so the attributes
  go through getFieldsToSerialize) match :mod:`edgefer.ops.reference` in fp32 (tight) and fp16 (loose).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from build_support import missing_build

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "csrc" / "tensorrt"
LIBRARY = "libedgefer_tensorrt_plugins.so"
HEADER_SETS = {"10.3.0": 10, "11.1": 11}  # folder -> NV_TENSORRT_MAJOR
#: One architecture keeps the compile short: sm_75 here; $EDGEFER_TENSORRT_CUDA_ARCH (e.g. "90-real") on a GPU box.
CUDA_ARCH = os.environ.get("EDGEFER_TENSORRT_CUDA_ARCH", "75-real")
#: The plugin-library entry points TensorRT's loadLibrary looks up (NVIDIA TensorRT samples/trtexec/README.md).
ENTRY_POINTS = {"getCreators", "setLoggerFinder"}
#: Names, version and namespace the ONNX parser looks up for edgefer's nodes (op type; plugin_version "1" and
#: plugin_namespace "" by default).
PLUGINS = {"TemporalAttention": {"num_heads", "scale"}, "MultiScaleEmbedding": {"grid"}}
VERSION, NAMESPACE = "1", ""


# ---- compiling against both header sets -----------------------------------------------------------------------

def _headers_root() -> Path:
    env = os.environ.get("EDGEFER_TENSORRT_HEADERS")
    if env:
        return Path(env)
    for folder in (REPO, *REPO.parents):
        candidate = folder / "shared" / "vendor" / "tensorrt-headers"
        if candidate.is_dir():
            return candidate
    pytest.skip("TensorRT headers not found (no shared/vendor/tensorrt-headers above the repository and no "
                "$EDGEFER_TENSORRT_HEADERS): the plugins cannot be compiled here")


def _nvcc() -> str:
    for candidate in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("nvcc not found (no CUDA toolkit on this machine): the TensorRT plugins need the CUDA kernels")


def _cmake() -> str:
    cmake = shutil.which("cmake")
    if cmake is None:
        missing_build("cmake not found: the TensorRT plugin library cannot be configured")
    return cmake


@pytest.fixture(scope="module", params=sorted(HEADER_SETS))
def built_plugins(request, tmp_path_factory):
    """(header folder name, path of the built library, CMake configure output) for one header set."""
    version = request.param
    include = _headers_root() / version / "include"
    if not (include / "NvInferRuntime.h").is_file():
        pytest.skip(f"TensorRT {version} headers missing under {include}")
    nvcc, cmake = _nvcc(), _cmake()
    build = tmp_path_factory.mktemp(f"trt-{version}")
    env = {**os.environ, "CUDACXX": nvcc}
    configure = subprocess.run(
        [cmake, "-S", str(PLUGIN_DIR), "-B", str(build), f"-DTensorRT_INCLUDE_DIR={include}",
         "-DTensorRT_LIBRARY=TensorRT_LIBRARY-NOTFOUND", f"-DCMAKE_CUDA_ARCHITECTURES={CUDA_ARCH}",
         "-DCMAKE_BUILD_TYPE=Release", "-DEDGEFER_TENSORRT_PLUGIN_HARNESS=ON"],
        capture_output=True, text=True, timeout=300, env=env)
    assert configure.returncode == 0, f"CMake configure failed for TensorRT {version}:\n{configure.stdout[-3000:]}" \
                                      f"\n{configure.stderr[-3000:]}"
    compile_ = subprocess.run([cmake, "--build", str(build), "-j2", "--target", "edgefer_tensorrt_plugins",
                               "edgefer_tensorrt_plugin_harness"],
                              capture_output=True, text=True, timeout=600, env=env)
    assert compile_.returncode == 0, f"the plugins do not compile against TensorRT {version}:\n" \
                                     f"{compile_.stdout[-6000:]}\n{compile_.stderr[-3000:]}"
    return version, build / LIBRARY, configure.stdout


@pytest.fixture(scope="module")
def harness(built_plugins):
    """The plugin test program (csrc/tensorrt/tests/plugin_harness.cpp) built with one header set."""
    version, library, _ = built_plugins
    program = library.parent / "edgefer_tensorrt_plugin_harness"
    assert program.is_file(), f"the plugin harness was not built for TensorRT {version}"
    return program


def _dynamic_symbols(library: Path, which: str) -> set[str]:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not found: cannot list the library's symbols")
    proc = subprocess.run([nm, "-D", which, str(library)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[-1].split("@")[0] for line in proc.stdout.splitlines() if line.strip()}


def test_plugins_compile_against_the_header_set(built_plugins):
    version, library, configure_log = built_plugins
    assert library.is_file() and library.stat().st_size > 0
    # the configure step read the version of the headers it was pointed at
    assert f"edgefer: TensorRT {HEADER_SETS[version]} plugins" in configure_log


def test_library_exports_the_loadlibrary_entry_points_only(built_plugins):
    _, library, _ = built_plugins
    defined = {s for s in _dynamic_symbols(library, "--defined-only") if not s.startswith("_")}
    assert defined == ENTRY_POINTS, f"exported: {sorted(defined)}"


def test_library_registers_statically_and_leaves_libnvinfer_unresolved(built_plugins):
    _, library, _ = built_plugins
    undefined = _dynamic_symbols(library, "--undefined-only")
    assert "getPluginRegistry" in undefined  # REGISTER_TENSORRT_PLUGIN's registrar and getCreators call it
    # the CUDA runtime is linked in statically and hidden: no cuda* symbol is expected from elsewhere
    assert not {s for s in undefined if s.startswith("cuda")}, sorted(undefined)


def test_plugin_objects_follow_the_rules_without_tensorrt(harness):
    """Fields, serialization round trip, formats and types, and the shared checks at configure, shape change and
    enqueue, driven through the IPluginV3 interfaces (no TensorRT, no GPU needed)."""
    proc = subprocess.run([str(harness)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok:" in proc.stdout, f"{proc.stdout}\n{proc.stderr[-3000:]}"
    # every refusal is reported as one line naming the plugin and the problem
    reports = [line for line in proc.stderr.splitlines() if line]
    assert reports and all(line.startswith("edgefer::") and " plugin: " in line for line in reports), reports
    assert any("not a multiple of 3 * num_heads" in line for line in reports)


def _gpu_visible() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    return proc.returncode == 0 and "GPU" in proc.stdout


def test_plugin_enqueue_matches_cpu_kernels_on_gpu(harness):
    """enqueue on CUDA device 0 (fp32 tight, fp16 loose) against edgefer's CPU kernels, both ops, with and
    without residual. Needs a GPU whose architecture the build covers ($EDGEFER_TENSORRT_CUDA_ARCH)."""
    if not _gpu_visible():
        pytest.skip("no CUDA GPU visible (nvidia-smi -L): the plugins' enqueue cannot run here")
    proc = subprocess.run([str(harness), "--gpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok:" in proc.stdout, f"{proc.stdout}\n{proc.stderr[-3000:]}"


def test_creator_fields_are_the_onnx_attributes():
    """The ONNX parser hands a node's attributes to the creator by field name: they must be export's names."""
    onnx_defs = pytest.importorskip("onnx.defs")  # noqa: F841  export.custom_ops builds OpSchemas with it
    custom_ops = pytest.importorskip("export.custom_ops")
    schemas = custom_ops._schemas()
    source = "\n".join(p.read_text() for p in PLUGIN_DIR.glob("*_plugin.cpp"))
    for op, fields in PLUGINS.items():
        assert set(schemas[op].attributes) == fields
        assert schemas[op].domain == custom_ops.CUSTOM_OPSET[0]
        for field in fields:
            assert re.search(rf'names_\[\d\] = nvinfer1::PluginField\("{field}"', source), (op, field)
    common = (PLUGIN_DIR / "plugin_common.h").read_text()
    assert f'kPluginVersion = "{VERSION}"' in common and f'kPluginNamespace = "{NAMESPACE}"' in common
    for op in PLUGINS:
        assert f'= "{op}";' in common


# ---- numerics through TensorRT --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trt_env():
    """(tensorrt module, torch, plugin registry) with edgefer's plugin library loaded through load_library."""
    trt = pytest.importorskip("tensorrt", reason="TensorRT's Python package is not installed here: the plugins "
                                                 "cannot be run")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch: the TensorRT plugin tests need one")
    library = Path(os.environ.get("EDGEFER_TENSORRT_PLUGINS", ""))
    if not library.name:
        import edgefer

        library = Path(edgefer.__file__).resolve().parent / LIBRARY
    if not library.is_file():
        missing_build(f"the TensorRT plugin library is not built ({library} missing; build edgefer where "
                      "TensorRT's headers are found, TensorRT_INCLUDE_DIR)")
    registry = trt.get_plugin_registry()
    handle = registry.load_library(str(library))
    assert handle is not None, f"load_library refused {library}"
    return trt, torch, registry


def _creator(trt_env, name):
    _, _, registry = trt_env
    creator = registry.get_creator(name, VERSION, NAMESPACE)
    assert creator is not None, f"{name} (version {VERSION}, namespace {NAMESPACE!r}) is not registered"
    assert creator.name == name and creator.plugin_version == VERSION
    return creator


def _fields(trt, **values):
    fields = []
    for name, value in values.items():
        if isinstance(value, int):
            fields.append(trt.PluginField(name, np.array([value], np.int32), trt.PluginFieldType.INT32))
        else:
            fields.append(trt.PluginField(name, np.array([value], np.float32), trt.PluginFieldType.FLOAT32))
    return trt.PluginFieldCollection(fields)


def _run_plugin(trt_env, creator, fields, inputs, dtype, profile=None, runs=None):
    """Builds a network of one plugin layer over `inputs` (name -> CPU tensor), serializes and deserializes the
    engine, runs it (once per entry of `runs`, name -> tensor, when given) and returns the outputs (CPU, float32)."""
    trt, torch, _ = trt_env
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    trt_dtype = trt.float16 if dtype == torch.float16 else trt.float32
    tensors = []
    for name, value in inputs.items():
        shape = list(value.shape)
        if profile is not None and name in profile:
            shape[0] = -1
        tensors.append(network.add_input(name, trt_dtype, shape))
    plugin = creator.create_plugin(creator.name, fields, trt.TensorRTPhase.BUILD)
    assert plugin is not None, "create_plugin refused valid fields"
    layer = network.add_plugin_v3(tensors, [], plugin)
    out = layer.get_output(0)
    out.name = "out"
    network.mark_output(out)
    config = builder.create_builder_config()
    if profile is not None:
        opt = builder.create_optimization_profile()
        for name, (lo, best, hi) in profile.items():
            shape = list(inputs[name].shape)
            opt.set_shape(name, [lo, *shape[1:]], [best, *shape[1:]], [hi, *shape[1:]])
        config.add_optimization_profile(opt)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "TensorRT could not build the engine"
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, "TensorRT could not deserialize the engine (plugin fields round trip)"
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()
    results = []
    for feed in runs or [inputs]:
        device = {name: value.to("cuda", dtype).contiguous() for name, value in feed.items()}
        for name, value in device.items():
            context.set_input_shape(name, tuple(value.shape))
            context.set_tensor_address(name, value.data_ptr())
        result = torch.empty(tuple(context.get_tensor_shape("out")), dtype=dtype, device="cuda")
        context.set_tensor_address("out", result.data_ptr())
        assert context.execute_async_v3(stream.cuda_stream), "execute_async_v3 failed"
        stream.synchronize()
        results.append(result.float().cpu())
    return results


def _tolerance(torch, dtype):
    return dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_temporal_attention_plugin_matches_reference(trt_env, precision):
    _, torch, _ = trt_env
    from edgefer.ops import reference

    dtype = torch.float32 if precision == "fp32" else torch.float16
    gen = torch.Generator().manual_seed(0)
    B, T, N, H, Dh = 2, 16, 16, 4, 32
    qkv = torch.randn(B, T, N, 3 * H * Dh, generator=gen)
    creator = _creator(trt_env, "TemporalAttention")
    for scale in (0.0, 0.3):  # 0: 1/sqrt(d_h)
        (got,) = _run_plugin(trt_env, creator, _fields(trt_env[0], num_heads=H, scale=scale), {"qkv": qkv}, dtype)
        want = reference.temporal_attention(qkv.to(dtype).float(), H, None if scale == 0.0 else scale)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, **_tolerance(torch, dtype))


def test_temporal_attention_plugin_follows_the_profile_batch(trt_env):
    _, torch, _ = trt_env
    from edgefer.ops import reference

    gen = torch.Generator().manual_seed(1)
    qkv = {B: torch.randn(B, 16, 4, 3 * 2 * 8, generator=gen) for B in (1, 3)}
    creator = _creator(trt_env, "TemporalAttention")
    got = _run_plugin(trt_env, creator, _fields(trt_env[0], num_heads=2), {"qkv": qkv[3]}, torch.float32,
                      profile={"qkv": (1, 2, 4)}, runs=[{"qkv": qkv[3]}, {"qkv": qkv[1]}])
    for result, B in zip(got, (3, 1)):
        torch.testing.assert_close(result, reference.temporal_attention(qkv[B], 2), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("with_residual", [False, True])
def test_multiscale_embedding_plugin_matches_reference(trt_env, precision, with_residual):
    _, torch, _ = trt_env
    from edgefer.ops import reference

    dtype = torch.float32 if precision == "fp32" else torch.float16
    gen = torch.Generator().manual_seed(2)
    B, T, C, H, W, D, G = 2, 4, 8, 7, 7, 32, 4
    P = -(-H // G)  # 2: 7 x 7 padded to 8 x 8
    inputs = {"feat": torch.randn(B * T, C, H, W, generator=gen),
              "weight": torch.randn(D, C, P, P, generator=gen) * 0.2,
              "bias": torch.randn(D, generator=gen),
              "pos_t": torch.randn(T, D, generator=gen),
              "pos_s": torch.randn(G * G, D, generator=gen)}
    if with_residual:
        inputs["residual"] = torch.randn(B, T, G * G, D, generator=gen)
    creator = _creator(trt_env, "MultiScaleEmbedding")
    (got,) = _run_plugin(trt_env, creator, _fields(trt_env[0], grid=G), inputs, dtype)
    want = reference.multiscale_embedding(*(v.to(dtype).float() for v in inputs.values()), grid=G)
    assert got.shape == (B, T, G * G, D)
    torch.testing.assert_close(got, want, **_tolerance(torch, dtype))


@pytest.mark.parametrize("name,fields", [
    ("TemporalAttention", {"num_heads": 0}),            # check_num_heads refuses it
    ("TemporalAttention", {"scale": 0.5}),              # num_heads is required
    ("TemporalAttention", {"num_heads": 2, "heads": 2}),  # unknown field
    ("MultiScaleEmbedding", {"grid": 0}),               # check_grid refuses it
])
def test_creators_refuse_bad_fields(trt_env, name, fields):
    trt = trt_env[0]
    creator = _creator(trt_env, name)
    assert creator.create_plugin(name, _fields(trt, **fields), trt.TensorRTPhase.BUILD) is None
