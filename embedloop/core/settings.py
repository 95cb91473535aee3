"""Every setting in one typed place, built once at the edge and passed down.

Sources, strongest first: keyword arguments, ``EMBEDLOOP_*`` environment variables (groups
nested with ``__``, e.g. ``EMBEDLOOP_SERVING__MAX_BATCH_TOKENS=8192``), the YAML file named by
``EMBEDLOOP_CONFIG`` (default ``<home>/config.yaml``), then the defaults below. Unknown keys are
errors, so a misspelt or renamed setting is never silently ignored.

``docs/configuration.md`` is generated from these models (``python -m embedloop.app.reference``).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

Metric = Literal["recall@10", "mrr@10", "ndcg@10"]


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Privacy(str, Enum):
    """What the query log keeps of a sampled text."""

    TEXT = "text"
    HASH = "hash"
    NONE = "none"


class OnTrigger(str, Enum):
    """What the daemon does with a trigger."""

    RETRAIN = "retrain"
    RECORD = "record"


class StorageSettings(Group):
    """Where state lives. Every URL is SQLite (one machine) or PostgreSQL (several)."""

    registry_url: str | None = Field(None, description="model versions, aliases, audit log; "
                                     "default sqlite:///<home>/registry.db")
    monitoring_url: str | None = Field(None, description="corpus, feedback, probe set, check history, triggers, "
                                       "retraining runs, leases; default sqlite:///<home>/monitoring.db")
    querylog_url: str | None = Field(None, description="logged requests and sampled queries; "
                                     "default sqlite:///<home>/querylog.db")
    models_dir: Path | None = Field(None, description="version folders (shared storage for several machines); "
                                    "default <home>/models")


class ExportSettings(Group):
    quantization: str = Field("auto", description="auto | avx512_vnni | avx512 | avx2 | arm64")
    per_channel: bool = Field(True, description="per-channel int8 weights (per-tensor loses more accuracy)")
    activations: Literal["per_row", "per_tensor"] = Field(
        "per_row", description="per_row: each token's activations get their own int8 scale, so a text's vector "
        "does not depend on what shares its batch; per_tensor: one scale per pass (batch-dependent, 6-10 % faster)")
    parity_min_mean_cosine: float = Field(0.985, description="int8 vs fp32 mean cosine needed to register")
    parity_min_cosine: float = Field(0.93, description="int8 vs fp32 worst-text cosine needed to register")


class ServingSettings(Group):
    host: str = Field("127.0.0.1", description="address the service binds")
    port: int = Field(3000, description="service port")
    model_alias: str = Field("embedloop", description="public model name meaning the production version")
    max_batch_items: int = Field(256, ge=1, description="texts taken from the queue at once")
    sub_batch_items: int = Field(32, ge=1, description="most texts per forward pass (a batch is sorted by length "
                                 "and cut into passes where padding would cost more than a call)")
    pass_overhead_tokens: int = Field(16, ge=0, description="cost of one forward pass beyond its tokens, in tokens; "
                                      "weighs padding against the number of passes")
    max_batch_tokens: int = Field(16384, ge=16,
                                  description="padded tokens (rows x longest row) taken from the queue at once")
    max_wait_ms: float = Field(2.0, ge=0, description="how long a lone request may wait for company")
    max_queue_texts: int = Field(2048, ge=1, description="texts admitted and not yet answered before new "
                                 "requests get 429")
    max_queue_wait_s: float = Field(1.0, gt=0, description="seconds of queued work (at the measured drain rate) "
                                    "that the queue's work plus twice a request's own may reach; past it: 429")
    request_timeout_s: float = Field(30.0, gt=0, description="deadline per request; past it: 504")
    max_inputs: int = Field(2048, ge=1, description="texts per request")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="request body size; past it: 413")
    max_loaded_versions: int = Field(2, ge=1, description="versions kept in memory, production included")
    alias_poll_s: float = Field(2.0, gt=0, description="how often the production alias is re-read")
    workers: int = Field(1, ge=1, description="server processes, each with its own models and batcher")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads per session; 0 = all cores, shared "
                                  "among the service's batches in flight")
    batches_in_flight: int = Field(2, ge=1, description="batches the service computes at once, each on its own "
                                   "thread (measured on 2 cores: 1.15x single-text, 1.33x 32-text throughput vs one)")
    ort_allow_spinning: bool = Field(False, description="let idle ONNX Runtime threads spin (steals CPU from HTTP)")
    use_gpu: bool = Field(True, description="use CUDA when onnxruntime-gpu and a GPU are present")
    trace_embeddings: bool = Field(False, description="OpenTelemetry spans for /v1/embeddings requests "
                                   "(BentoML records them even with no exporter; they cost throughput)")


class QueryLogSettings(Group):
    enabled: bool = Field(True, description="log requests and a sample of queries")
    sample_rate: float = Field(0.1, ge=0.0, le=1.0, description="share of texts stored with their embedding")
    privacy: Privacy = Field(Privacy.TEXT, description="what is kept of a sampled text: text, hash or none")
    queue_size: int = Field(10000, ge=1, description="records waiting for the writer before new ones are dropped")
    batch_size: int = Field(500, ge=1, description="records per write transaction")
    flush_interval_s: float = Field(0.5, gt=0, description="longest wait before queued records are written")
    retention_days: float = Field(30.0, gt=0, description="older rows are deleted")
    retention_max_rows: int = Field(1_000_000, ge=1, description="rows kept at most per table")


class DriftSettings(Group):
    interval_s: float = Field(300.0, gt=0, description="how often the drift check runs")
    window_size: int = Field(200, ge=20, description="new logged queries per window")
    reference_size: int = Field(1000, ge=20, description="reference embeddings, sampled uniformly")
    alpha: float = Field(0.01, gt=0, lt=1, description="KS: level after the multiple-testing correction")
    correction: Literal["fdr_bh", "bonferroni"] = Field("fdr_bh", description="Benjamini-Hochberg FDR or Bonferroni")
    min_ks: float = Field(0.1, ge=0, le=1, description="effect-size floor per dimension")
    min_share: float = Field(0.0, ge=0, le=1,
                             description="share of drifted dimensions that makes a window drifted; 0 = any one")
    pca_components: int = Field(0, ge=0, description="KS only: 0 = test raw dimensions")
    consecutive: int = Field(2, ge=1, description="drifted windows in a row before drift is declared")
    detector: Literal["ks", "mmd", "both"] = Field("both", description="ks: per-dimension KS tests; mmd: mean "
                                                   "difference on whitened principal components, permutation null; "
                                                   "both: a window is drifted when either says so")
    mmd_alpha: float = Field(0.05, gt=0, lt=1, description="MMD permutation p-value that makes a window drifted")
    mmd_components: int = Field(32, ge=1, description="whitened principal components the MMD test compares")
    permutations: int = Field(500, ge=99, description="size of the MMD permutation null (seeded)")


class ProbeSettings(Group):
    dataset: Path | None = Field(None, description="BEIR folder imported as the probe set when the set is empty")
    split: str = Field("test", description="qrels split of that dataset")
    group_field: str = Field("source", description="query field naming a probe group")
    interval_s: float = Field(3600.0, gt=0, description="how often the probe check runs")
    metric: Metric = Field("mrr@10", description="what the alarm watches")
    floor: float | None = Field(None, ge=0, le=1, description="alarm when the metric falls below this "
                                "(unset: no absolute floor; what is good differs by dataset)")
    max_drop: float = Field(0.05, ge=0, le=1, description="alarm when the metric drops this far below its value "
                            "at the version's first check (which sets the baseline and never alarms on it)")
    feedback_fraction: float = Field(0.1, ge=0, le=1,
                                     description="share of feedback (by query hash) that becomes probes")


class DaemonSettings(Group):
    lease_ttl_s: float = Field(30.0, gt=1, description="a daemon that stops renewing loses its lease after this")
    trigger_cooldown_s: float = Field(3600.0, ge=0, description="quiet time after a trigger")
    metrics_port: int = Field(3001, description="where the daemon serves /metrics; 0 = off")
    on_trigger: OnTrigger = Field(OnTrigger.RETRAIN, description="retrain: start a run on a background thread; "
                                  "record: only record the trigger (retraining happens elsewhere)")


class RetrainSettings(Group):
    """When a run starts and what data it takes."""

    min_new_pairs: int = Field(200, ge=1, description="new feedback pairs to train on that a run needs")
    cooldown_s: float = Field(3600.0, ge=0, description="quiet time after a run that produced a version")
    lease_ttl_s: float = Field(120.0, gt=1, description="a run that stops heart-beating loses its lease")
    replay_ratio: float = Field(0.5, ge=0, description="replayed earlier pairs per new pair")
    max_key_share: float = Field(1.0, gt=0, le=1, description="most of a run's new pairs (after screening) one "
                                 "API key's feedback may make up when others sent some too (a sample of the excess "
                                 "is left out); 1 = no cap. It also cuts an honest majority key: see docs/access.md")
    plausible_rank: int = Field(100, ge=0, description="a new pair is implausible when the parent ranks its answer "
                                "below this place for its question; 0 = no screening")
    max_implausible_share: float = Field(0.5, ge=0, le=1, description="a key with more implausible new pairs than "
                                         "this share has all its new pairs left out of the run")
    validation_fraction: float = Field(0.05, gt=0, lt=1, description="share of pairs (by query hash) held out")
    max_validation: int = Field(200, ge=10, description="validation queries used to choose the interpolation")


class TrainingSettings(Group):
    """How a run trains: how many steps is chosen on the validation split, within a budget."""

    learning_rate: float = Field(2e-5, gt=0, le=1e-3, description="peak learning rate")
    epochs: float = Field(1.0, gt=0, description="passes over the run's pairs, at least")
    min_steps: int = Field(200, ge=0, description="optimizer steps at least: small batches get more passes "
                           "(up to max_epochs), so a few hundred pairs still train")
    max_epochs: float = Field(8.0, gt=0, description="passes at most, however few the pairs")
    evaluations: int = Field(8, ge=0, description="validation checks over a run; the best one is kept "
                             "(0 = keep the last weights)")
    patience: int = Field(3, ge=1, description="stop after this many validation checks without a gain")
    validation_queries: int = Field(256, ge=10, description="validation queries a check ranks (a seeded sample of "
                                    "the split, so a check costs seconds however large the run)")
    batch_size: int = Field(32, ge=2, description="pairs per step (in-batch negatives)")
    max_seq_length: int = Field(64, ge=16, description="tokens per text while training (serving keeps its own)")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 where the CPU has "
                                                       "avx512_bf16 / AMX (about 1.5x faster training), else fp32")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps spent warming up")
    seed: int = Field(42, description="seeds training, sampling and the replay draw")
    interpolation: list[float] = Field([0.25, 0.5, 0.75, 1.0], min_length=1,
                                       description="share of fine-tuned weights tried on validation")
    interpolation_tolerance: float = Field(0.005, ge=0, description="the smallest share within this of the best "
                                           "validation score is kept: the least change that keeps the gain")
    compatibility_weights: list[NonNegativeFloat] = Field(
        [0.0, 1.0], min_length=1, description="weights of a backward-compatible term tried (one training each): "
        "each query also ranked against the parent's embeddings of the batch's documents, so stored vectors keep "
        "working; 0 = the plain objective. Validation chooses among them; [0] = one plain training, half the time")
    compatibility_keep: float = Field(0.99, gt=0, le=1, description="a weight is chosen only if its validation "
                                      "score is at least this share of the best weight's; among those, the one "
                                      "whose queries rank best against the parent's stored vectors")



class MiningSettings(Group):
    num_negatives: int = Field(1, ge=0, description="mined hard negatives per pair; 0 = in-batch negatives only")
    range_max: int = Field(30, ge=2, description="negatives are picked from the parent's top N")
    relative_margin: float = Field(0.05, ge=0, lt=1,
                                   description="a negative must score below (1 - margin) x the positive")


class GateSettings(Group):
    """What a candidate must show before it can be promoted, measured on its int8 graph as served.
    Probe comparisons are paired per query, with a bootstrap confidence interval."""

    metric: Metric = Field("mrr@10", description="probe metric a candidate must improve")
    min_gain: float = Field(0.005, ge=0, description="the gain's lower confidence bound must reach this")
    max_regression: float = Field(0.01, ge=0, description="a group (or the probes production was promoted on) "
                                  "that confidently fell by more than this blocks promotion")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="one-sided confidence of every probe decision")
    min_group_queries: int = Field(30, ge=2, description="groups with fewer probe queries are shown, not gated")
    resamples: int = Field(4999, ge=99, description="bootstrap and permutation resamples (seeded)")
    sts_dataset: Path | None = Field(None, description="jsonl with sentence1, sentence2, score (STS-B style)")
    sts_min_ratio: float = Field(0.98, ge=0, le=1, description="STS Spearman needed, relative to the parent")
    retention_dataset: Path | None = Field(None, description="BEIR folder of general-domain retrieval, never "
                                           "trained on (e.g. se_retention); unset = gate skipped")
    retention_min_ratio: float = Field(0.99, ge=0, le=1,
                                       description="MRR@10 on the retention set needed, relative to the parent")
    compatibility: Literal["off", "record", "require"] = Field(
        "record", description="how the candidate's queries retrieve from production's document vectors (what a "
        "client that stored vectors gets after the update): off, record (shown, not gated), require (a gate)")
    compatibility_tolerance: float = Field(0.0, ge=0, description="compatible: the cross metric is at least "
                                           "production's own minus this")
    query_adapter: bool = Field(True, description="with compatibility measured: fit a query adapter (a rotation "
                                "into production's space) and register it when it retrieves more from production's "
                                "vectors than the plain candidate; served as embedloop@<candidate>~<production>")
    changed_queries: int = Field(10, ge=0, le=100, description="probe questions that gained most and fell most "
                                 "to record with the gate figures, for the review page")


class VectorSettings(Group):
    """The vector database reindexing writes channels' documents to (Qdrant)."""

    url: str | None = Field(None, description="a Qdrant server, e.g. http://qdrant:6333; unset = embedded (local "
                            "mode), files under the state folder")
    api_key: SecretStr | None = Field(None, description="the Qdrant server's API key")
    path: Path | None = Field(None, description="the embedded database's folder (default: <home>/vectors)")
    chunk: int = Field(256, ge=1, le=10_000, description="documents embedded and written per step")


