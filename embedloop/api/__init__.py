"""The HTTP API's contract: the pydantic models of request bodies and answers, shared by the service
(which validates with them), its OpenAPI description and the Python client. Imports only the core."""
