"""GPU benchmark of edgefer's kernels and of MSSTNet end to end: ``edgefer bench kernels --device cuda``.

Prints, in one run (so that ratios compare like with like on one GPU):

1. Fused temporal attention, float16, on the MSSTNet shape (B=64, T=16, N=16, 8 heads x 64) and the STT shape
   (N=49): forward and forward+backward time (median ms, ``triton.testing.do_bench``: L2 flushed before each
   run) and achieved memory bandwidth for the Triton op, every PyTorch SDPA backend that accepts the shape
   (flash, efficient, math, cudnn, forced one at a time with ``torch.nn.attention.sdpa_kernel``) and the
   reference op. Every row computes the same contract, qkv (B, T, N, 3D) -> out (B, T, N, D): the SDPA rows
   include the permute copies into and out of SDPA's (B*N, H, T, d_h) layout; the ``(core)`` rows time SDPA
   alone on pre-permuted q, k, v, for reference.
2. The multi-scale embedding, float16, at MSSTNet's three scales (B=64): Triton vs reference.
3. MSSTNet end to end, kernels="triton" vs "reference": training step (autocast float16, AdamW, GradScaler)
   and inference (a float16 model under ``torch.inference_mode``) throughput in clips/s at B=256.

Bandwidth = nominal bytes moved / time, the bytes every implementation must move at least once:
attention forward = qkv read + out write; forward+backward adds qkv, out and grad-out reads and the
grad-qkv write (the log-sum-exp, 1/64 of out, is left out). Embedding forward = feat + weight + residual reads
+ out write; forward+backward adds grad-out, feat and weight reads and grad-feat, grad-weight writes. The
``%peak`` column divides by the DRAM bandwidth from the device's memory clock and bus width.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import time
from typing import Callable, TextIO

import torch
import torch.nn.functional as F

from edgefer.errors import BackendUnavailableError
from edgefer.ops import reference

#: (label, B, T, N, heads, head dim) of the attention shapes benchmarked.
ATTENTION_SHAPES = (("MSSTNet", 64, 16, 16, 8, 64), ("STT", 64, 16, 49, 8, 64))
#: (scale, C, side, P) of MSSTNet's embedding at 112 x 112 input, D = 512, G = 4.
EMBEDDING_SCALES = (("C3", 128, 14, 4), ("C4", 256, 7, 2), ("C5", 512, 4, 1))


@dataclasses.dataclass
class Row:
    """One line of the report: ``ms`` median milliseconds (None: rejected), ``gbps`` achieved GB/s."""

    section: str
    impl: str
    fwd_ms: float | None = None
    fwd_gbps: float | None = None
    fwdbwd_ms: float | None = None
    fwdbwd_gbps: float | None = None
    note: str = ""


def _require_cuda(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"the GPU benchmark runs on a CUDA device, got {device}")
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "no CUDA device: torch.cuda.is_available() is False (CPU-only torch build, no GPU, or no driver); "
            "the kernel benchmark needs an NVIDIA GPU")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise BackendUnavailableError(f"{device} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError("triton is not installed: pip install 'edgefer[triton]'") from exc
    return device


def peak_bandwidth_gbps(device: torch.device) -> float | None:
    """DRAM bandwidth in GB/s from the device's memory clock (kHz, double data rate) and bus width, or None."""
    props = torch.cuda.get_device_properties(device)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9


# ---- attention -----------------------------------------------------------------------------------------


