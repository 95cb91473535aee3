"""embedloop: a self-tuning embedding server.

Packages form three floors and import downwards only:
``embedloop.core`` (shared pieces) <- ``embedloop.service`` / ``embedloop.monitoring`` /
``embedloop.retrain`` (stages, never each other) <- ``embedloop.app`` (CLI and daemon, the wiring).
"""

__version__ = "0.1.0"
