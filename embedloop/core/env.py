"""Process environment defaults: offline, quiet, state kept under the home folder.

Applied once by every entry point (CLI, service) before heavy libraries are imported.
Values already set by the user win.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "1",
    "TRANSFORMERS_VERBOSITY": "error",  # not "`torch_dtype` is deprecated" on every load
    "TQDM_DISABLE": "1",  # libraries' own progress bars; commands draw theirs with rich
}
# Libraries whose warnings are about their own internals, not about anything a user can act on.
QUIET_MODULES = r"(torch|transformers|optimum|sentence_transformers|onnxruntime|datasets|accelerate)(\.|$)"


def apply_defaults(home: Path | None = None) -> None:
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module=QUIET_MODULES)
    if home is not None:
        os.environ.setdefault("BENTOML_HOME", str(Path(home).resolve() / "bentoml"))
