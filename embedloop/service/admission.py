"""Admission: whether a request's texts may join the queue, decided before anything costly is done.

A request's texts and tokens are *pending* from the moment it is admitted until it ends
(tokenizing, queued, computing). A request is refused when its texts would take the pending texts
past ``serving.max_queue_texts``, or when the queue's work (the pending tokens over the drain rate
measured on recent batches) plus twice the request's own would pass
``serving.max_queue_wait_s``. Twice: a request must leave as much room as it takes, so large
requests stop being admitted while there is still room for small ones, and a client sending single
questions is served through a flood of large requests. A request that finds nothing pending is
always admitted, however large.

Work is counted in tokens because that is what a forward pass costs: a queue of long documents
drains many times slower in texts than one of short questions, but at a similar rate in tokens.
Before a request is tokenized its tokens are estimated from its body's length, at the tokens per
byte of recent requests; once it is tokenized its reservation is corrected to the real count.

Texts are reserved at admission, before tokenizing, so a burst of requests cannot all pass the
check and then all be tokenized; and when the tokens its ``Content-Length`` suggests would not
fit, the route refuses before reading the body. Refusing then costs a few header lookups, and the
refusal says in ``Retry-After`` when the queue will have room, from the same drain rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MEMORY_S = 10.0  # batches this many seconds older than the last count 1/e as much in the drain rate
BYTES_SMOOTHING = 0.1  # weight of the newest request in the tokens per body byte
TOKENS_PER_BYTE = 0.25  # until requests have been seen: English text is ~4 bytes per token


class Overloaded(Exception):
    """No room for this request now; ``retry_after_s`` says when there will be."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Reservation:
    """What an admitted request holds; :meth:`Admission.settle` corrects its tokens once known."""

    texts: int
    tokens: float
    body_bytes: int = 0  # the body its tokens were estimated from, if any


@dataclass
class Admission:
    max_texts: int
    max_wait_s: float
    in_flight: int = 1  # batches computed at once; the rate of one counts once per slot
    min_batch: int = 32  # smaller batches do not count in the drain rate
    pending_texts: int = 0
    pending_tokens: float = 0.0
    tokens_per_byte: float = TOKENS_PER_BYTE
    _tokens: float = field(default=0.0, repr=False)  # recent computed tokens and seconds, decayed with age
    _seconds: float = field(default=0.0, repr=False)
    _last: float | None = field(default=None, repr=False)

    # -- what is measured ------------------------------------------------------------------------
    def observe_batch(self, texts: int, tokens: int, seconds: float, now: float | None = None) -> None:
        """A batch of ``texts`` holding ``tokens`` took ``seconds`` to compute.

        The rate is what matters when the queue is deep: tokens over compute seconds, both summed
        over recent batches of at least ``min_batch`` texts (one full forward pass). The small
        batches of quiet moments cost several times more per token and would make the first
        second of a burst refuse requests the queue could take; they are left out, and so is
        idle time: the last busy period's rate holds until the next."""
        if texts < self.min_batch or tokens <= 0 or seconds <= 0:
            return
        now = time.monotonic() if now is None else now
        if self._last is not None:
            keep = math.exp(-max(0.0, now - self._last) / MEMORY_S)
            self._tokens, self._seconds = self._tokens * keep, self._seconds * keep
        self._tokens, self._seconds, self._last = self._tokens + tokens, self._seconds + seconds, now

    def batch_finished(self, texts: int, tokens: int, seconds: float | None) -> None:
        """A batch is done; ``seconds`` is None when it failed (and then says nothing of the rate)."""
        if seconds is not None:
            self.observe_batch(texts, tokens, seconds)

    def observe_request(self, body_bytes: int, tokens: int) -> None:
        """A tokenized request's body size and token count: what :meth:`tokens_in` estimates from."""
        if body_bytes <= 0 or tokens <= 0:
            return
        self.tokens_per_byte += BYTES_SMOOTHING * (tokens / body_bytes - self.tokens_per_byte)

    def tokens_in(self, body_bytes: int | None) -> float:
        """The tokens a body of ``body_bytes`` probably holds, before it is read (0 if unknown)."""
        return (body_bytes or 0) * self.tokens_per_byte

    @property
    def drain_rate(self) -> float | None:
        """Tokens per second the service clears while it is busy; None before the first full batch."""
        return None if self._seconds == 0 else self._tokens / self._seconds * self.in_flight

    def wait_s(self, tokens: float) -> float:
        """Expected seconds until ``tokens`` pending tokens are cleared (0 while no rate is known)."""
        rate = self.drain_rate
        return tokens / rate if rate else 0.0

    # -- what is decided -------------------------------------------------------------------------
    def check(self, texts: int, tokens: float) -> None:
        """Raise :class:`Overloaded` unless ``texts`` more texts of ``tokens`` may join now."""
        if self.pending_texts == 0:
            return
        if self.pending_texts + texts > self.max_texts:
            excess = (self.pending_texts + texts - self.max_texts) * (self.pending_tokens / self.pending_texts)
            raise Overloaded(f"{self.pending_texts} texts are already waiting (at most {self.max_texts})",
                             self._retry_after(excess))
        # Tokens being computed count too: a new request also waits for a free batch slot.
        if self.wait_s(self.pending_tokens + 2 * tokens) > self.max_wait_s:
            excess = self.pending_tokens + 2 * tokens - self.max_wait_s * self.drain_rate
            raise Overloaded(f"the queue holds {self.wait_s(self.pending_tokens):.2f} s of work and this request "
                             f"{self.wait_s(tokens):.2f} s; it is admitted while twice its work fits in "
                             f"{self.max_wait_s:g} s", self._retry_after(excess))

    @contextmanager
    def admit(self, texts: int, tokens: float, body_bytes: int = 0) -> Iterator[Reservation]:
        """Reserve ``texts`` and ``tokens`` (estimated from ``body_bytes``, if given) for the duration
        of the block, or raise :class:`Overloaded`."""
        self.check(texts, tokens)
        reservation = Reservation(texts, tokens, body_bytes)
        self.pending_texts += texts
        self.pending_tokens += tokens
        try:
            yield reservation
        finally:
            self.pending_texts -= reservation.texts
            self.pending_tokens -= reservation.tokens

    def settle(self, reservation: Reservation, tokens: int) -> None:
        """The request has been tokenized: hold its real token count from now on, and learn from it
        how many tokens a body byte holds."""
        self.pending_tokens += tokens - reservation.tokens
        reservation.tokens = tokens
        self.observe_request(reservation.body_bytes, tokens)

    def _retry_after(self, excess_tokens: float) -> int:
        """Whole seconds (HTTP's unit, at least 1) until ``excess_tokens`` have drained."""
        return max(1, math.ceil(self.wait_s(max(0.0, excess_tokens))))
