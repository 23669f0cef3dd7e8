"""Every benchmark table names its machine: the CPU model and the vector ISA it reports (edgefer.bench.machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefer.bench import machine


def _flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_describe_names_the_cpu_its_isa_and_cores():
    line = machine.describe()
    assert line.startswith(machine.cpu_model()) and f"({machine.cpu_isa()})" in line
    assert f"{machine.cpus_available()} CPUs available" in line


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="no /proc/cpuinfo on this OS")
def test_isa_lists_exactly_the_reported_vector_extensions():
    flags = _flags()
    expected = [label for flag, label in machine.ISA_FLAGS.items() if flag in flags]
    assert machine.cpu_isa() == (", ".join(expected) or "ISA unknown")
    if "avx2" in flags:
        assert "AVX2" in machine.cpu_isa().split(", ")
