"""Shared pytest configuration for the unimse-hf test suite.

Sections:

1. Test Hub and environment: started at import time, *before* any test module can import
   ``huggingface_hub`` (which reads ``HF_ENDPOINT`` once, at import).
2. Network guard: only loopback connections are allowed, in this process and in Python children.
3. Hub fixtures: ``hub_server``, ``hub_repo_id``, ``empty_hf_cache``.
4. Project fixtures: add new fixtures below, in their own section.

This file must not import ``huggingface_hub``, ``transformers`` or anything that imports them at
module level; import them inside fixtures.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS_DIR = Path(__file__).resolve().parent
if str(_TESTS_DIR) not in sys.path:  # e.g. with --import-mode=importlib
    sys.path.insert(0, str(_TESTS_DIR))

import hub_testing  # noqa: E402 - needs the path above
from hub_server import HubServer  # noqa: E402

# =====================================================================================================
# 1. Test Hub and environment (runs at conftest import)
# =====================================================================================================

if "huggingface_hub" in sys.modules:
    raise pytest.UsageError(
        "huggingface_hub was imported before tests/conftest.py, so it already computed its endpoint. "
        "The offline test Hub cannot be used; do not import huggingface_hub/transformers in a plugin or "
        "a higher-level conftest."
    )

_SCRATCH = Path(tempfile.mkdtemp(prefix="unimse-tests-"))
_GUARD_LOG = _SCRATCH / "network-guard.log"
_SESSION_HF_HOME = _SCRATCH / "hf_home"
_SESSION_HF_HOME.mkdir()

HUB = HubServer(port=int(os.environ.get("UNIMSE_TEST_HUB_PORT", "0"))).start()
"""The session's test Hub (also available as the ``hub_server`` fixture)."""


def _shutdown_session() -> None:
    HUB.stop()
    shutil.rmtree(_SCRATCH, ignore_errors=True)


atexit.register(_shutdown_session)

for _name in ("HF_MODULES_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.pop(_name, None)
os.environ.update(hub_testing.hub_environment(HUB.endpoint))
os.environ.update(hub_testing.cache_environment(_SESSION_HF_HOME))
os.environ[hub_testing.ENV_SCRATCH] = str(_SCRATCH)

# =====================================================================================================
# 2. Network guard
# =====================================================================================================
# In this process: the socket module is patched now, before any test code runs. Blocked attempts
# raise NetworkAccessBlockedError and are recorded; `_network_guard_check` fails the test that made them,
# even if library code swallowed the exception.
# In Python children: PYTHONPATH starts with tests/_network_guard, whose sitecustomize.py installs
# the same guard when UNIMSE_NETWORK_GUARD=1, and logs attempts to the session's guard log, which
# `_network_guard_check` reads too. Every subprocess inherits these variables; `subprocess_env()`
# (hub_testing.py) adds an empty cache.

network_guard = hub_testing.load_network_guard()
network_guard.install()
os.environ.update(hub_testing.guard_environment(_GUARD_LOG))


_OUTSIDE_TESTS: list[str] = []
"""Blocked attempts made between tests (collection, imports, session fixtures)."""
_guard_log_offset = 0


class NetworkGuardMonitor:
    """Collects the blocked network attempts of one test (in-process and from child processes)."""

    def __init__(self, log_path: Path) -> None:
        global _guard_log_offset
        self._log_path = log_path
        between, _guard_log_offset = network_guard.read_log(log_path, _guard_log_offset)
        _OUTSIDE_TESTS.extend(network_guard.take_violations() + between)
        self._offset = _guard_log_offset

    def take(self) -> list[str]:
        """Return the attempts blocked since the test started (or the last call) and forget them."""
        global _guard_log_offset
        found = network_guard.take_violations()
        child_lines, self._offset = network_guard.read_log(self._log_path, self._offset)
        _guard_log_offset = self._offset
        return found + child_lines


@pytest.fixture(autouse=True)
def _network_guard_check() -> Iterator[NetworkGuardMonitor]:
    """Fail any test during which a non-loopback connection or DNS lookup was attempted."""
    monitor = NetworkGuardMonitor(_GUARD_LOG)
    yield monitor
    leaked = monitor.take()
    if leaked:
        pytest.fail("Network access outside loopback was attempted:\n" + "\n".join(leaked), pytrace=False)


@pytest.fixture
def network_guard_monitor(_network_guard_check: NetworkGuardMonitor) -> NetworkGuardMonitor:
    """The current test's guard monitor: call ``take()`` to consume violations a test provokes on purpose."""
    return _network_guard_check


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a blocked attempt happened outside any test (e.g. at import time)."""
    child_lines, _ = network_guard.read_log(_GUARD_LOG, _guard_log_offset)
    outside = _OUTSIDE_TESTS + network_guard.take_violations() + child_lines
    if outside:
        sys.stderr.write("Network access outside loopback was attempted outside tests:\n" + "\n".join(outside) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# =====================================================================================================
# 3. Hub fixtures
# =====================================================================================================


@pytest.fixture(scope="session")
def hub_server() -> HubServer:
    """The in-memory test Hub that ``HF_ENDPOINT`` points to (shared by the whole session)."""
    return HUB


@pytest.fixture(autouse=True)
def _hub_server_hygiene() -> Iterator[None]:
    """Fail a test that crashed the test Hub or called an endpoint it lacks; drop unused faults.

    A crash or a missing endpoint would otherwise reach the client as a 500/404 and could be
    mistaken for behaviour of the real Hub. Fault rules a test injected but did not use up are
    removed so that they cannot leak into the next test.
    """
    errors_before = len(HUB.internal_errors)
    unknown_before = len(HUB.unknown_routes)
    yield
    HUB.clear_faults()
    problems = HUB.internal_errors[errors_before:]
    problems += [f"endpoint not implemented by the test Hub: {route}" for route in HUB.unknown_routes[unknown_before:]]
    if problems:
        pytest.fail("The test Hub could not serve this test:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def hub_repo_id(request: pytest.FixtureRequest) -> hub_testing.RepoIdFactory:
    """Factory of unique repo ids ``tester/<name>-<uuid8>``; ``name`` defaults to the test's name."""

    def make(name: str | None = None) -> str:
        base = name or request.node.name
        slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:60] or "repo"
        return f"{HUB.user}/{slug}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty ``HF_HOME`` (with ``HF_HUB_CACHE`` under it) for this test and its subprocesses.

    Sets the environment variables (inherited by children, which also get a fresh
    ``HF_MODULES_CACHE`` under it) and the already-imported ``huggingface_hub`` constants. In this
    process, transformers' ``HF_MODULES_CACHE`` stays the session one (it is fixed at import).
    """
    home = tmp_path / "hf_home"
    home.mkdir()
    for key, value in hub_testing.cache_environment(home).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_MODULES_CACHE", raising=False)
    # Imported here, after section 1 set HF_ENDPOINT, so that its constants are the session ones
    # and only the cache paths below change (and are restored) for this test.
    from huggingface_hub import constants
    from huggingface_hub.utils import _cache_manager

    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(home / "assets"))
    monkeypatch.setattr(constants, "HF_XET_CACHE", str(home / "xet"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(home / "hub"))
    return home


# =====================================================================================================
# 4. Project fixtures (add new sections below)
# =====================================================================================================


@pytest.fixture(scope="module")
def single_thread_torch() -> Iterator[None]:
    """Run a module's in-process training on one torch thread, restoring the setting afterwards.

    Tiny models gain nothing from intra-op threads, and on a busy 2-core host they slow every step several
    times over. Use with ``pytestmark = pytest.mark.usefixtures("single_thread_torch")``.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
