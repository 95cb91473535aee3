"""The client libraries people use for embeddings, against a real server, as the docs show them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from embedloop.core.access.keys import Scope
from tests.conftest import copy_home, make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_registered):
    srv = start_server(copy_home(tiny_registered, tmp_path_factory.mktemp("clients")),
                       tmp_path_factory.mktemp("logs") / "server.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reference(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    return {text: np.array(client.embeddings.create(model="embedloop", input=text).data[0].embedding)
            for text in ("What is glaucoma?", "eye pressure")}


def test_langchain(server, reference):
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model="embedloop", base_url=f"{server.url}/v1", api_key="unused",
                                  check_embedding_ctx_length=False)  # send text, not token ids
    documents = embeddings.embed_documents(["What is glaucoma?"])
    assert np.allclose(documents[0], reference["What is glaucoma?"], atol=1e-6)
    assert np.allclose(embeddings.embed_query("eye pressure"), reference["eye pressure"], atol=1e-6)


def test_llamaindex(server, reference):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    embeddings = OpenAILikeEmbedding(model_name="embedloop", api_base=f"{server.url}/v1", api_key="unused")
    assert np.allclose(embeddings.get_text_embedding("What is glaucoma?"), reference["What is glaucoma?"], atol=1e-6)
    assert np.allclose(embeddings.get_query_embedding("eye pressure"), reference["eye pressure"], atol=1e-6)


def test_a_key_is_the_clients_api_key(server, reference):  # last: it closes the open API
    from langchain_openai import OpenAIEmbeddings
    from openai import AuthenticationError, OpenAI

    with make_state(server.home) as state:
        _, secret = state.keys.create("langchain-app", frozenset({Scope.EMBED}))
    anonymous = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    deadline = time.monotonic() + 10
    while True:  # the service re-reads its keys every access.refresh_s
        try:
            anonymous.embeddings.create(model="embedloop", input="x")
        except AuthenticationError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    keyed = OpenAIEmbeddings(model="embedloop", base_url=f"{server.url}/v1", api_key=secret,
                             check_embedding_ctx_length=False)
    assert np.allclose(keyed.embed_query("eye pressure"), reference["eye pressure"], atol=1e-6)
