"""The ``device`` fixture the Triton test modules share (imported into each, so it stays module-scoped there).

Where torch sees a GPU the kernels compile and run on it. Elsewhere they run on CPU tensors in Triton's
interpreter: the fixture sets ``TRITON_INTERPRET=1`` for the importing module's tests only and restores it after
(edgefer.ops.triton redefines its kernels when that variable changes), with torch on one thread (tiny tensors).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def device():
    from edgefer.ops import triton as tk

    if torch.cuda.is_available() and not tk.interpret_mode():
        yield torch.device("cuda")
        return
    patch = pytest.MonkeyPatch()
    patch.setenv("TRITON_INTERPRET", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is many times faster on a shared, loaded CPU
    try:
        yield torch.device("cpu")
    finally:
        torch.set_num_threads(threads)
        patch.undo()
