"""Databases: engines, tables, insert-or-ignore, leases. SQLite and PostgreSQL."""
