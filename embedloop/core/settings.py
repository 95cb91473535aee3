"""Every setting in one typed place.

Sources, highest priority first: keyword arguments, ``EMBEDLOOP_*`` environment variables
(nested groups with ``__``, e.g. ``EMBEDLOOP_SERVING__MAX_BATCH_TOKENS=8192``), the YAML file
named by ``EMBEDLOOP_CONFIG`` (default ``$EMBEDLOOP_HOME/config.yaml``), then the defaults below.
"""

from __future__ import annotations

import os
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource


class Privacy(str, Enum):
    """What the query log keeps of a sampled text."""

    TEXT = "text"
    HASH = "hash"
    NONE = "none"


class RegistrySettings(BaseModel):
    url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///$EMBEDLOOP_HOME/registry.db")


class ExportSettings(BaseModel):
    quantization: str = Field("auto", description="auto | avx512_vnni | avx512 | avx2 | arm64")
    per_channel: bool = True
    parity_min_mean_cosine: float = Field(0.985, description="int8 vs fp32 mean cosine needed to register")
    parity_min_cosine: float = Field(0.93, description="int8 vs fp32 worst-text cosine needed to register")


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 3000
    model_alias: str = Field("embedloop", description="public model name meaning the production version")
    max_batch_items: int = Field(256, ge=1, description="texts taken from the queue at once")
    sub_batch_items: int = Field(32, ge=1, description="most texts per forward pass (a batch is sorted by length "
                                 "and cut into passes where padding would cost more than a call)")
    pass_overhead_tokens: int = Field(16, ge=0, description="cost of one forward pass beyond its tokens, in tokens; "
                                      "weighs padding against the number of passes")
    max_batch_tokens: int = Field(16384, ge=16,
                                  description="padded tokens (rows x longest row) taken from the queue at once")
    max_wait_ms: float = Field(2.0, ge=0, description="how long a lone request may wait for company")
    max_queue_texts: int = Field(2048, ge=1, description="queued texts before answering 429")
    request_timeout_s: float = Field(30.0, gt=0, description="deadline per request; past it: 504")
    max_inputs: int = Field(2048, ge=1, description="texts per request")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_loaded_versions: int = Field(2, ge=1, description="versions kept in memory, production included")
    alias_poll_s: float = Field(2.0, gt=0, description="how often the production alias is re-read")
    workers: int = Field(1, ge=1, description="server processes, each with its own models and batcher")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads per session; 0 = all cores")
    ort_allow_spinning: bool = Field(False, description="let idle ONNX Runtime threads spin (steals CPU from HTTP)")
    use_gpu: bool = Field(True, description="use CUDA when onnxruntime-gpu and a GPU are present")
    retry_after_s: int = Field(1, ge=1)
    trace_embeddings: bool = Field(False, description="OpenTelemetry spans for /v1/embeddings requests "
                                   "(BentoML records them even with no exporter; they cost throughput)")


class QueryLogSettings(BaseModel):
    enabled: bool = True
    url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///$EMBEDLOOP_HOME/querylog.db")
    sample_rate: float = Field(0.1, ge=0.0, le=1.0, description="fraction of texts stored with embedding")
    privacy: Privacy = Privacy.TEXT
    queue_size: int = Field(10000, ge=1)
    batch_size: int = Field(500, ge=1)
    flush_interval_s: float = Field(0.5, gt=0)
    retention_days: float = Field(30.0, gt=0)
    retention_max_rows: int = Field(1_000_000, ge=1)


class DriftSettings(BaseModel):
    interval_s: float = Field(300.0, gt=0, description="how often the drift check runs")
    window_size: int = Field(200, ge=20, description="new logged queries per window")
    reference_size: int = Field(1000, ge=20, description="reference embeddings, sampled uniformly")
    alpha: float = Field(0.01, gt=0, lt=1, description="level after the multiple-testing correction")
    correction: str = Field("fdr_bh", description="fdr_bh (Benjamini-Hochberg) or bonferroni")
    min_ks: float = Field(0.1, ge=0, le=1, description="effect-size floor per dimension")
    min_share: float = Field(0.0, ge=0, le=1,
                             description="share of drifted dimensions that makes a window drifted; 0 = any one")
    pca_components: int = Field(0, ge=0, description="0 = test raw dimensions")
    consecutive: int = Field(2, ge=1, description="drifted windows in a row before drift is declared")


class ProbeSettings(BaseModel):
    dataset: Path | None = Field(None, description="BEIR folder imported as the probe set when the set is empty")
    split: str = Field("test", description="qrels split of that dataset")
    group_field: str = Field("source", description="query field naming a probe group")
    interval_s: float = Field(3600.0, gt=0, description="how often the probe check runs")
    metric: Literal["recall@10", "mrr@10", "ndcg@10"] = Field("recall@10", description="what the alarm watches")
    floor: float = Field(0.8, ge=0, le=1, description="alarm when the metric falls below")
    max_drop: float = Field(0.05, ge=0, le=1,
                            description="alarm when the metric drops this far below its value at promotion")
    feedback_fraction: float = Field(0.1, ge=0, le=1,
                                     description="share of feedback (by query hash) that becomes probes")


