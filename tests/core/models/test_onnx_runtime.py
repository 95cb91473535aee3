"""Execution-provider choice. No GPU exists here, so the CUDA case fakes what onnxruntime-gpu reports."""

import ctypes

import pytest

from embedloop.core.models import onnx_runtime as runtime


def test_cpu_when_no_cuda_provider_is_installed():
    assert runtime.choose_providers(use_gpu=True) == [runtime.CPU]


def test_cuda_first_when_installed_and_a_device_is_visible(monkeypatch):
    monkeypatch.setattr(runtime, "_cuda_usable", lambda: True)  # stands in for onnxruntime-gpu + a GPU
    assert runtime.choose_providers(use_gpu=True) == [runtime.CUDA, runtime.CPU]
    assert runtime.choose_providers(use_gpu=False) == [runtime.CPU]


def test_cuda_provider_without_a_device_falls_back(monkeypatch):
    try:
        ctypes.CDLL("libcuda.so.1")
        pytest.skip("a CUDA driver is present here")
    except OSError:
        pass
    runtime._cuda_usable.cache_clear()
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [runtime.CUDA, runtime.CPU])
    try:
        assert runtime.choose_providers(use_gpu=True) == [runtime.CPU]  # no libcuda on this machine
    finally:
        runtime._cuda_usable.cache_clear()


def test_spinning_is_off_unless_asked_for():
    assert runtime.session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert runtime.session_options(allow_spinning=True).get_session_config_entry(
        "session.intra_op.allow_spinning") == "1"
