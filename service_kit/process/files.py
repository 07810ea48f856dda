"""What the processes write to disk (SQLite files, the local spool, the file cache, worker
heartbeats) is readable by the service's own user only."""

import os
from pathlib import Path

RUN_DIR = Path("var/run")  # worker heartbeats, beside the other files of `make run`


def keep_files_private() -> None:
    """Files this process (and those it starts) creates are 0600, folders 0700. Called first
    by every entry point: web (gunicorn's configuration), worker, migration."""
    os.umask(0o077)


def run_dir() -> Path:
    RUN_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    return RUN_DIR
