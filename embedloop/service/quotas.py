"""Per-key rate quotas on embeddings: requests per second and texts per minute, in moving windows
(the ``limits`` library, in this process's memory). A key's own quotas replace the settings'.
Feedback's daily quota is counted in the database instead (:mod:`embedloop.core.labels.feedback`):
a day is long enough that it must survive a restart."""

from __future__ import annotations

import functools
import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from embedloop.core.access.keys import ApiKey
from embedloop.core.settings import AccessSettings


class QuotaExceeded(Exception):
    def __init__(self, key: str, quota: str, message: str, retry_after_s: int | None) -> None:
        super().__init__(message)
        self.key, self.quota, self.retry_after_s = key, quota, retry_after_s


@functools.cache
def window(quota: str, amount: int) -> RateLimitItem:
    return (RateLimitItemPerSecond if quota.endswith("_per_s") else RateLimitItemPerMinute)(amount)


class Quotas:
    def __init__(self, settings: AccessSettings) -> None:
        self.settings = settings
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def limit(self, key: ApiKey, quota: str) -> int | None:
        return key.quotas.get(quota, getattr(self.settings, quota))

    def take(self, key: ApiKey | None, quota: str, cost: int = 1) -> None:
        """Count ``cost`` against the key's quota, or raise :class:`QuotaExceeded` (counting nothing)."""
        if key is None:  # no keys configured: nothing to count against
            return
        limit = self.limit(key, quota)
        if limit is None:
            return
        unit = "second" if quota.endswith("_per_s") else "minute"
        if cost > limit:
            what = "requests" if quota.startswith("embed_requests") else "texts"
            raise QuotaExceeded(key.name, quota, f"{cost} {what} can never fit key {key.name!r}'s quota of {limit} "
                                f"per {unit}; send fewer per request", None)
        item = window(quota, limit)
        if not self.limiter.hit(item, key.name, quota, cost=cost):
            reset = self.limiter.get_window_stats(item, key.name, quota).reset_time
            raise QuotaExceeded(key.name, quota, f"key {key.name!r} is over its quota of {limit} "
                                f"{quota.removeprefix('embed_').split('_per_')[0]} per {unit}",
                                max(1, math.ceil(reset - time.time())))
