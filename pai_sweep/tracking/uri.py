"""Where a sweep's runs go: tracking.name and tracking.uri checked before the sweep starts (one line each),
and where a run of a sqlite store keeps its artifacts on disk. No mlflow import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pai_sweep.errors import TrackingError

ARTIFACTS_DIR = "mlartifacts"  # beside a sqlite store: where `mlflow ui`/`mlflow server` serve mlflow-artifacts:/ from
_DB_SCHEMES = ("postgresql", "mysql", "mssql")
_SCHEMES = ("http", "https", "sqlite", *_DB_SCHEMES, "databricks", "databricks-uc", "file")


def setting(cfg, key: str, default: Any = None) -> Any:
    """tracking_cfg[key] from a DictConfig, dict or object; `default` when missing or None."""
    if cfg is None:
        return default
    value = cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)
    return default if value is None else value


def validate_tracking(tracking_cfg) -> str | None:
    """Check tracking.name and tracking.uri before the sweep starts; the URI to use (None: off).

    Raises TrackingError with one line naming the problem and the valid forms.
    """
    name = setting(tracking_cfg, "name", "mlflow")
    if name == "off":
        return None
    if name != "mlflow":
        raise TrackingError(f"tracking.name={name!r} is not known; valid values: mlflow, off")
    uri = setting(tracking_cfg, "uri")
    if uri is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    return None if uri is None else _check_uri(str(uri))


def _check_uri(uri: str) -> str:
    hint = ("use sqlite:///ABS/PATH/mlflow.db, http(s)://HOST:PORT, a database URL "
            "(postgresql://USER@HOST/DB), or null for MLflow's default sqlite mlflow.db in the working folder")
    bad = f"tracking.uri={uri!r} is not a valid tracking URI"
    if not uri or uri != uri.strip() or " " in uri:
        raise TrackingError(f"{bad} (empty or contains spaces); {hint}")
    if uri in ("databricks", "databricks-uc"):  # MLflow's names for a Databricks workspace
        return uri
    if "://" not in uri:
        raise TrackingError(f"{bad} (no scheme: a bare path would be MLflow's retired file store); {hint}")
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme not in _SCHEMES:
        raise TrackingError(f"{bad} (unknown scheme {parts.scheme!r}; valid: {', '.join(_SCHEMES)}); {hint}")
    if scheme in ("http", "https", *_DB_SCHEMES):
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        if not parts.hostname or not port_ok:
            raise TrackingError(f"{bad} (missing host or bad port); {hint}")
    if scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if not path or path.startswith(":memory:"):
            raise TrackingError(f"{bad} (sqlite needs a file: sqlite:///ABS/PATH/mlflow.db; an in-memory store loses the sweep)")
    if scheme == "file" and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise TrackingError(f"{bad} (MLflow 3 retired the file store); {hint}")
    return uri


def local_artifact_dir(uri: str, artifact_uri: str) -> Path | None:
    """Where a run of a sqlite store keeps its artifacts on disk (<db folder>/mlartifacts/...), for reading them
    from Python without a server; None for other stores (use MlflowClient.list_artifacts / download_artifacts)."""
    if not (artifact_uri.startswith("mlflow-artifacts:") and uri.startswith("sqlite:///")):
        return None
    return Path(uri[len("sqlite:///"):]).parent / ARTIFACTS_DIR / artifact_uri[len("mlflow-artifacts:"):].lstrip("/")
