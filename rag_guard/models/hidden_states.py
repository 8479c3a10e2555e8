"""Read the residual stream of chosen layers at a prompt's last token, from llama.cpp's own forward pass.

llama.cpp calls a graph evaluation callback for every node it computes (`cb_eval` in the context parameters).
The callback here asks only for the layers' outputs (`l_out-N`) and only while a prompt is being evaluated
with capture switched on; it then copies the batch's last row, which after the prompt's last batch is the
last prompt token's state. Nothing else changes: the same nodes compute the same values, so the logits and
the verdict are the same as without it. Asking for a node makes llama.cpp compute the graph up to it, wait,
and go on: one pause per captured layer per batch, which `make bench` measures.

With capture off, the callback declines every node at once; llama.cpp then computes each graph in one go.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

_F32 = 0  # GGML_TYPE_F32


def layer_name(layer: int) -> bytes:
    """llama.cpp's name for layer `layer`'s output (the residual stream after the block)."""
    return f"l_out-{layer}".encode()


class HiddenStateCapture:
    """The callback llama.cpp calls per graph node, and the last-token states it copied."""

    def __init__(self) -> None:
        import llama_cpp
        from llama_cpp._ggml import libggml

        self.n_embd = 0
        """The model's width; set once the model is loaded, before anything is evaluated."""
        self._wanted: dict[bytes, int] = {}
        self.states: dict[int, np.ndarray] = {}
        self._get_name = libggml.ggml_get_name
        self._get_name.argtypes = [ctypes.c_void_p]
        self._get_name.restype = ctypes.c_char_p
        self._nelements = libggml.ggml_nelements
        self._nelements.argtypes = [ctypes.c_void_p]
        self._nelements.restype = ctypes.c_int64
        self._tensor_get = libggml.ggml_backend_tensor_get
        self._tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        self._tensor_get.restype = None
        # Kept on the instance: llama.cpp holds only the raw pointer, and a collected callback would crash it.
        self.callback = llama_cpp.ggml_backend_sched_eval_callback(self._on_node)

    @contextlib.contextmanager
    def capturing(self, layers: Iterable[int]) -> Iterator[dict[int, np.ndarray]]:
        """Capture `layers` for the evaluations inside the block; yields the dict that fills up."""
        self._wanted = {layer_name(layer): layer for layer in layers}
        self.states = {}
        try:
            yield self.states
        finally:
            self._wanted = {}

    def _on_node(self, tensor: int | None, ask: bool, _user_data: Any) -> bool:
        # Asked whether a node is wanted, False declines it; told a node is computed, True goes on.
        if not self._wanted:
            return not ask
        layer = self._wanted.get(self._get_name(tensor))
        if layer is None:
            return not ask
        if ask:
            return True
        elements = self._nelements(tensor)
        # The tensor's first field is its ggml_type; a layer output that is not F32 rows of n_embd is not read,
        # and a probe that needs it then finds no state and fails closed.
        if ctypes.c_int32.from_address(tensor).value != _F32 or elements % self.n_embd:
            return True
        row = np.empty(self.n_embd, dtype=np.float32)
        self._tensor_get(tensor, row.ctypes.data, (elements // self.n_embd - 1) * row.nbytes, row.nbytes)
        self.states[layer] = row  # each batch overwrites it: the prompt's last batch has its last token
        return True


@contextlib.contextmanager
def eval_callback_installed(callback: Any) -> Iterator[None]:
    """Make the next `llama_cpp.Llama(...)` create its context with `callback` as `cb_eval`.

    llama-cpp-python builds its context parameters inside `Llama.__init__` from
    `llama_context_default_params()` and offers no argument for the callback, so the defaults it starts from
    carry it for the duration of the block (callers hold the model-loading lock).
    """
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_context_default_params

    def with_callback() -> Any:
        params = original()
        params.cb_eval = callback
        params.cb_eval_user_data = None
        return params

    bindings.llama_context_default_params = with_callback
    try:
        yield
    finally:
        bindings.llama_context_default_params = original
