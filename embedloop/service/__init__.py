"""The serving stage: OpenAI-compatible embeddings over BentoML. Imports only embedloop.core."""