class PromotionSettings(Group):
    policy: Literal["auto", "manual"] = Field("manual", description="auto: a candidate passing every gate goes "
                                              "to production; manual: it waits for approval")
    webhook_url: str | None = Field(None, description="receives a JSON event after each approval or rollback")
    webhook_attempts: int = Field(3, ge=1, description="tries per event")
    webhook_timeout_s: float = Field(5.0, gt=0, description="per try")


class AdminSettings(Group):
    token: SecretStr | None = Field(None, description="a bearer token with the admin scope, to bootstrap the first "
                                    "API key over HTTP; unset = only API keys (`embedloop keys create`)")
    session_s: float = Field(8 * 3600, gt=0, description="how long a review-page login lasts (the key is "
                             "re-checked on every page: revoking it ends the session)")


class AccessSettings(Group):
    """API keys and what each may do per period. Until the first key is created, /v1 routes are open
    (the service says so at start-up); from then on every route needs a key. Quotas count per
    server process; a key's own quotas (``keys create --quota``) replace these."""

    refresh_s: float = Field(2.0, gt=0, description="how often a running service re-reads its keys: a new or "
                             "revoked key takes effect within this")
    embed_requests_per_s: int | None = Field(None, ge=1, description="embedding requests per second per key; "
                                             "unset = no limit")
    embed_texts_per_min: int | None = Field(None, ge=1, description="texts embedded per minute per key; "
                                            "unset = no limit")
    feedback_items_per_day: int | None = Field(10_000, ge=1, description="feedback items stored per key in any "
                                               "24 hours (counted in the database); unset = no limit")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDLOOP_", env_nested_delimiter="__", extra="forbid")

    home: Path = Field(Path(".embedloop"), description="state folder")
    storage: StorageSettings = StorageSettings()
    export: ExportSettings = ExportSettings()
    serving: ServingSettings = ServingSettings()
    querylog: QueryLogSettings = QueryLogSettings()
    drift: DriftSettings = DriftSettings()
    probes: ProbeSettings = ProbeSettings()
    daemon: DaemonSettings = DaemonSettings()
    retrain: RetrainSettings = RetrainSettings()
    training: TrainingSettings = TrainingSettings()
    mining: MiningSettings = MiningSettings()
    gates: GateSettings = GateSettings()
    promotion: PromotionSettings = PromotionSettings()
    vectors: VectorSettings = VectorSettings()
    admin: AdminSettings = AdminSettings()
    access: AccessSettings = AccessSettings()

    @model_validator(mode="after")
    def _absolute_paths(self) -> "Settings":
        self.home = self.home.expanduser().resolve()
        if self.storage.models_dir is not None:
            self.storage.models_dir = self.storage.models_dir.expanduser().resolve()
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file belongs to the home folder being opened: a home given as an argument wins
        # over the environment's.
        home = getattr(init_settings, "init_kwargs", {}).get("home") or os.environ.get("EMBEDLOOP_HOME", ".embedloop")
        config_file = Path(os.environ.get("EMBEDLOOP_CONFIG") or Path(home) / "config.yaml")
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=config_file))

    # -- where things are -------------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.storage.models_dir or self.home / "models"

    @property
    def staging_dir(self) -> Path:
        """Beside the version folders (same filesystem): a finished version is renamed into place."""
        return self.models_dir / ".staging"

    @property
    def corpus_cache_dir(self) -> Path:
        return self.home / "cache" / "corpus-embeddings"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def registry_url(self) -> str:
        return self.storage.registry_url or self._sqlite("registry.db")

    @property
    def monitoring_url(self) -> str:
        return self.storage.monitoring_url or self._sqlite("monitoring.db")

    @property
    def querylog_url(self) -> str:
        return self.storage.querylog_url or self._sqlite("querylog.db")

    def _sqlite(self, name: str) -> str:
        return f"sqlite:///{self.home / name}"


def load_settings(home: Path | str | None = None, **overrides: Any) -> Settings:
    """The settings of one state folder (``home``, else ``EMBEDLOOP_HOME``, else ``./.embedloop``)."""
    if home is not None:
        overrides["home"] = Path(home)
    return Settings(**overrides)
