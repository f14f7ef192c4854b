"""Helpers for tests that talk to the in-memory test Hub (``hub_server.HubServer``).

This module must not import ``huggingface_hub`` or ``transformers``: ``tests/conftest.py`` uses it to
set the environment *before* those libraries are imported (``huggingface_hub`` reads ``HF_ENDPOINT``
once, at import time).

* :func:`hub_environment`: the variables that point the Hub clients at the test server.
* :func:`guard_environment`: the variables that make Python child processes install the network guard.
* :func:`subprocess_env`: a complete environment for a child process: test Hub, an empty cache and
  the guard.
* :func:`load_network_guard`: import ``tests/_network_guard/hub_network_guard.py`` under its
  top-level name, as child processes do.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from hub_server import TEST_TOKEN, TEST_USER

__all__ = [
    "ENV_SCRATCH",
    "GUARD_DIR",
    "TEST_TOKEN",
    "TEST_USER",
    "GuardMonitor",
    "RepoIdFactory",
    "cache_environment",
    "guard_environment",
    "hub_environment",
    "load_network_guard",
    "subprocess_env",
]

GUARD_DIR = Path(__file__).resolve().parent / "_network_guard"
"""Folder holding ``sitecustomize.py`` and ``hub_network_guard.py``; goes on a child's ``PYTHONPATH``."""

ENV_SCRATCH = "UNIMSE_TEST_SCRATCH"
"""Environment variable naming the session's scratch folder (fresh caches are made there)."""


class RepoIdFactory(Protocol):
    """What the ``hub_repo_id`` fixture gives a test: ``hub_repo_id(name=None) -> "tester/<name>-<uuid8>"``."""

    def __call__(self, name: str | None = None) -> str:
        """Return a repo id no other test uses; ``name`` defaults to the test's name."""
        ...


class GuardMonitor(Protocol):
    """What the ``network_guard_monitor`` fixture gives a test (see ``tests/conftest.py``)."""

    def take(self) -> list[str]:
        """Return the network attempts blocked since the test started (or the last call); forget them."""
        ...


_CACHE_VARIABLES_TO_DROP = ("HF_MODULES_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def load_network_guard() -> types.ModuleType:
    """Import the guard module as ``hub_network_guard`` (the name child processes use)."""
    existing = sys.modules.get("hub_network_guard")
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location("hub_network_guard", GUARD_DIR / "hub_network_guard.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load the network guard from {GUARD_DIR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hub_network_guard"] = module
    spec.loader.exec_module(module)
    return module


def hub_environment(endpoint: str, token: str = TEST_TOKEN) -> dict[str, str]:
    """Variables that point ``huggingface_hub``/``transformers`` at the test Hub at ``endpoint``."""
    return {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    }


def cache_environment(hf_home: str | os.PathLike[str]) -> dict[str, str]:
    """Variables that place every Hugging Face cache under ``hf_home``."""
    home = Path(hf_home)
    return {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_DATASETS_CACHE": str(home / "datasets"),
    }


def guard_environment(log_path: str | os.PathLike[str] | None, pythonpath: str | None = None) -> dict[str, str]:
    """Variables that make a Python child process install the network guard.

    ``pythonpath`` is the ``PYTHONPATH`` to extend (default: this process's); the guard folder is put
    first so that its ``sitecustomize`` runs.
    """
    current = os.environ.get("PYTHONPATH", "") if pythonpath is None else pythonpath
    entries = [entry for entry in current.split(os.pathsep) if entry and Path(entry).resolve() != GUARD_DIR]
    env = {"PYTHONPATH": os.pathsep.join([str(GUARD_DIR), *entries]), "UNIMSE_NETWORK_GUARD": "1"}
    if log_path is not None:
        env["UNIMSE_NETWORK_GUARD_LOG"] = str(log_path)
    return env


def subprocess_env(
    hf_home: str | os.PathLike[str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A full environment for a child process that uses the test Hub.

    It copies ``os.environ`` and sets the test Hub endpoint and token, a cache rooted at ``hf_home``
    (default: a new, empty folder in the session's scratch area, so the child downloads everything
    again and gets its own ``HF_MODULES_CACHE``), and the network guard (``PYTHONPATH`` plus
    ``UNIMSE_NETWORK_GUARD=1``; blocked attempts go to the session's guard log, which the
    ``tests/conftest.py`` fixtures check after each test). ``extra`` is applied last.

    Requires the environment set up by ``tests/conftest.py`` (``HF_ENDPOINT`` in particular).
    """
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        raise RuntimeError("HF_ENDPOINT is not set: subprocess_env() needs the test Hub from tests/conftest.py")
    env = dict(os.environ)
    for name in _CACHE_VARIABLES_TO_DROP:
        env.pop(name, None)
    if hf_home is None:
        scratch = os.environ.get(ENV_SCRATCH) or None
        hf_home = tempfile.mkdtemp(prefix="hf-home-", dir=scratch)
    Path(hf_home).mkdir(parents=True, exist_ok=True)
    env.update(hub_environment(endpoint, os.environ.get("HF_TOKEN", TEST_TOKEN)))
    env.update(cache_environment(hf_home))
    env.update(guard_environment(os.environ.get("UNIMSE_NETWORK_GUARD_LOG"), env.get("PYTHONPATH", "")))
    if extra:
        env.update(extra)
    return env
