import json

import numpy as np
import pytest

from embedloop.core.models.artifacts import verify
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.models.export import (
    SERVING_FILES,
    ExportError,
    ParityError,
    cpu_isa,
    measure_parity,
    parity_texts,
    quantization_config,
)
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import register_version
from tests.conftest import make_settings


def test_registered_version_has_graphs_manifest_and_hashes(tiny_registered, open_states):
    state = open_states(tiny_registered)
    settings, registry = state.settings, state.registry
    version = registry.get("v1")
    folder = settings.models_dir / version.artifact_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == version.manifest
    assert manifest["dimensions"] == 32 and manifest["pooling"] == "mean" and manifest["normalize"] is True
    assert manifest["quantization"]["method"] == "per_row" and manifest["quantization"]["batch_invariant"]
    assert manifest["quantization"]["isa"] == cpu_isa()
    assert (folder / manifest["graphs"]["int8"]).stat().st_size < (folder / manifest["graphs"]["fp32"]).stat().st_size
    assert (folder / "checkpoint" / "modules.json").is_file()  # kept for further training
    verify(folder, version.files)  # every file recorded, every hash right
    assert set(SERVING_FILES) <= set(version.files)
    assert registry.alias(PRODUCTION) == "v1"
    assert version.metrics["parity"]["mean_cosine"] >= settings.export.parity_min_mean_cosine


def test_int8_graph_matches_torch_model(tiny_registered, tiny_base):
    from sentence_transformers import SentenceTransformer

    settings = make_settings(tiny_registered)
    folder = settings.models_dir / "v1"
    texts = parity_texts()
    torch_vecs = SentenceTransformer(str(tiny_base), device="cpu").encode(texts)
    fp32 = OnnxEncoder(folder, "fp32").encode(texts)
    int8 = OnnxEncoder(folder, "int8").encode(texts)
    assert measure_parity(torch_vecs, fp32).min() > 0.9999
    assert measure_parity(torch_vecs, int8).mean() > 0.98
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)


def test_parity_below_threshold_refuses_and_leaves_nothing(tmp_path, tiny_base, open_states):
    state = open_states(tmp_path / "home", export={"parity_min_mean_cosine": 1.01})
    settings, registry = state.settings, state.registry
    with pytest.raises(ParityError, match="parity too low"):
        register_version(settings, registry, tiny_base)
    assert registry.versions() == []
    assert [p.name for p in settings.models_dir.iterdir()] == [".staging"]  # no version folder
    assert not any(settings.staging_dir.iterdir())


def test_not_a_model_folder_is_a_clear_error(tmp_path, open_states):
    (tmp_path / "empty").mkdir()
    state = open_states(tmp_path / "home")
    with pytest.raises(ExportError, match="cannot load a sentence-transformers model"):
        register_version(state.settings, state.registry, tmp_path / "empty")


@pytest.mark.parametrize(("isa", "weights", "reduce_range"), [
    ("avx2", "QInt8", True),  # no VNNI: signed 7-bit weights, no saturation in VPMADDUBSW
    ("avx512", "QInt8", True),
    ("avx512_vnni", "QInt8", False),  # VNNI sums in 32 bits: full range
])
def test_quantization_preset_per_isa(isa, weights, reduce_range):
    config = quantization_config(isa, per_channel=True)
    assert (config.weights_dtype.name, config.reduce_range, config.per_channel) == (weights, reduce_range, True)
    assert config.activations_dtype.name == "QUInt8" and not config.is_static


@pytest.mark.parametrize("companions", [["a"], ["what is the treatment for a long and rare condition " * 6],
                                        [f"question {i}" for i in range(40)]])
def test_int8_vector_does_not_depend_on_the_batch(tiny_registered, companions):
    encoder = OnnxEncoder(make_settings(tiny_registered).models_dir / "v1", "int8")
    target = "what are the symptoms of glaucoma"
    alone = encoder.encode([target])[0]
    together = encoder.encode(companions + [target], batch_size=64)[-1]
    assert np.abs(together - alone).max() <= 1e-5


def test_one_scale_per_pass_remains_a_setting(tmp_path, tiny_base, open_states):
    state = open_states(tmp_path / "home", export={"activations": "per_tensor"})
    version = register_version(state.settings, state.registry, tiny_base)
    assert version.manifest["quantization"]["method"] == "dynamic"
    assert version.manifest["quantization"]["batch_invariant"] is False
