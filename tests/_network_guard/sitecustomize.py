"""Install the loopback-only network guard in Python child processes of the test suite.

Python imports ``sitecustomize`` at start-up from the first ``sys.path`` entry that has one, and
``PYTHONPATH`` entries come first. The test suite puts this folder on ``PYTHONPATH`` and sets
``UNIMSE_NETWORK_GUARD=1``, so every Python child it launches runs this file, which installs
``hub_network_guard`` and then runs the ``sitecustomize`` this one shadows, if any.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _install_guard() -> None:
    """Install the guard when the environment asks for it."""
    if os.environ.get("UNIMSE_NETWORK_GUARD") != "1":
        return
    import hub_network_guard

    hub_network_guard.install(log_path=os.environ.get("UNIMSE_NETWORK_GUARD_LOG") or None)


def _run_shadowed_sitecustomize() -> None:
    """Execute the next ``sitecustomize`` on ``sys.path``, which this file hides."""
    search_path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", search_path)
    if spec is None or spec.loader is None or spec.origin == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_install_guard()
_run_shadowed_sitecustomize()
