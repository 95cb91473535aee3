"""Admission: whether a request's texts may join the queue, decided before anything costly is done.

Every text a request brings is *pending* from the moment it is admitted until the request ends
(tokenizing, queued, computing). A request is refused when its texts would take the pending count
past ``serving.max_queue_texts``, or when the wait they would face, pending texts divided by the
drain rate measured on recent batches, would pass ``serving.max_queue_wait_s``. A request that
finds nothing pending is always admitted, however large.

Texts are reserved at admission, before tokenizing, so a burst of requests cannot all pass the
check and then all be tokenized; and when not even the texts its length suggests would fit, the
route refuses before reading the body. Refusing then costs a few header lookups, and the refusal says in
``Retry-After`` when the queue will have room, from the same drain rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

BODY_SMOOTHING = 0.1  # weight of the newest request in the bytes per text
MEMORY_S = 10.0  # batches this many seconds old count 1/e as much in the drain rate


class Overloaded(Exception):
    """No room for this request now; ``retry_after_s`` says when there will be."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Admission:
    max_texts: int
    max_wait_s: float
    in_flight: int = 1  # batches computed at once; the rate of one counts once per slot
    pending: int = 0
    _texts: float = field(default=0.0, repr=False)  # recent computed texts and seconds, decayed with age
    _seconds: float = field(default=0.0, repr=False)
    _last: float | None = field(default=None, repr=False)
    _bytes_per_text: float | None = field(default=None, repr=False)  # of admitted request bodies, smoothed

    def observe_batch(self, texts: int, seconds: float, now: float | None = None) -> None:
        """A batch of ``texts`` took ``seconds`` to compute.

        The rate is texts over compute seconds, both summed over recent batches: a big batch
        weighs by its size, so the one-text batches of quiet moments do not hide how fast the
        deep queues of busy ones drain (per text, a batch of 256 is several times cheaper)."""
        if texts <= 0 or seconds <= 0:
            return
        now = time.monotonic() if now is None else now
        if self._last is not None:
            keep = math.exp(-max(0.0, now - self._last) / MEMORY_S)
            self._texts, self._seconds = self._texts * keep, self._seconds * keep
        self._texts, self._seconds, self._last = self._texts + texts, self._seconds + seconds, now

    def observe_request(self, body_bytes: int, texts: int) -> None:
        """An admitted request's body size and text count: what :meth:`texts_in` estimates from."""
        if texts <= 0:
            return
        size = body_bytes / texts
        previous = self._bytes_per_text
        self._bytes_per_text = size if previous is None else previous + BODY_SMOOTHING * (size - previous)

    def texts_in(self, body_bytes: int | None) -> int:
        """A cautious guess at the texts of a body of ``body_bytes``, before it is read: half what
        recent bodies' bytes per text suggest, so a guess refuses only requests that would be
        refused once counted."""
        if not body_bytes or self._bytes_per_text is None:
            return 1
        return max(1, int(body_bytes / self._bytes_per_text / 2))

    @property
    def drain_rate(self) -> float | None:
        """Texts per second the service clears while it is busy; None before the first batch."""
        return None if self._seconds == 0 else self._texts / self._seconds * self.in_flight

    def wait_s(self, texts: int) -> float:
        """Expected seconds until ``texts`` pending texts are cleared (0 while no rate is known)."""
        rate = self.drain_rate
        return texts / rate if rate else 0.0

    def check(self, texts: int) -> None:
        """Raise :class:`Overloaded` unless ``texts`` more texts may join now."""
        if self.pending == 0:
            return
        total = self.pending + texts
        if total > self.max_texts:
            raise Overloaded(f"{self.pending} texts are already waiting (at most {self.max_texts})",
                             self._retry_after(total - self.max_texts))
        wait = self.wait_s(total)
        if wait > self.max_wait_s:
            raise Overloaded(f"the queue would take {wait:.1f} s to reach this request (at most "
                             f"{self.max_wait_s:g} s)", self._retry_after(total - self.max_wait_s * self.drain_rate))

    @contextmanager
    def admit(self, texts: int) -> Iterator[None]:
        """Reserve ``texts`` for the duration of the block, or raise :class:`Overloaded`."""
        self.check(texts)
        self.pending += texts
        try:
            yield
        finally:
            self.pending -= texts

    def _retry_after(self, excess_texts: float) -> int:
        """Whole seconds (HTTP's unit, at least 1) until ``excess_texts`` have drained."""
        return max(1, math.ceil(self.wait_s(max(0.0, excess_texts))))
