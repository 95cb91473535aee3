"""Prometheus metrics of the serving path, defined once and imported where used.

Under BentoML these land in its multiprocess registry and are served at ``/metrics`` next to
BentoML's own.
"""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "embedloop_requests_total", "Requests by endpoint (embeddings, feedback, models, admin) and HTTP status",
    ["endpoint", "status"]
)
TEXTS = Counter("embedloop_texts_total", "Texts embedded", ["version"])
TOKENS = Counter("embedloop_tokens_total", "Tokens fed to the model, special tokens included", ["version"])
TRUNCATIONS = Counter(
    "embedloop_truncated_texts_total", "Texts cut to the model's maximum sequence length", ["version"]
)
REQUEST_LATENCY = Histogram(
    "embedloop_request_duration_seconds",
    "Time from request received to response ready",
    ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
BATCH_SIZE = Histogram(
    "embedloop_batch_size_texts", "Texts per forward pass", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
BATCH_TOKENS = Histogram(
    "embedloop_batch_padded_tokens",
    "Padded tokens per forward pass",
    buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768),
)
INFERENCE_LATENCY = Histogram(
    "embedloop_inference_duration_seconds",
    "Time of one batch taken from the queue (one or more forward passes)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
QUEUE_DEPTH = Gauge("embedloop_queue_depth_texts", "Texts waiting for a forward pass", multiprocess_mode="livesum")
FEEDBACK = Counter("embedloop_feedback_items_total", "Feedback items stored, by destination", ["destination"])
REJECTED = Counter("embedloop_rejected_requests_total", "Requests refused before inference", ["reason"])
AUTH_REFUSALS = Counter("embedloop_auth_refusals_total", "Requests refused for a missing, unknown or revoked key "
                        "(401) or a key without the route's scope (403)", ["scope", "status"])
QUOTA_REFUSALS = Counter("embedloop_quota_refusals_total", "Requests refused by a key's quota", ["key", "quota"])
QUERYLOG_WRITES = Counter("embedloop_querylog_writes_total", "Request records written to the query log")
QUERYLOG_DROPS = Counter("embedloop_querylog_drops_total", "Request records dropped because the log queue was full")
QUERYLOG_FAILURES = Counter("embedloop_querylog_write_failures_total", "Request records lost to write errors")
QUERYLOG_DEPTH = Gauge(
    "embedloop_querylog_queue_depth", "Records waiting to be written to the query log", multiprocess_mode="livesum"
)
MODEL_INFO = Gauge(
    "embedloop_model_info",
    "1 for each loaded model version; role is production or pinned",
    ["version", "role", "provider"],
    multiprocess_mode="livemax",
)
MODEL_LOADS = Counter("embedloop_model_loads_total", "Model version loads by outcome", ["outcome"])
MODEL_SWAPS = Counter("embedloop_model_swaps_total", "Production hot-swaps done by the service")
COMPATIBILITY = Gauge(
    "embedloop_version_compatibility",
    "Probe metric of the production version as recorded at its gates: its queries against the stored document "
    "vectors of the version it replaced (cross), alone (own), that version alone (older), and through its query "
    "adapter into that version's space (adapter, when one is served)",
    ["version", "against", "figure"],
    multiprocess_mode="livemax",
)
COMPATIBLE = Gauge(
    "embedloop_version_compatible",
    "1 when the production version's queries retrieve from the replaced version's stored vectors as well as "
    "that version did (within gates.compatibility_tolerance)",
    ["version", "against"],
    multiprocess_mode="livemax",
)
CHANNEL_LAGGING = Gauge(
    "embedloop_channel_lagging",
    "1 while an index channel serves another version than production (its stored vectors need a reindex first)",
    ["channel"],
    multiprocess_mode="livemax",
)
