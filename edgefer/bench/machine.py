"""The machine a benchmark ran on, as every table names it: CPU model, its vector ISA, cores, OS (torch-free).

A figure means little without the machine behind it (an AMD EPYC with AVX2 only and an Intel Xeon with AVX-512
VNNI differ by more than any change measured here), so every ``edgefer bench`` table starts with
:func:`describe`.
"""

from __future__ import annotations

import os
import platform

#: /proc/cpuinfo flag -> the name a reader knows, for the vector extensions that decide these kernels' speed.
ISA_FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512F", "avx512_vnni": "AVX-512 VNNI",
             "avx_vnni": "AVX-VNNI", "avx512_bf16": "AVX-512 BF16", "amx_tile": "AMX", "asimd": "NEON",
             "asimddp": "NEON dot product", "sve": "SVE"}


def _cpuinfo() -> tuple[str | None, set[str]]:
    """(model name, the flag set) from /proc/cpuinfo's first processor; (None, set()) where there is none."""
    name, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name is None:
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                if not line.strip() and name is not None and flags:
                    break
    except OSError:
        pass
    return name, flags


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags /proc/cpuinfo reports for the first processor (``flags`` on x86, ``Features`` on
    ARM), e.g. ``{"avx2", "avx512_vnni", ...}``; empty where the OS does not say."""
    return frozenset(_cpuinfo()[1])


def cpu_model() -> str:
    """The CPU's model name (``platform.processor()`` or the architecture where /proc/cpuinfo has none)."""
    name, _ = _cpuinfo()
    return name or platform.processor() or platform.machine()


def cpu_isa() -> str:
    """The vector extensions of :data:`ISA_FLAGS` this CPU reports, e.g. ``"AVX2, FMA, AVX-512F, AVX-512 VNNI"``;
    ``"ISA unknown"`` where the OS does not say."""
    _, flags = _cpuinfo()
    found = [label for flag, label in ISA_FLAGS.items() if flag in flags]
    return ", ".join(found) if found else "ISA unknown"


def cpus_available() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def describe() -> str:
    """One line: ``"AMD EPYC (AVX2, FMA, AVX-512F, AVX-512 VNNI), 2 CPUs available, Linux 6.18"``."""
    return f"{cpu_model()} ({cpu_isa()}), {cpus_available()} CPUs available, {platform.system()} {platform.release()}"
