"""One way to turn a pydantic validation error into a message a person can act on."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    loc: tuple[str | int, ...]  # where, e.g. ("input", 3)
    message: str

    @property
    def field(self) -> str:
        """The dotted path of named fields, e.g. ``negative_ids`` (list positions left out)."""
        return ".".join(str(p) for p in self.loc if isinstance(p, str))

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.loc)
        return f"{where}: {self.message}" if where else self.message


def problems(exc: ValidationError) -> list[Problem]:
    return [Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False, include_input=False)]


def first_problem(exc: ValidationError, deepest: bool = False) -> Problem:
    """The first problem, or with ``deepest`` the one with the longest location (of a union's
    alternatives, the deepest says most about what was wrong)."""
    found = problems(exc)
    return max(found, key=lambda p: len(p.loc)) if deepest else found[0]