def sdpa_layout(qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v of a (B, T, N, 3D) qkv as contiguous (B*N, H, T, d_h) tensors, SDPA's layout (copies)."""
    B, T, N, D3 = qkv.shape
    d_h = D3 // 3 // num_heads
    parts = qkv.unflatten(-1, (3, num_heads, d_h)).unbind(3)  # each (B, T, N, H, d_h)
    return tuple(p.permute(0, 2, 3, 1, 4).reshape(B * N, num_heads, T, d_h) for p in parts)


def sdpa_op(backend) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The temporal attention contract (qkv (B,T,N,3D) -> (B,T,N,D)) on SDPA forced to ``backend``."""
    from torch.nn.attention import sdpa_kernel

    def op(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
        B, T, N, D3 = qkv.shape
        q, k, v = sdpa_layout(qkv, num_heads)
        with sdpa_kernel([backend]):
            out = F.scaled_dot_product_attention(q, k, v)
        return out.view(B, N, num_heads, T, -1).permute(0, 3, 1, 2, 4).reshape(B, T, N, D3 // 3)

    return op


def sdpa_backends() -> dict[str, object]:
    """name -> torch.nn.attention.SDPBackend, for the backends this torch has."""
    from torch.nn.attention import SDPBackend

    names = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "math": "MATH",
             "cudnn": "CUDNN_ATTENTION"}
    return {name: getattr(SDPBackend, member) for name, member in names.items() if hasattr(SDPBackend, member)}


def attention_implementations() -> dict[str, Callable[[torch.Tensor, int], torch.Tensor]]:
    """name -> op(qkv, num_heads) computing the temporal attention contract, for every implementation."""
    from edgefer.ops import triton as triton_ops

    impls = {"triton": triton_ops.temporal_attention}
    impls.update({f"sdpa-{name}": sdpa_op(backend) for name, backend in sdpa_backends().items()})
    impls["reference"] = reference.temporal_attention
    return impls


def attention_bytes(B: int, T: int, N: int, D: int, element_size: int) -> tuple[int, int]:
    """Nominal (forward, forward+backward) bytes of temporal attention, as in the module docs."""
    tokens = B * T * N
    fwd = tokens * (3 * D + D) * element_size
    bwd = tokens * (3 * D + D + D + 3 * D) * element_size  # qkv, out, grad-out read; grad-qkv written
    return fwd, fwd + bwd


# ---- timing ----------------------------------------------------------------------------------------------


def _bench_ms(fn: Callable[[], object], grad_to_none=None, rep: int = 100) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=rep, grad_to_none=grad_to_none, return_mode="median"))


def _gbps(nbytes: int, ms: float | None) -> float | None:
    return None if ms is None else nbytes / (ms * 1e-3) / 1e9


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:90]


def _bench_op(section: str, name: str, fwd: Callable[[], torch.Tensor], leaves: list[torch.Tensor],
              fwd_bytes: int, fwdbwd_bytes: int) -> Row:
    """Time ``fwd`` and ``fwd().backward(g)``; a RuntimeError on the first call marks the shape rejected."""
    try:
        with torch.no_grad():
            fwd()
        torch.cuda.synchronize()
    except RuntimeError as exc:  # SDPA: "No available kernel", a backend's shape or dtype limits
        return Row(section, name, note="rejects: " + _first_line(exc))
    with torch.no_grad():
        fwd_ms = _bench_ms(fwd)
    out = fwd()
    grad = torch.randn_like(out)
    del out
    try:
        fwdbwd_ms = _bench_ms(lambda: fwd().backward(grad), grad_to_none=leaves)
    except RuntimeError as exc:
        return Row(section, name, fwd_ms, _gbps(fwd_bytes, fwd_ms), note="backward: " + _first_line(exc))
    return Row(section, name, fwd_ms, _gbps(fwd_bytes, fwd_ms), fwdbwd_ms, _gbps(fwdbwd_bytes, fwdbwd_ms))


def bench_attention(device: torch.device, dtype: torch.dtype = torch.float16) -> list[Row]:
    """Rows for every attention implementation on each of :data:`ATTENTION_SHAPES`."""
    rows = []
    for label, B, T, N, H, d_h in ATTENTION_SHAPES:
        D = H * d_h
        section = f"temporal attention, {label} (B={B} T={T} N={N} {H}x{d_h}, {str(dtype).split('.')[-1]})"
        fwd_bytes, fwdbwd_bytes = attention_bytes(B, T, N, D, torch.finfo(dtype).bits // 8)
        qkv = torch.randn(B, T, N, 3 * D, device=device, dtype=dtype).requires_grad_()
        for name, op in attention_implementations().items():
            rows.append(_bench_op(section, name, lambda op=op: op(qkv, H), [qkv], fwd_bytes, fwdbwd_bytes))
        for name, backend in sdpa_backends().items():  # SDPA alone, inputs already in its layout
            from torch.nn.attention import sdpa_kernel

            q, k, v = (x.detach().requires_grad_() for x in sdpa_layout(qkv.detach(), H))

            def core(backend=backend, q=q, k=k, v=v):
                with sdpa_kernel([backend]):
                    return F.scaled_dot_product_attention(q, k, v)

            rows.append(_bench_op(section, f"sdpa-{name} (core)", core, [q, k, v], fwd_bytes, fwdbwd_bytes))
        del qkv
        torch.cuda.empty_cache()
    return rows


# ---- embedding -----------------------------------------------------------------------------------------


def bench_embedding(device: torch.device, B: int = 64, T: int = 16, D: int = 512, grid: int = 4,
                    dtype: torch.dtype = torch.float16) -> list[Row]:
    """Rows for the Triton and reference multi-scale embedding at MSSTNet's scales (with a residual)."""
    from edgefer.ops import triton as triton_ops

    rows = []
    es = torch.finfo(dtype).bits // 8
    for scale, C, side, P in EMBEDDING_SCALES:
        section = f"multi-scale embedding, {scale} (B={B} T={T} C={C} {side}x{side} P={P} D={D}, fp16)"
        leaves = [torch.randn(B * T, C, side, side, device=device, dtype=dtype),
                  torch.randn(D, C, P, P, device=device, dtype=dtype) / math.sqrt(C * P * P),
                  torch.randn(D, device=device, dtype=dtype), torch.randn(T, D, device=device, dtype=dtype),
                  torch.randn(grid * grid, D, device=device, dtype=dtype),
                  torch.randn(B, T, grid * grid, D, device=device, dtype=dtype)]
        leaves = [x.requires_grad_() for x in leaves]
        feat_b, w_b, out_b = leaves[0].numel() * es, leaves[1].numel() * es, leaves[5].numel() * es
        fwd_bytes = feat_b + w_b + 2 * out_b  # feat, weight, residual read; out written
        fwdbwd_bytes = fwd_bytes + out_b + feat_b + w_b + feat_b + w_b  # grad-out, feat, weight; grads written
        for name, op in (("triton", triton_ops.multiscale_embedding), ("reference", reference.multiscale_embedding)):
            rows.append(_bench_op(section, name, lambda op=op: op(*leaves, grid=grid), leaves, fwd_bytes,
                                  fwdbwd_bytes))
        del leaves
        torch.cuda.empty_cache()
    return rows


# ---- MSSTNet end to end ----------------------------------------------------------------------------------


def _time_cuda(step: Callable[[], object], warmup: int, iters: int) -> float:
    """Median seconds per call of ``step`` (CUDA events around each call)."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return sorted(times)[len(times) // 2]


def msstnet_throughput(kernels: str, device: torch.device, batch: int, train: bool,
                       warmup: int = 3, iters: int = 10) -> float:
    """MSSTNet clips/s (default config, 16 x 112 x 112 clips) with ``kernels``, training step or inference.

    Training: autocast float16, cross-entropy, AdamW, GradScaler. Inference: float16 weights and input,
    ``torch.inference_mode``, eval mode.
    """
    from edgefer.models import build_model

    torch.manual_seed(0)
    model = build_model("msstnet", kernels=kernels).to(device)
    cfg = model.config
    clip = torch.rand(batch, cfg.clip_length, 3, cfg.frame_size, cfg.frame_size, device=device)
    if train:
        model.train()
        labels = torch.randint(0, cfg.num_classes, (batch,), device=device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cuda")

        def step():
            with torch.autocast("cuda", dtype=torch.float16):
                loss = F.cross_entropy(model(clip), labels)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    else:
        model = model.half().eval()
        clip = clip.half()

        def step():
            with torch.inference_mode():
                model(clip)

    seconds = _time_cuda(step, warmup, iters)
    return batch / seconds


def bench_msstnet(device: torch.device, batch: int = 256) -> list[tuple[str, str, float | None, str]]:
    """(mode, kernels, clips/s or None, note) for training and inference with triton and reference kernels."""
    results = []
    for train in (True, False):
        for kernels in ("triton", "reference"):
            mode = "training step" if train else "inference"
            try:
                results.append((mode, kernels, msstnet_throughput(kernels, device, batch, train), ""))
            except torch.cuda.OutOfMemoryError:
                results.append((mode, kernels, None, f"out of memory at B={batch}"))
            torch.cuda.empty_cache()
    return results


# ---- report --------------------------------------------------------------------------------------------


def _fmt(x: float | None, spec: str) -> str:
    """``format(x, spec)``, or a dash padded to the spec's width when ``x`` is None."""
    if x is not None:
        return format(x, spec)
    width = re.match(r"\d*", spec).group()
    return "-".rjust(int(width)) if width else "-"


def format_rows(rows: list[Row], peak_gbps: float | None) -> str:
    """The kernel table: per section, one line per implementation, with speedups vs the best SDPA op row."""
    lines = []
    head = (f"{'impl':<22}{'fwd ms':>9}{'GB/s':>8}{'%peak':>7}{'fwd+bwd ms':>12}{'GB/s':>8}{'%peak':>7}"
            f"{'fwd x':>7}{'f+b x':>7}  note")
    for section in dict.fromkeys(r.section for r in rows):
        group = [r for r in rows if r.section == section]
        sdpa = [r for r in group if r.impl.startswith("sdpa-") and "(core)" not in r.impl]
        best_f = min((r.fwd_ms for r in sdpa if r.fwd_ms), default=None)
        best_fb = min((r.fwdbwd_ms for r in sdpa if r.fwdbwd_ms), default=None)
        if best_f is None:  # no SDPA here: ratios against the reference
            ref = next((r for r in group if r.impl == "reference"), None)
            best_f, best_fb = (ref.fwd_ms, ref.fwdbwd_ms) if ref else (None, None)
        lines += ["", section, head]
        for r in group:
            pct = lambda g: None if g is None or not peak_gbps else 100 * g / peak_gbps  # noqa: E731
            sf = best_f / r.fwd_ms if best_f and r.fwd_ms else None
            sfb = best_fb / r.fwdbwd_ms if best_fb and r.fwdbwd_ms else None
            lines.append(f"{r.impl:<22}{_fmt(r.fwd_ms, '9.4f')}{_fmt(r.fwd_gbps, '8.0f')}{_fmt(pct(r.fwd_gbps), '7.1f')}"
                         f"{_fmt(r.fwdbwd_ms, '12.4f')}{_fmt(r.fwdbwd_gbps, '8.0f')}{_fmt(pct(r.fwdbwd_gbps), '7.1f')}"
                         f"{_fmt(sf, '7.2f')}{_fmt(sfb, '7.2f')}  {r.note}")
    lines.append("x: speedup over the fastest SDPA op row of the section (the reference where there is no SDPA)")
    return "\n".join(lines)


def format_msstnet(results, batch: int) -> str:
    """The end-to-end table: clips/s per mode and kernels, and triton's ratio over the reference."""
    lines = ["", f"MSSTNet end to end (default config, B={batch}, float16)",
             f"{'mode':<15}{'kernels':<11}{'clips/s':>10}{'vs reference':>14}  note"]
    ref = {mode: cps for mode, kernels, cps, _ in results if kernels == "reference"}
    for mode, kernels, cps, note in results:
        ratio = cps / ref[mode] if cps and ref.get(mode) else None
        lines.append(f"{mode:<15}{kernels:<11}{_fmt(cps, '10.0f')}{_fmt(ratio, '14.2f')}  {note}")
    return "\n".join(lines)


def run(device: str | torch.device = "cuda", *, batch: int = 256, end_to_end: bool = True,
        out: TextIO | None = None) -> dict:
    """Benchmark the kernels (and MSSTNet end to end) on a CUDA device and print the tables.

    Args:
        device: a CUDA device ("cuda", "cuda:1").
        batch: clips per MSSTNet step for the end-to-end part (default 256).
        end_to_end: include the MSSTNet training / inference throughput (takes about a minute).
        out: where to print (default: stdout).

    Returns:
        {"device": name, "peak_gbps": float | None, "rows": [Row, ...], "msstnet": [(mode, kernels, clips/s,
        note), ...]} -- the numbers printed.

    Raises:
        ValueError: ``device`` is not a CUDA device.
        edgefer.errors.BackendUnavailableError: no CUDA device (or no triton) in this installation.
    """
    device = _require_cuda(device)
    out = out or sys.stdout
    torch.cuda.set_device(device)
    name = torch.cuda.get_device_name(device)
    peak = peak_bandwidth_gbps(device)
    print(f"edgefer kernel benchmark on {name} ({device}); DRAM peak {_fmt(peak, '.0f')} GB/s; "
          f"torch {torch.__version__}", file=out)
    started = time.perf_counter()
    rows = bench_attention(device) + bench_embedding(device)
    print(format_rows(rows, peak), file=out, flush=True)
    results = bench_msstnet(device, batch) if end_to_end else []
    if results:
        print(format_msstnet(results, batch), file=out)
    print(f"\n({time.perf_counter() - started:.0f} s)", file=out)
    return {"device": name, "peak_gbps": peak, "rows": rows, "msstnet": results}
