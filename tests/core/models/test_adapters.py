"""Query adapters: the rotation fitted, applied, registered and checked."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from embedloop.core.models.adapters import QueryAdapter, adapter_file, adapters_of, fit_rotation, load_adapter
from embedloop.core.models.artifacts import IntegrityError
from embedloop.core.models.encoder import normalize_rows
from embedloop.core.models.registry import UnknownVersion
from embedloop.core.models.versions import Assessment, register_version, version_dir
from tests.conftest import make_state


def test_the_fitted_rotation_maps_one_space_onto_another_and_keeps_inner_products():
    rng = np.random.default_rng(0)
    old = normalize_rows(rng.normal(size=(200, 16)).astype(np.float32))
    turn = ortho_group.rvs(16, random_state=1)
    new = normalize_rows(old @ turn.T + rng.normal(scale=0.01, size=old.shape)).astype(np.float32)
    rotation = fit_rotation(new, old)
    assert np.abs(rotation @ rotation.T - np.eye(16)).max() < 1e-5
    assert np.abs(rotation - turn).max() < 0.05  # recovers the rotation under the noise
    adapted = QueryAdapter("v2", "v1", rotation).apply(new)
    assert np.abs(adapted @ adapted.T - new @ new.T).max() < 1e-5
    assert np.mean(np.sum(adapted * old, axis=1)) > 0.99 > np.mean(np.sum(new * old, axis=1))


def test_an_adapter_is_read_only_if_registered_and_unchanged(tiny_home, tiny_base):
    with make_state(tiny_home) as state:
        dims = state.registry.get("v1").manifest["dimensions"]
        rotation = ortho_group.rvs(dims, random_state=0).astype(np.float32)

        def assess(folder, manifest):
            np.save(folder / adapter_file("v1"), rotation)
            return Assessment()

        v2 = register_version(state.settings, state.registry, tiny_base, assess=assess)
        folder = version_dir(state.settings, v2)
        assert adapters_of(v2) == ["v1"] and adapters_of(state.registry.get("v1")) == []
        adapter = load_adapter(folder, v2, "v1")
        assert adapter.name == "v2~v1" and np.array_equal(adapter.rotation, rotation)
        with pytest.raises(UnknownVersion, match="no query adapter into v3"):
            load_adapter(folder, v2, "v3")
        np.save(folder / adapter_file("v1"), np.eye(dims, dtype=np.float32))
        with pytest.raises(IntegrityError, match="sha256"):
            load_adapter(folder, v2, "v1")
