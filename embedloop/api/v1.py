"""The public /v1 routes' contract: the embeddings request (OpenAI's, plus ``truncate``, an
extension) and what /v1/embeddings, /v1/models and /v1/feedback answer.

The service builds its answers as plain dicts serialised by orjson: validating thousands of floats
through pydantic models on the way out costs more than it checks. The models describe them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema, field_validator

TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}
# What the route accepts, stated for clients: the route itself answers blank texts with `empty_input`.
Input = Annotated[StrictStr | list[StrictStr], WithJsonSchema(
    {"anyOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1}],
     "description": "a text or a list of texts (at most serving.max_inputs); token-id arrays are refused"})]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: Input
    model: StrictStr
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(None, ge=1)
    user: str | None = None
    truncate: StrictBool = Field(True, description="cut texts longer than the model's maximum instead of refusing")

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_arrays(cls, value: object) -> object:
        if isinstance(value, list) and value and all(isinstance(v, (int, list)) for v in value):
            raise ValueError("token-id arrays are not supported; send text (LangChain's OpenAIEmbeddings sends "
                             "token ids unless created with check_embedding_ctx_length=False)")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


# -- what the routes answer (described for /openapi.json; built as dicts on the hot path) --------
class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str = Field(description="embedloop@<version> (the version that made the vectors), or "
                       "embedloop@<version>~<older> when a query adapter rotated them into an older version's space")
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    version: str
    dimensions: int
    max_input_tokens: int
    adapts_into: str | None = Field(None, description="a query adapter's: the version whose vectors it retrieves from")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class FeedbackResult(BaseModel):
    object: Literal["feedback.result"]
    accepted: int
    to_probes: int
    duplicates: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail
