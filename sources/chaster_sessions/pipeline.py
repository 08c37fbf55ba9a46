"""How a run's dlt pipeline is built: its name, its destination and its own local folder.

dlt keeps a pipeline's local state, pending load packages and schema in one folder,
`<pipelines dir>/<pipeline name>`, chosen by the name alone. Two runs that share a name would
share that folder: one would wait on the other's run lock, take the other's interrupted run for
its own and discard its pending package. So every destination (a DuckDB file, a database and
dataset) gets a folder of its own, `<pipelines dir>/<name>@<destination key>/<name>`, while the
name stays what dlt stores and restores the state in the destination by: a file loaded before
keeps its cursors, sweep clock and run history.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.reference import Destination
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.dataset.utils import get_destination_client_initial_config
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from .errors import ConfigError
from .settings import DATASET, PIPELINE_NAME

# what tells two databases of one kind apart; never a password or a key
_IDENTIFYING = ("drivername", "username", "host", "port", "database", "project_id", "account")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Target:
    """Where a pipeline loads, told apart without any secret."""

    label: str  # readable: "duckdb-chaster_sessions", "warehouse-chaster"
    identity: str  # what makes it this one: the file's path, or the database's address
    legacy: str  # how the folder marker of version 0.2 named it (see `adopt_legacy_folder`)

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:10]
        return f"{self.label}-{digest}"


def check_pipeline_name(name: str) -> str:
    """A pipeline name is a folder name and dlt's key of the state: letters, digits, `_.-`."""
    if not _NAME.match(name):
        raise ConfigError(
            f"pipeline name {name!r} is not allowed (letters, digits, `_`, `.` and `-`, at most "
            "64); set CHASTER__PIPELINE_NAME, pipeline_name under [chaster] or --pipeline-name"
        )
    return name


def configured_destination() -> str | None:
    """The destination named by CHASTER__DESTINATION or `[chaster] destination` in config.toml;
    `duckdb` (or nothing) means the DuckDB file."""
    name = dlt.config.get("chaster.destination", str)
    return None if not name or name == "duckdb" else name


def configured_name(default: str = PIPELINE_NAME) -> str:
    """The pipeline name set as CHASTER__PIPELINE_NAME or `[chaster] pipeline_name`, else
    `default`."""
    return check_pipeline_name(dlt.config.get("chaster.pipeline_name", str) or default)


def duckdb_destination(path: Path) -> Any:
    """dlt's DuckDB destination on `path`, given as credentials rather than a string: dlt
    parses a string as a connection URL first, which imports SQLAlchemy (0.2 s of every run)."""
    credentials = DuckDbCredentials()
    credentials.database = str(path)
    return dlt.destinations.duckdb(credentials)


def target(destination: Any, dataset: str = DATASET) -> Target:
    """Resolve a destination's configuration (as its load will) and name where it loads.

    A missing or unknown setting fails here, before any request to the API.
    """
    reference: Any = Destination.from_reference(destination)
    config = reference.configuration(
        get_destination_client_initial_config(reference, dataset_name=dataset)
    )
    credentials = getattr(config, "credentials", None)
    kind = str(reference.destination_type).rsplit(".", 1)[-1]
    database = getattr(credentials, "database", None)
    if kind == "duckdb" and isinstance(database, str):
        path = Path(database).resolve()
        return Target(f"duckdb-{path.stem}", f"duckdb:{path}|{dataset}", str(path))
    parts = [f"{name}={getattr(credentials, name, None)}" for name in _IDENTIFYING]
    parts.append(f"bucket_url={getattr(config, 'bucket_url', None)}")
    name = reference.destination_name
    return Target(
        _safe(f"{name}-{dataset}"),
        f"{name}:{kind}:{';'.join(parts)}|{dataset}",
        f"{name}/{dataset}",
    )


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:60]


def local_pipelines_dir(pipeline_name: str, where: Target) -> Path:
    """The folder dlt is given as `pipelines_dir` for this name and destination."""
    return Path(get_dlt_pipelines_dir()) / f"{pipeline_name}@{where.key}"


def adopt_legacy_folder(pipeline_name: str, where: Target, pipelines_dir: Path) -> None:
    """Move version 0.2's shared folder here when it last loaded this destination.

    0.2 kept one folder per name and wrote the destination it last loaded into
    `destination.txt`. State restores from the destination anyway; what only that folder holds
    is a package a killed run extracted but did not load, which the next run loads first.
    """
    legacy = Path(get_dlt_pipelines_dir()) / pipeline_name
    marker = legacy / "destination.txt"
    working = pipelines_dir / pipeline_name
    if working.exists() or not marker.is_file() or marker.read_text() != where.legacy:
        return
    pipelines_dir.mkdir(parents=True, exist_ok=True)
    shutil.move(str(legacy), str(working))


def chaster_pipeline(
    destination: Any, pipeline_name: str = PIPELINE_NAME, dataset: str = DATASET
) -> dlt.Pipeline:
    """The pipeline the command and the Dagster assets run: `destination` (a dlt destination or
    the name of one configured under `[destination.NAME]`), in its own local folder."""
    check_pipeline_name(pipeline_name)
    where = target(destination, dataset)
    folder = local_pipelines_dir(pipeline_name, where)
    adopt_legacy_folder(pipeline_name, where, folder)
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset,
        pipelines_dir=str(folder),
    )
