"""ONNX Runtime's per-node profile of one graph: where the time goes, and what an int8 graph left unfused.

:func:`profile_graph` runs a graph in a session with ``enable_profiling`` (ONNX Runtime's JSON trace, one
``"cat": "Node"`` event per kernel call) and ``optimized_model_filepath`` (the graph after ORT's fusions, at the
default ``ORT_ENABLE_ALL``), and reads both:

- time per op type (the kernels' ``dur``, in the runs after the first, per run);
- from the optimized graph: the ``DequantizeLinear`` / ``QuantizeLinear`` nodes ORT did not fuse into a QLinear
  kernel (and what each unfused DequantizeLinear feeds), the convolutions left in fp32 (``Conv``, ``FusedConv``,
  ``NchwcConv``) against the int8 ones (``QLinearConv``), and the ``Transpose`` nodes (ORT's NHWC layout for int8
  convolutions adds them at the layout's borders).

``edgefer bench model --profile`` prints it for the ONNX Runtime rows (:func:`format_profile`). Needs onnx and
onnxruntime.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

#: Op types of an fp32 convolution after ORT's fusions, and of an int8 one.
FP32_CONVS = ("Conv", "FusedConv", "NchwcConv")
INT8_CONVS = ("QLinearConv",)


@dataclass
class OpTime:
    """One op type's kernels: how many nodes, ms per run, share of the kernels' total."""

    op_type: str
    nodes: int
    ms: float
    share: float


@dataclass
class GraphProfile:
    """A graph's profile (:func:`profile_graph`).

    Attributes:
        name: the label given.
        kernel_ms: the kernels' time per run, ms (less than the wall time: no session overhead, no idle threads).
        ops: per op type, slowest first.
        unfused_dequantize: DequantizeLinear nodes left in the optimized graph.
        dequantize_feeds: op type -> how many unfused DequantizeLinear outputs it reads.
        unfused_quantize: QuantizeLinear nodes left.
        fp32_convs, int8_convs: convolutions in fp32 / int8 after ORT's fusions.
        transposes: Transpose nodes in the optimized graph.
    """

    name: str
    kernel_ms: float
    ops: list[OpTime] = field(default_factory=list)
    unfused_dequantize: int = 0
    dequantize_feeds: dict[str, int] = field(default_factory=dict)
    unfused_quantize: int = 0
    fp32_convs: int = 0
    int8_convs: int = 0
    transposes: int = 0


def profile_graph(path: str | Path, feed: Mapping[str, object], *, threads: int = 1, custom_ops: bool = False,
                  runs: int = 5, name: str = "") -> GraphProfile:
    """Profile ``runs`` calls of the graph at ``path`` on ``feed`` (after one warm-up call) on the CPU provider.

    Args:
        path: an ONNX file.
        feed: input name -> numpy array, as ``InferenceSession.run`` takes it.
        threads: intra-op threads (one inter-op thread).
        custom_ops: register edgefer's custom-op library (a graph with ``edgefer`` nodes).
        runs: profiled calls, >= 1.
        name: a label for the report.

    Returns:
        :class:`GraphProfile`.

    Raises:
        ValueError: ``runs`` < 1.
        whatever ``onnxruntime.InferenceSession`` raises for a graph it cannot load or run.
    """
    import onnx
    import onnxruntime as ort

    from ..runtime.onnx_backend import session_setup

    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    with tempfile.TemporaryDirectory(prefix="edgefer-profile-") as tmp:
        options, providers = session_setup(ort, "cpu", None, threads, True)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "trace")
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        if custom_ops:
            from .. import ortops

            ortops.register(options)
        session = ort.InferenceSession(str(path), options, providers=providers)
        for _ in range(runs + 1):
            session.run(None, dict(feed))
        events = json.loads(Path(session.end_profiling()).read_text())
        optimized = onnx.load(options.optimized_model_filepath, load_external_data=False).graph
    return _summarise(name or Path(path).name, events, optimized, runs)


def _summarise(name: str, events: list[dict], graph, runs: int) -> GraphProfile:
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    after_warm_up = starts[1] if len(starts) > 1 else 0
    per_op: dict[str, float] = defaultdict(float)
    count: Counter = Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= after_warm_up:
            op = e.get("args", {}).get("op_name", "?")
            per_op[op] += e["dur"] / 1e3 / runs
            count[op] += 1
    total = sum(per_op.values())
    ops = [OpTime(op, count[op] // runs, ms, ms / total if total else 0.0)
           for op, ms in sorted(per_op.items(), key=lambda item: -item[1])]
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in graph.node:
        for i in node.input:
            consumers[i].append(node.op_type)
    kinds = Counter(node.op_type for node in graph.node)
    feeds = Counter(c for node in graph.node if node.op_type == "DequantizeLinear" for c in consumers[node.output[0]])
    return GraphProfile(name, total, ops, kinds["DequantizeLinear"], dict(feeds.most_common()),
                        kinds["QuantizeLinear"], sum(kinds[k] for k in FP32_CONVS), sum(kinds[k] for k in INT8_CONVS),
                        kinds["Transpose"])


def format_profile(profile: GraphProfile, top: int = 8) -> str:
    """A few lines: the counts, then the ``top`` op types by time."""
    feeds = ", ".join(f"{op} {n}" for op, n in profile.dequantize_feeds.items()) or "none"
    lines = [f"{profile.name}: kernels {profile.kernel_ms:.1f} ms per run; convs int8 {profile.int8_convs}, fp32 "
             f"{profile.fp32_convs}; unfused DequantizeLinear {profile.unfused_dequantize} (feeding {feeds}), "
             f"QuantizeLinear {profile.unfused_quantize}; Transpose {profile.transposes}"]
    lines += [f"  {op.op_type:<24} {op.nodes:>4} nodes {op.ms:>8.2f} ms {op.share:>6.1%}" for op in profile.ops[:top]]
    return "\n".join(lines)
