"""What a check reports: its status, figures, and whether it asks for retraining."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class CheckStatus(str, Enum):
    OK = "ok"
    DRIFTED = "drifted"  # this window drifted
    DECLARED = "declared"  # enough drifted windows in a row
    ALARM = "alarm"  # the probe metric is below its floor or fell too far
    WAITING = "waiting"  # not enough data yet
    SKIPPED = "skipped"  # nothing to check


@dataclass
class CheckReport:
    check: str
    version: str | None
    status: CheckStatus
    figures: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None  # reason, when retraining is asked for
    message: str = ""
