"""Build a servable version folder from a sentence-transformers checkpoint.

checkpoint (sentence-transformers, kept for further training) -> fp32 ONNX (optimum export)
-> int8 ONNX (per-channel int8 weights for this CPU's ISA; activations quantized per row, so a text's
vector does not depend on its batch — :mod:`embedloop.core.models.per_row`)
-> parity check of int8 against the fp32 torch model -> manifest.json.
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from embedloop.core.cpu import cpu_flags
from embedloop.core.models.encoder import MANIFEST, OnnxEncoder, normalize_rows
from embedloop.core.models.per_row import quantize_per_row
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import ExportSettings

CHECKPOINT = "checkpoint"
ONNX_DIR = "onnx"
FP32_GRAPH = f"{ONNX_DIR}/model.onnx"
INT8_GRAPH = f"{ONNX_DIR}/model_int8.onnx"
TOKENIZER = f"{ONNX_DIR}/tokenizer.json"
SERVING_FILES = (MANIFEST, INT8_GRAPH, TOKENIZER)


class ExportError(Exception):
    """The checkpoint cannot be turned into a servable version."""


class ParityError(ExportError):
    """The int8 graph strays too far from the fp32 model."""


@dataclass(frozen=True)
class Parity:
    mean_cosine: float
    min_cosine: float
    n_texts: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean_cosine": self.mean_cosine, "min_cosine": self.min_cosine, "n_texts": self.n_texts}


def parity_texts() -> list[str]:
    text = resources.files("embedloop.core.models").joinpath("data/parity_texts.txt").read_text()
    return [line for line in text.splitlines() if line.strip()]


def cpu_isa() -> str:
    """The best dynamic-quantization target optimum knows for this CPU."""
    if platform.machine().lower() in {"aarch64", "arm64"}:
        return "arm64"
    flags = cpu_flags()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def describe_checkpoint(model) -> dict[str, Any]:  # noqa: ANN001 - SentenceTransformer
    """Pooling, normalisation and sizes of a sentence-transformers model, or ExportError."""
    from sentence_transformers.models import Normalize, Pooling, Transformer

    modules = list(model)
    if not modules or not isinstance(modules[0], Transformer):
        raise ExportError("the first module must be a sentence_transformers.models.Transformer")
    pooling = next((m for m in modules if isinstance(m, Pooling)), None)
    unsupported = [type(m).__name__ for m in modules[1:] if not isinstance(m, (Pooling, Normalize))]
    if pooling is None or unsupported:
        raise ExportError(f"only Transformer + Pooling (+ Normalize) models are supported; found {unsupported}")
    mode = pooling.pooling_mode if isinstance(pooling.pooling_mode, str) else "+".join(pooling.pooling_mode)
    if mode not in {"mean", "cls"}:
        raise ExportError(f"pooling mode {mode!r} is not supported (mean or cls)")
    return {
        "dimensions": int(model.get_embedding_dimension()),
        "max_seq_length": int(model.max_seq_length),
        "pooling": mode,
        "normalize": any(isinstance(m, Normalize) for m in modules),
    }


def quantization_config(isa: str, per_channel: bool):
    """optimum's dynamic-quantization preset for ``isa``, with signed 7-bit weights on x86 without VNNI.

    Without VNNI, ONNX Runtime's fast int8 kernel multiplies unsigned activations by signed weights
    (u8s8, VPMADDUBSW) and can saturate its 16-bit sums; ONNX Runtime's guidance is u8s8 with
    ``reduce_range`` (7-bit weights) or the slower u8u8. optimum's avx2 preset is u8u8: on an AVX2
    CPU u8s8 + reduce_range ran 1.2x faster at the same parity with fp32 (mean cosine 0.991-0.992,
    worst 0.959-0.968 vs 0.955 for u8u8), so that is what ``avx2`` and ``avx512`` get.
    """
    from onnxruntime.quantization import QuantType
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, isa)(is_static=False, per_channel=per_channel)
    if isa in {"avx2", "avx512"}:
        config.weights_dtype = QuantType.QInt8
        config.reduce_range = True
    return config


def quantize(onnx_dir: Path, settings: ExportSettings) -> dict[str, Any]:
    """Write ``model_int8.onnx`` next to ``model.onnx``; return what was chosen (for the manifest)."""
    from optimum.onnxruntime import ORTQuantizer

    isa = cpu_isa() if settings.quantization == "auto" else settings.quantization
    config = quantization_config(isa, settings.per_channel)
    if settings.activations == "per_row":
        chosen = quantize_per_row(onnx_dir / Path(FP32_GRAPH).name, onnx_dir / Path(INT8_GRAPH).name,
                                  reduce_range=config.reduce_range)
        return {**chosen, "isa": isa, "batch_invariant": True}
    quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name="model.onnx")
    quantizer.quantize(quantization_config=config, save_dir=onnx_dir, file_suffix="int8")
    return {"method": "dynamic", "isa": isa, "per_channel": config.per_channel,
            "activations": config.activations_dtype.name, "weights": config.weights_dtype.name,
            "reduce_range": config.reduce_range, "batch_invariant": False}


def measure_parity(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    return (normalize_rows(reference) * normalize_rows(candidate)).sum(axis=1)


def build_version_folder(base: Path, out: Path, settings: ExportSettings, *,
                         progress: Progress = no_progress) -> dict[str, Any]:
    """Write checkpoint, fp32 + int8 graphs, tokenizer and manifest into ``out``; return the manifest."""
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from sentence_transformers import SentenceTransformer

    step = progress
    step("loading checkpoint")
    try:
        model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    except Exception as exc:  # many causes: not a folder, no config, broken weights
        raise ExportError(f"cannot load a sentence-transformers model from {base}: {exc}") from exc
    info = describe_checkpoint(model)
    checkpoint = out / CHECKPOINT
    model.save(str(checkpoint), create_model_card=False)

    step("exporting ONNX (fp32)")
    onnx_dir = out / ONNX_DIR
    ort_model = ORTModelForFeatureExtraction.from_pretrained(checkpoint, export=True, local_files_only=True)
    ort_model.save_pretrained(onnx_dir)
    tokenizer_file = checkpoint / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ExportError(f"{base} has no fast tokenizer (tokenizer.json)")
    shutil.copy2(tokenizer_file, out / TOKENIZER)

    step("quantizing to int8")
    quantization = quantize(onnx_dir, settings)

    manifest: dict[str, Any] = {
        "format": 1,
        **info,
        "graphs": {"fp32": FP32_GRAPH, "int8": INT8_GRAPH},
        "tokenizer": TOKENIZER,
        "checkpoint": CHECKPOINT,
        "quantization": quantization,
    }

    step("checking int8 parity")
    texts = parity_texts()
    reference = model.encode(texts, batch_size=32, convert_to_numpy=True)
    int8 = OnnxEncoder(out, "int8", manifest=manifest, use_gpu=False).encode(texts)
    cosines = measure_parity(reference, int8)
    parity = Parity(float(cosines.mean()), float(cosines.min()), len(texts))
    manifest["parity"] = {**parity.as_dict(), "min_mean_cosine": settings.parity_min_mean_cosine,
                          "min_cosine_floor": settings.parity_min_cosine}
    if parity.mean_cosine < settings.parity_min_mean_cosine or parity.min_cosine < settings.parity_min_cosine:
        raise ParityError(
            f"int8 parity too low: mean cosine {parity.mean_cosine:.4f} (need {settings.parity_min_mean_cosine}),"
            f" worst {parity.min_cosine:.4f} (need {settings.parity_min_cosine})"
        )
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
