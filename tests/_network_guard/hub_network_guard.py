"""A loopback-only network guard for the test suite and the Python processes it launches.

:func:`install` patches the Python ``socket`` module so that any attempt to reach a non-loopback
address raises :class:`NetworkAccessBlockedError` *before* the real system call is made:

* ``socket.socket.connect`` / ``connect_ex`` (which ``socket.create_connection``, ``ssl``, ``asyncio``,
  ``httpx``/``httpcore`` and ``urllib3`` all go through) to an ``AF_INET``/``AF_INET6`` address outside
  127.0.0.0/8 and ``::1``;
* ``socket.socket.sendto`` / ``sendmsg`` with such a destination (connectionless UDP);
* ``socket.getaddrinfo`` / ``gethostbyname`` / ``gethostbyname_ex`` for a host name that would need a
  DNS query (anything but IP literals, ``localhost`` and this machine's own host name), and
  ``gethostbyaddr`` (reverse lookup) of anything but those names and loopback addresses.

``AF_UNIX`` and other local families are always allowed. Each blocked attempt is also recorded, in
memory (:func:`violations`) and, when a log path is given, appended to that file, so that a test
runner can fail a test even when library code swallowed the exception.

Child processes get the same guard through the ``sitecustomize.py`` next to this file: put this
folder on ``PYTHONPATH`` and set ``UNIMSE_NETWORK_GUARD=1`` (and optionally
``UNIMSE_NETWORK_GUARD_LOG=<file>``).

Limits: only Python-level ``socket`` use is guarded. Native code that opens sockets itself (Rust or
C++ extensions such as ``hf_xet`` or ``torch.distributed``'s TCPStore), non-Python subprocesses
(``git``, ``curl``) and Python started with ``-S``/``-I`` are not covered.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

__all__ = [
    "ENV_ENABLE",
    "ENV_LOG",
    "NetworkAccessBlockedError",
    "install",
    "installed",
    "is_allowed_address",
    "is_loopback_host",
    "read_log",
    "spy_on_real_calls",
    "take_violations",
    "uninstall",
    "violations",
]

ENV_ENABLE = "UNIMSE_NETWORK_GUARD"
"""Environment variable: ``1`` makes ``sitecustomize`` install the guard in a child process."""

ENV_LOG = "UNIMSE_NETWORK_GUARD_LOG"
"""Environment variable: file a child process appends its blocked attempts to (one per line)."""

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_SOCKET_METHODS = ("connect", "connect_ex", "sendto", "sendmsg")
_MODULE_FUNCTIONS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr")

_lock = threading.Lock()
_violations: list[str] = []
_log_path: str | None = None
_originals: dict[str, Callable[..., Any]] = {}


class NetworkAccessBlockedError(RuntimeError):
    """Raised instead of opening a connection (or resolving a name) outside the loopback interface.

    It deliberately does not derive from ``OSError``: HTTP clients turn ``OSError`` into connection
    errors that callers may treat as "offline" and swallow, hiding the violation.
    """


def _host_text(host: Any) -> str:
    if isinstance(host, bytes):
        host = host.decode("ascii", errors="replace")
    text = str(host).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.split("%", 1)[0]  # drop an IPv6 scope id


def is_loopback_host(host: Any) -> bool:
    """Whether ``host`` (IP literal or name) designates the loopback interface."""
    text = _host_text(host)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text.lower().rstrip(".") in _LOCAL_NAMES
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_allowed_address(family: int, address: Any) -> bool:
    """Whether a socket of ``family`` may connect or send to ``address``."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # AF_UNIX, AF_NETLINK, ...: local by nature
    if isinstance(address, tuple) and address:
        return is_loopback_host(address[0])
    return False


def _needs_dns(host: Any) -> bool:
    if host is None:
        return False
    text = _host_text(host)
    if not text or text.lower().rstrip(".") in _LOCAL_NAMES:
        return False
    try:
        ipaddress.ip_address(text)
        return False  # a literal resolves without any query
    except ValueError:
        pass
    try:
        own_name = _originals.get("gethostname", socket.gethostname)()
    except OSError:
        own_name = ""
    return text.lower() != str(own_name).lower()


def _block(description: str) -> NoReturn:
    message = f"network guard: blocked {description} (pid {os.getpid()})"
    with _lock:
        _violations.append(message)
        if _log_path:
            try:
                with open(_log_path, "a", encoding="utf-8") as log:
                    log.write(message.replace("\n", " ") + "\n")
            except OSError:
                pass
    raise NetworkAccessBlockedError(message)


