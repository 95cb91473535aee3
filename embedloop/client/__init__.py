"""A typed Python client for embedloop's feedback and admin API (see :mod:`embedloop.client.client`)."""

from embedloop.client.client import Client, ClientError

__all__ = ["Client", "ClientError"]
