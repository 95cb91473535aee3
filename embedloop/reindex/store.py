"""The vector database a channel's documents live in: Qdrant, through its own client — embedded
(local mode, files under the state folder) by default, a Qdrant server at ``vectors.url`` with the
same code when one machine is not enough.

A channel ``index-main`` is a Qdrant *alias* of that name; each version's vectors are a collection
of their own, ``index-main__v3``. Searches go through the alias, so swapping it (one atomic alias
operation) is the only moment a client sees another index, and never a half-built one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from qdrant_client import QdrantClient, models

from embedloop.core.settings import Settings

NAMESPACE = uuid.UUID("3f8b1c9e-6f0a-4d8e-9a57-2f1c6b8e4d10")  # point ids: uuid5 of the document id


def point_id(doc_id: str) -> str:
    """The same document always gets the same point: writing it again replaces it, never adds one."""
    return str(uuid.uuid5(NAMESPACE, doc_id))


def collection_of(channel: str, version: str) -> str:
    return f"{channel}__{version}"


def open_client(settings: Settings) -> QdrantClient:
    v = settings.vectors
    if v.url:
        return QdrantClient(url=v.url, api_key=v.api_key.get_secret_value() if v.api_key else None)
    path = v.path or settings.home / "vectors"
    path.mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(path))


class VectorStore:
    def __init__(self, client: QdrantClient) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    def aliased(self, alias: str) -> str | None:
        """The collection ``alias`` points at."""
        for a in self.client.get_aliases().aliases:
            if a.alias_name == alias:
                return a.collection_name
        return None

    def ensure_collection(self, name: str, dimensions: int) -> None:
        if not self.client.collection_exists(name):
            self.client.create_collection(name, vectors_config=models.VectorParams(size=dimensions,
                                                                                   distance=models.Distance.DOT))

    def count(self, name: str) -> int:
        return self.client.count(name, exact=True).count

    def present(self, name: str, doc_ids: list[str]) -> set[str]:
        """Which of ``doc_ids`` the collection holds already."""
        found = self.client.retrieve(name, ids=[point_id(d) for d in doc_ids], with_payload=["doc_id"])
        return {p.payload["doc_id"] for p in found}

    def upsert(self, name: str, doc_ids: list[str], texts: list[str], vectors) -> None:  # noqa: ANN001
        self.client.upsert(name, points=[
            models.PointStruct(id=point_id(d), vector=v.tolist(), payload={"doc_id": d, "text": t})
            for d, t, v in zip(doc_ids, texts, vectors)], wait=True)

    def documents(self, name: str, batch: int = 256) -> Iterator[tuple[str, str]]:
        """(doc id, text) of every point, from the payloads."""
        offset = None
        while True:
            points, offset = self.client.scroll(name, limit=batch, offset=offset, with_payload=True,
                                                with_vectors=False)
            for p in points:
                yield p.payload["doc_id"], p.payload["text"]
            if offset is None:
                return

    def swap(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one operation (the old collection stays)."""
        operations = [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection,
                                                                                  alias_name=alias))]
        if self.aliased(alias) is not None:
            operations.insert(0, models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        self.client.update_collection_aliases(change_aliases_operations=operations)

    def search(self, alias: str, vector, limit: int = 10) -> list[str]:  # noqa: ANN001
        hits = self.client.query_points(alias, query=vector.tolist(), limit=limit, with_payload=["doc_id"]).points
        return [h.payload["doc_id"] for h in hits]
