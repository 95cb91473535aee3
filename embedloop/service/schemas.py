"""The request of the OpenAI embeddings API (plus ``truncate``, an extension).

Responses are built as plain dicts and serialised by orjson in :mod:`embedloop.service.app`:
validating thousands of floats through pydantic models on the way out costs more than it checks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: StrictStr | list[StrictStr]
    model: StrictStr
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(None, ge=1)
    user: str | None = None
    truncate: StrictBool = Field(True, description="cut texts longer than the model's maximum instead of refusing")

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_arrays(cls, value: object) -> object:
        if isinstance(value, list) and value and all(isinstance(v, (int, list)) for v in value):
            raise ValueError("token-id arrays are not supported; send text")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
