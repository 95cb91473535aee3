"""Per-installation secrets, kept in a database every process of the installation shares: the key of
the probe split's hash, the key that signs review-page sessions. Random on first use; the first
writer wins, so every process and replica reads the same value."""

from __future__ import annotations

import secrets

from sqlalchemy import Column, Engine, MetaData, String, Table, select

from embedloop.core.storage.database import create_tables, insert_new

metadata = MetaData()
secrets_table = Table(
    "installation_secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)


def installation_secret(engine: Engine, name: str) -> bytes:
    """The installation's secret of that name (32 random bytes), created on first use."""
    create_tables(metadata, engine)
    with engine.begin() as conn:
        insert_new(conn, secrets_table, {"name": name, "value": secrets.token_hex(32)})
        return bytes.fromhex(conn.execute(select(secrets_table.c.value)
                                          .where(secrets_table.c.name == name)).scalar_one())
