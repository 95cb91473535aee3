"""How long work reports how far it got: one callback shape everywhere."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, done: int = 0, total: int = 0) -> None:
        """``step`` names what is being done; ``done`` of ``total`` units (``total`` 0: unknown)."""


def no_progress(step: str, done: int = 0, total: int = 0) -> None:
    """The :class:`Progress` that reports nowhere."""
