"""A named lease in the database: one holder at a time, kept alive by renewing, lost on expiry.

Used so that only one daemon acts on a state folder, and one retraining run runs at a time.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, select, update
from sqlalchemy.exc import IntegrityError

from embedloop.core.storage.database import create_tables

metadata = MetaData()
leases_table = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)


def holder_is_dead(holder: str) -> bool:
    """True when ``holder`` ("host:pid:nonce") names a process of this host that no longer runs:
    a killed holder need not be waited out until its lease expires."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    def __init__(self, engine: Engine, name: str, ttl_s: float) -> None:
        self.engine = engine
        create_tables(metadata, engine)
        self.name, self.ttl_s = name, ttl_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, ours, or held by a dead process on this host."""
        now = time.time()
        current = self.current()
        dead = current[0] if current and holder_is_dead(current[0]) else None
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases_table)
                .where(leases_table.c.name == self.name)
                .where((leases_table.c.expires_at < now) | (leases_table.c.holder == self.holder)
                       | (leases_table.c.holder == dead))
                .values(holder=self.holder, expires_at=now + self.ttl_s)
            ).rowcount
            if taken:
                return True
            if conn.execute(select(leases_table.c.name).where(leases_table.c.name == self.name)).first():
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(leases_table.insert().values(name=self.name, holder=self.holder,
                                                          expires_at=now + self.ttl_s))
            return True
        except IntegrityError:  # someone inserted it first
            return False

    def renew(self) -> bool:
        """Extend our lease; False if it was lost (expired and taken by someone else)."""
        return self.acquire()

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(leases_table).where(leases_table.c.name == self.name)
                         .where(leases_table.c.holder == self.holder).values(expires_at=0.0))

    def current(self) -> tuple[str, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(leases_table).where(leases_table.c.name == self.name)).first()
        return (row.holder, row.expires_at) if row else None