class DaemonSettings(BaseModel):
    lease_ttl_s: float = Field(30.0, gt=1, description="a daemon that stops renewing loses its lease after this")
    trigger_cooldown_s: float = Field(3600.0, ge=0, description="quiet time after a trigger")
    metrics_port: int = Field(3001, description="where the daemon serves /metrics; 0 = off")
    retrain_entry: str = Field("embedloop.app.retrain_entry:on_trigger",
                               description="module:function called with each trigger")


class RetrainSettings(BaseModel):
    policy: Literal["auto", "manual"] = Field("manual", description="auto: a candidate passing every gate goes "
                                              "to production; manual: it waits for approval")
    min_new_pairs: int = Field(200, ge=1, description="new feedback pairs a run needs")
    cooldown_s: float = Field(3600.0, ge=0, description="quiet time after a run ends")
    replay_ratio: float = Field(0.5, ge=0, description="replayed earlier pairs per new pair")
    validation_fraction: float = Field(0.05, gt=0, lt=1, description="share of pairs (by query hash) held out")
    max_validation: int = Field(200, ge=10, description="validation queries used to choose the interpolation")
    learning_rate: float = Field(2e-5, gt=0, le=1e-3)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(32, ge=2)
    max_seq_length: int = Field(64, ge=16, description="tokens per text while training (serving keeps its own)")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 where the CPU has "
                                                       "avx512_bf16 / AMX (about 1.5x faster training), else fp32")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int = 42
    num_negatives: int = Field(1, ge=0, description="mined hard negatives per pair; 0 = in-batch negatives only")
    mining_range_max: int = Field(30, ge=2, description="negatives are picked from the parent's top N")
    mining_relative_margin: float = Field(0.05, ge=0, lt=1,
                                          description="a negative must score below (1 - margin) x the positive")
    interpolation: list[float] = Field([0.5, 0.75, 1.0], min_length=1,
                                       description="share of fine-tuned weights tried; chosen on validation")
    gate_metric: Literal["recall@10", "mrr@10", "ndcg@10"] = "mrr@10"
    min_gain: float = Field(0.005, ge=0, description="probe metric gain over production needed")
    max_regression: float = Field(0.01, ge=0, description="allowed loss on the probe set production was promoted on")
    sts_dataset: Path | None = Field(None, description="jsonl with sentence1, sentence2, score (STS-B style)")
    sts_min_ratio: float = Field(0.98, ge=0, le=1, description="STS Spearman needed, relative to the parent")
    lease_ttl_s: float = Field(120.0, gt=1, description="a run that stops heart-beating loses its lease")
    webhook_url: str | None = Field(None, description="receives a JSON event after each promotion or rollback")
    webhook_attempts: int = Field(3, ge=1)
    webhook_timeout_s: float = Field(5.0, gt=0)


class AdminSettings(BaseModel):
    token: SecretStr | None = Field(None, description="bearer token of the admin API; unset = admin API off")


class MonitoringSettings(BaseModel):
    url: str | None = Field(None, description="SQLAlchemy URL (probe set, corpus, feedback, history); "
                            "default sqlite:///$EMBEDLOOP_HOME/monitoring.db")
    drift: DriftSettings = DriftSettings()
    probes: ProbeSettings = ProbeSettings()
    daemon: DaemonSettings = DaemonSettings()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDLOOP_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(Path(".embedloop"), description="state folder")
    registry: RegistrySettings = RegistrySettings()
    export: ExportSettings = ExportSettings()
    serving: ServingSettings = ServingSettings()
    querylog: QueryLogSettings = QueryLogSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    retrain: RetrainSettings = RetrainSettings()
    admin: AdminSettings = AdminSettings()

    @model_validator(mode="after")
    def _absolute_home(self) -> "Settings":
        self.home = self.home.expanduser().resolve()
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
        home = Path(os.environ.get("EMBEDLOOP_HOME", ".embedloop"))
        config_file = Path(os.environ.get("EMBEDLOOP_CONFIG", home / "config.yaml"))
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=config_file))

    @cached_property
    def models_dir(self) -> Path:
        return self.home / "models"

    @cached_property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def registry_url(self) -> str:
        return self.registry.url or f"sqlite:///{self.home / 'registry.db'}"

    @property
    def monitoring_url(self) -> str:
        return self.monitoring.url or f"sqlite:///{self.home / 'monitoring.db'}"

    @cached_property
    def corpus_cache_dir(self) -> Path:
        return self.home / "cache" / "corpus-embeddings"

    @cached_property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def scheduler_url(self) -> str:
        return f"sqlite:///{self.home / 'scheduler.db'}" if self.monitoring.url is None else self.monitoring.url

    @property
    def querylog_url(self) -> str:
        return self.querylog.url or f"sqlite:///{self.home / 'querylog.db'}"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