def _family_name(family: int) -> str:
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return str(family)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not is_allowed_address(self.family, address):
        _block(f"connect to {address!r} ({_family_name(self.family)})")
    return _originals["connect"](self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not is_allowed_address(self.family, address):
        _block(f"connect_ex to {address!r} ({_family_name(self.family)})")
    return _originals["connect_ex"](self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
    address = args[-1] if args else None
    if address is not None and not is_allowed_address(self.family, address):
        _block(f"sendto {address!r} ({_family_name(self.family)})")
    return _originals["sendto"](self, data, *args)


def _guarded_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> Any:
    address = args[2] if len(args) >= 3 else None
    if address is not None and not is_allowed_address(self.family, address):
        _block(f"sendmsg to {address!r} ({_family_name(self.family)})")
    return _originals["sendmsg"](self, buffers, *args)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if _needs_dns(host):
        _block(f"DNS lookup of {host!r} (getaddrinfo)")
    return _originals["getaddrinfo"](host, *args, **kwargs)


def _guarded_gethostbyname(host: Any) -> Any:
    if _needs_dns(host):
        _block(f"DNS lookup of {host!r} (gethostbyname)")
    return _originals["gethostbyname"](host)


def _guarded_gethostbyname_ex(host: Any) -> Any:
    if _needs_dns(host):
        _block(f"DNS lookup of {host!r} (gethostbyname_ex)")
    return _originals["gethostbyname_ex"](host)


def _guarded_gethostbyaddr(host: Any) -> Any:
    if _needs_dns(host) or _is_remote_literal(host):
        _block(f"reverse DNS lookup of {host!r} (gethostbyaddr)")
    return _originals["gethostbyaddr"](host)


def _is_remote_literal(host: Any) -> bool:
    try:
        return not ipaddress.ip_address(_host_text(host)).is_loopback
    except ValueError:
        return False


_REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "connect": _guarded_connect,
    "connect_ex": _guarded_connect_ex,
    "sendto": _guarded_sendto,
    "sendmsg": _guarded_sendmsg,
    "getaddrinfo": _guarded_getaddrinfo,
    "gethostbyname": _guarded_gethostbyname,
    "gethostbyname_ex": _guarded_gethostbyname_ex,
    "gethostbyaddr": _guarded_gethostbyaddr,
}


def install(log_path: str | None = None) -> None:
    """Install the guard in this process (idempotent); ``log_path`` also receives each violation."""
    global _log_path
    with _lock:
        _log_path = log_path
        if _originals:
            return
        _originals["gethostname"] = socket.gethostname
        for name in _SOCKET_METHODS:
            if hasattr(socket.socket, name):
                _originals[name] = getattr(socket.socket, name)
                setattr(socket.socket, name, _REPLACEMENTS[name])
        for name in _MODULE_FUNCTIONS:
            _originals[name] = getattr(socket, name)
            setattr(socket, name, _REPLACEMENTS[name])


def uninstall() -> None:
    """Restore the original ``socket`` functions."""
    with _lock:
        for name in _SOCKET_METHODS:
            if name in _originals:
                setattr(socket.socket, name, _originals[name])
        for name in _MODULE_FUNCTIONS:
            if name in _originals:
                setattr(socket, name, _originals[name])
        _originals.clear()


def installed() -> bool:
    """Whether the guard is active in this process."""
    return bool(_originals) and socket.socket.connect is _guarded_connect


def violations() -> list[str]:
    """Blocked attempts recorded in this process so far."""
    with _lock:
        return list(_violations)


def take_violations() -> list[str]:
    """Return the blocked attempts recorded in this process and forget them."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
        return taken


def read_log(path: str | os.PathLike[str], offset: int = 0) -> tuple[list[str], int]:
    """Read violations a child process appended to ``path`` after byte ``offset``.

    Returns the lines and the new offset.
    """
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read()
    except FileNotFoundError:
        return [], offset
    lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return lines, offset + len(data)


@contextlib.contextmanager
def spy_on_real_calls() -> Iterator[list[tuple[str, Any]]]:
    """Record every call the guard lets through to the real ``socket`` functions.

    Within the block, each call that reaches the original ``connect``/``connect_ex``/``sendto``/
    ``sendmsg``/``getaddrinfo``/``gethostbyname(_ex)``/``gethostbyaddr`` is appended to the yielded list as
    ``(name, target)`` and then performed. A blocked attempt never shows up there, which is how a
    test proves that nothing was sent.
    """
    if not _originals:
        raise RuntimeError("The network guard is not installed")
    calls: list[tuple[str, Any]] = []
    saved = dict(_originals)

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def method_spy(self: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append((name, args[-1] if name in ("sendto",) and args else target))
            return real(self, target, *args, **kwargs)

        def function_spy(target: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append((name, target))
            return real(target, *args, **kwargs)

        return method_spy if name in _SOCKET_METHODS else function_spy

    with _lock:
        for name in (*_SOCKET_METHODS, *_MODULE_FUNCTIONS):
            if name in saved:
                _originals[name] = spy(name, saved[name])
    try:
        yield calls
    finally:
        with _lock:
            _originals.update(saved)
