"""Reindexing: a channel's documents embedded again with a new version into a vector database."""
