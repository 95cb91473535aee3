"""ONNX Runtime execution-provider choice: CUDA when the gpu extra and a GPU are present, else CPU."""

from __future__ import annotations

import logging
from functools import lru_cache

import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@lru_cache(maxsize=None)
def _cuda_usable() -> bool:
    if CUDA not in ort.get_available_providers():
        return False
    try:  # onnxruntime-gpu lists CUDA even without a device; ask the driver.
        import ctypes

        lib = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


def choose_providers(use_gpu: bool = True) -> list[str]:
    providers = [CUDA, CPU] if use_gpu and _cuda_usable() else [CPU]
    log.info("ONNX Runtime execution providers: %s", providers)
    return providers


def session_options(intra_op_threads: int = 0, allow_spinning: bool = False) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    # Spinning worker threads burn the CPU time the HTTP event loop needs between forward passes.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if intra_op_threads:
        opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts
