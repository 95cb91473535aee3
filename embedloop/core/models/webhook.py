"""Tell an outside system about promotions and rollbacks: a JSON POST, retried a few times, sent
from a background thread so that it never holds up (or undoes) the move it reports."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def post_json(url: str, event: dict[str, Any], timeout_s: float) -> int:
    request = urllib.request.Request(url, data=json.dumps(event, default=str).encode(), method="POST",
                                     headers={"content-type": "application/json", "user-agent": "embedloop"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - operator-set URL
        return response.status


def deliver(url: str, event: dict[str, Any], attempts: int, timeout_s: float, backoff_s: float = 1.0) -> bool:
    """POST ``event`` until a 2xx answer or ``attempts`` tries; True when delivered."""
    for attempt in range(1, attempts + 1):
        try:
            status = post_json(url, event, timeout_s)
            if 200 <= status < 300:
                return True
            problem = f"HTTP {status}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = str(getattr(exc, "reason", exc))
        log.warning("webhook %s attempt %d/%d failed: %s", event.get("event"), attempt, attempts, problem)
        if attempt < attempts:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    log.error("webhook for %s given up after %d attempts", event.get("event"), attempts)
    return False


def notify(url: str | None, event: dict[str, Any], attempts: int = 3,
           timeout_s: float = 5.0) -> threading.Thread | None:
    """Send ``event`` in the background; the returned thread can be joined by short-lived callers."""
    if not url:
        return None
    thread = threading.Thread(target=deliver, args=(url, event, attempts, timeout_s), name="webhook", daemon=False)
    thread.start()
    return thread
