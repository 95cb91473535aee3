"""Deterministic shares of labelled queries: the same query always lands on the same side.

Feedback is split into probe queries and training pairs, and training pairs into validation and
training, by a hash of the normalised query text; each split has its own salt so they are independent.
The probe split is also keyed with a secret of the installation (an HMAC), so that nobody who reads
this code can choose queries whose feedback is trained on rather than used to judge.
"""

from __future__ import annotations

import hashlib
import hmac

PROBES = "embedloop-probe-v1"
VALIDATION = "embedloop-validation-v1"


def normalised(query: str) -> str:
    return query.strip().lower()


def query_hash(query: str) -> str:
    """Identifies a query regardless of case and surrounding space (deduplication key)."""
    return hashlib.sha256(normalised(query).encode()).hexdigest()


def in_share(query: str, salt: str, fraction: float, secret: bytes | None = None) -> bool:
    """True for a stable ``fraction`` of all queries, chosen by ``salt`` (and ``secret``, if given)."""
    message = f"{salt}|{normalised(query)}".encode()
    digest = (hmac.new(secret, message, hashlib.sha256) if secret else hashlib.sha256(message)).hexdigest()
    return int(digest[:8], 16) / 16**8 < fraction
