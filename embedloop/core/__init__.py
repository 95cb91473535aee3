"""Shared pieces every stage builds on. Imports no stage."""
