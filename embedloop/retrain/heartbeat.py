"""One retraining run at a time: a lease renewed in the background while the run works."""

from __future__ import annotations

import threading

from embedloop.core.storage.lease import Lease

LEASE_NAME = "retrain"


class RunBusy(Exception):
    """Another retraining run holds the lease."""


class Heartbeat:
    """Holds the retraining lease for a run, renewing it in the background until released.
    ``lost`` turns true if the lease expired and was taken (the run must not register then)."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def __enter__(self) -> "Heartbeat":
        if not self.lease.acquire():
            holder = self.lease.current()
            raise RunBusy(f"another retraining run is in progress ({holder[0] if holder else '?'})")
        self._thread = threading.Thread(target=self._beat, name="retrain-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.lease.ttl_s / 3):
            if not self.lease.renew():
                self.lost = True
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.lease.release()
