"""An in-memory, Hugging Face Hub-compatible HTTP server for offline tests.

The server speaks the subset of the Hub HTTP API that ``huggingface_hub`` 2.4 and ``transformers`` 5.24
use for uploads and downloads (see ``shared/docs/hub-offline-testing.md``), so that the real client code
(``create_repo``, ``upload_folder``, ``push_to_hub``, ``hf_hub_download``, ``snapshot_download``,
``from_pretrained``, ``Trainer(push_to_hub=True)``) can run against it with no internet access.

It runs two ``ThreadingHTTPServer`` instances bound to 127.0.0.1 only:

* the *Hub* (``HubServer.endpoint``): repository API, ``resolve`` downloads, git-LFS batch and verify;
* the *CDN* (``HubServer.cdn_endpoint``), a second port that stands in for the LFS storage: LFS
  ``resolve`` requests answer ``302`` to it, and LFS uploads are ``PUT`` to it. Because it is another
  origin, the client does not follow the redirect on ``HEAD`` and drops the ``Authorization`` header,
  as it does with the real CDN.

Every commit is an immutable snapshot with a 40-hex sha; a revision can be a branch, a tag, a commit
sha or ``refs/pr/N``. Repositories can be of type model, dataset or space.

For reliability tests, :meth:`HubServer.inject_faults` makes the next N requests whose path matches a
regular expression answer a given status or drop the connection, and :attr:`HubServer.request_log`
records every request (method, path, status).

Fidelity gaps (what this server does *not* reproduce):

* the Xet upload/download path, which production uses by default (tests must set
  ``HF_HUB_DISABLE_XET=1``; ``/xet-write-token`` is not implemented);
* real git: there is no ``git clone``/``git push`` endpoint, ``.gitattributes`` is not parsed, and
  the regular-vs-LFS decision is a fixed rule (size > 10 MB or a binary-ish suffix);
* the Hub's full metadata validator: only YAML syntax, a mapping at the top level, the types of a
  few common keys and the structure of ``model-index`` are checked (no license, language or task
  vocabulary checks);
* how the Hub infers ``pipeline_tag``, ``library_name``, tags and ``transformersInfo``: here they come
  only from the card metadata and ``config.json`` by simple rules (``pipeline_tag`` is never inferred);
* rate limits, gated repos, organisations, discussions (a PR is only a ``refs/pr/N`` ref), webhooks;
* multipart LFS uploads (the server never sends ``chunk_size``) and ``shouldIgnore``/``.gitignore``;
* pagination of tree and commit listings (everything comes in one page);
* case-insensitive repo ids, repo renames, legacy repo ids without a namespace.
"""

from __future__ import annotations

import base64
import contextlib
import email.message
import hashlib
import http.server
import itertools
import json
import mimetypes
import posixpath
import re
import socket
import threading
import traceback
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

__all__ = [
    "LFS_SIZE_THRESHOLD",
    "LFS_SUFFIXES",
    "STATUS_DROPPED",
    "TEST_TOKEN",
    "TEST_USER",
    "Commit",
    "FaultRule",
    "HubServer",
    "RequestRecord",
    "StoredFile",
    "is_lfs_path",
    "validate_card_metadata",
]

TEST_TOKEN = "hf_test_token"
"""The only token the server accepts (write access to the ``tester`` namespace)."""

TEST_USER = "tester"
"""The user the test token belongs to."""

LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
"""Files strictly larger than this many bytes are stored with git-LFS."""

LFS_SUFFIXES: tuple[str, ...] = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib", ".mlmodel",
    ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt",
    ".pth", ".rar", ".safetensors", ".tar", ".task", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
)  # fmt: skip
"""Path suffixes always stored with git-LFS, whatever their size (as are TensorBoard ``*tfevents*`` files)."""

STATUS_DROPPED = 0
"""Status recorded in the request log when a connection was dropped without a response."""

DEFAULT_BRANCH = "main"
REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")
_API_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_PR_RE = re.compile(r"^refs/pr/(\d+)$")
_LFS_JSON = "application/vnd.git-lfs+json"
_MODEL_INFO_CONFIG_KEYS = (
    "architectures",
    "model_type",
    "auto_map",
    "custom_pipelines",
    "task_specific_params",
    "quantization_config",
)

FaultAction = int | Literal["drop"]


# ---------------------------------------------------------------------------------------------------
# Stored objects
# ---------------------------------------------------------------------------------------------------


def git_blob_sha1(data: bytes) -> str:
    """Return the git blob id of ``data`` (sha1 of ``b"blob <size>\\0" + data``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Return the git-LFS pointer file that git stores in place of an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs_path(path: str, size: int) -> bool:
    """Return whether the server stores a file of this path and size with git-LFS (the fixed rule)."""
    lowered = path.lower()
    return size > LFS_SIZE_THRESHOLD or lowered.endswith(LFS_SUFFIXES) or "tfevents" in posixpath.basename(lowered)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    """Format a datetime the way the Hub does (``2024-01-31T12:34:56.789Z``)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class StoredFile:
    """One file of a commit: its bytes and the identifiers the Hub reports for it."""

    data: bytes
    lfs: bool
    sha256: str
    git_oid: str
    """Git blob id: of the content for a regular file, of the LFS pointer for an LFS file."""

    @classmethod
    def create(cls, data: bytes, lfs: bool, sha256: str | None = None) -> StoredFile:
        """Build a stored file, computing its hashes (``sha256`` may be passed when already known)."""
        digest = sha256 if sha256 is not None else hashlib.sha256(data).hexdigest()
        blob = lfs_pointer(digest, len(data)) if lfs else data
        return cls(data=data, lfs=lfs, sha256=digest, git_oid=git_blob_sha1(blob))

    @property
    def size(self) -> int:
        """Size of the content in bytes."""
        return len(self.data)

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file (meaningful for LFS files only)."""
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def upload_oid(self) -> str:
        """The ``oid`` the preupload endpoint reports: sha256 for LFS files, git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot of a repository."""

    oid: str
    parents: tuple[str, ...]
    title: str
    message: str
    author: str
    date: datetime
    files: Mapping[str, StoredFile]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: datetime
    sdk: str | None = None
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)
    lfs_oids: set[str] = field(default_factory=set)

    @property
    def url_prefix(self) -> str:
        return _URL_PREFIXES[self.repo_type]


class RequestRecord(NamedTuple):
    """One entry of :attr:`HubServer.request_log`."""

    method: str
    path: str
    """The path as received (still URL-quoted), without the query string."""
    status: int
    """The HTTP status sent, or :data:`STATUS_DROPPED` when the connection was dropped."""
    query: str
    server: Literal["hub", "cdn"]
    authorized: bool
    """Whether the request carried an ``Authorization`` header."""


@dataclass
class FaultRule:
    """A pending fault: the next ``remaining`` requests matching ``pattern`` (and ``method``) fail."""

    pattern: re.Pattern[str]
    action: FaultAction
    remaining: int
    method: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and raw path triggers the rule."""
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.pattern.search(path) is not None


class _HubError(Exception):
    """An error answered as JSON ``{"error": message}`` with the Hub's error headers."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = dict(headers or {})
        self.body = dict(body) if body is not None else {"error": message}


def _repo_not_found(repo_type: str, repo_id: str) -> _HubError:
    return _HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")


def _revision_not_found(revision: str) -> _HubError:
    return _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


def _entry_not_found(path: str, commit_oid: str | None, message: str | None = None) -> _HubError:
    headers = {"X-Repo-Commit": commit_oid} if commit_oid else {}
    return _HubError(404, message or f"Entry not found: {path}", "EntryNotFound", headers)


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: email.message.Message
    """Request headers (case-insensitive ``get``)."""
    body: bytes

    @property
    def segments(self) -> list[str]:
        return [part for part in self.path.split("/") if part]

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise _HubError(400, f"Invalid JSON body: {err}") from err

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in ("1", "true", "yes")

    @property
    def token(self) -> str | None:
        value = self.headers.get("Authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else value.strip()


# ---------------------------------------------------------------------------------------------------
# Card metadata
# ---------------------------------------------------------------------------------------------------


def split_front_matter(content: str) -> tuple[str | None, str]:
    """Split a README into its YAML front matter (``None`` if absent) and the text after it."""
    lines = content.splitlines(keepends=True)
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines) or lines[index].strip() != "---":
        return None, content
    for end in range(index + 1, len(lines)):
        if lines[end].strip() == "---":
            return "".join(lines[index + 1 : end]), "".join(lines[end + 1 :])
    return None, content


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_str_or_str_list(metadata: Mapping[str, Any], key: str, errors: list[str]) -> None:
    if key not in metadata or metadata[key] is None:
        return
    value = metadata[key]
    if isinstance(value, str):
        return
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return
    errors.append(f'"{key}" must be a string or an array of strings, got {_type_name(value)}')


def _check_str(metadata: Mapping[str, Any], key: str, errors: list[str], where: str = "") -> None:
    if key in metadata and metadata[key] is not None and not isinstance(metadata[key], str):
        errors.append(f'"{where}{key}" must be a string, got {_type_name(metadata[key])}')


def _validate_model_index(model_index: Any) -> list[str]:
    """Check the structure of a ``model-index`` block; return error messages."""
    errors: list[str] = []
    if not isinstance(model_index, list):
        return [f'"model-index" must be an array, got {_type_name(model_index)}']
    for i, entry in enumerate(model_index):
        where = f"model-index[{i}]"
        if not isinstance(entry, dict):
            errors.append(f'"{where}" must be an object, got {_type_name(entry)}')
            continue
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            errors.append(f'"{where}.name" is required and must be a non-empty string')
        results = entry.get("results")
        if not isinstance(results, list):
            errors.append(f'"{where}.results" is required and must be an array')
            continue
        for j, result in enumerate(results):
            rwhere = f"{where}.results[{j}]"
            if not isinstance(result, dict):
                errors.append(f'"{rwhere}" must be an object, got {_type_name(result)}')
                continue
            task = result.get("task")
            if not isinstance(task, dict):
                errors.append(f'"{rwhere}.task" is required and must be an object')
            else:
                if not isinstance(task.get("type"), str):
                    errors.append(f'"{rwhere}.task.type" is required and must be a string')
                _check_str(task, "name", errors, f"{rwhere}.task.")
            dataset = result.get("dataset")
            if not isinstance(dataset, dict):
                errors.append(f'"{rwhere}.dataset" is required and must be an object')
            else:
                for key in ("type", "name"):
                    if not isinstance(dataset.get(key), str):
                        errors.append(f'"{rwhere}.dataset.{key}" is required and must be a string')
                for key in ("config", "split", "revision"):
                    _check_str(dataset, key, errors, f"{rwhere}.dataset.")
            metrics = result.get("metrics")
            if not isinstance(metrics, list) or not metrics:
                errors.append(f'"{rwhere}.metrics" is required and must be a non-empty array')
                continue
            for k, metric in enumerate(metrics):
                mwhere = f"{rwhere}.metrics[{k}]"
                if not isinstance(metric, dict):
                    errors.append(f'"{mwhere}" must be an object, got {_type_name(metric)}')
                    continue
                if not isinstance(metric.get("type"), str):
                    errors.append(f'"{mwhere}.type" is required and must be a string')
                if "value" not in metric or isinstance(metric["value"], (dict, list)) or metric["value"] is None:
                    errors.append(f'"{mwhere}.value" is required and must be a number or a string')
                _check_str(metric, "name", errors, f"{mwhere}.")
    return errors


def validate_card_metadata(content: str, repo_type: str = "model") -> tuple[list[str], list[str]]:
    """Validate the YAML front matter of a README the way ``/api/validate-yaml`` does here.

    Returns ``(errors, warnings)``. Checked: YAML syntax (a real YAML parser), a mapping at the top
    level, the types of a few common keys, the shape of ``widget`` and the structure of ``model-index``.
    """
    front_matter, _ = split_front_matter(content)
    if front_matter is None:
        return [], ["Empty or missing yaml metadata in repo card"]
    try:
        metadata = yaml.safe_load(front_matter)
    except yaml.YAMLError as err:
        return [f"Invalid YAML in the metadata block: {err}"], []
    if metadata is None:
        return [], ["Empty or missing yaml metadata in repo card"]
    if not isinstance(metadata, dict):
        return [f"The metadata block must be a YAML mapping (object), got {_type_name(metadata)}"], []
    errors: list[str] = []
    for key in ("license", "pipeline_tag", "library_name", "license_name", "license_link"):
        _check_str(metadata, key, errors)
    for key in ("tags", "language", "datasets", "metrics", "base_model"):
        _check_str_or_str_list(metadata, key, errors)
    if repo_type == "space":
        _check_str(metadata, "sdk", errors)
    widget = metadata.get("widget")
    if widget is not None and not (isinstance(widget, list) and all(isinstance(w, dict) for w in widget)):
        errors.append('"widget" must be an array of objects')
    if "model-index" in metadata:
        errors.extend(_validate_model_index(metadata["model-index"]))
    return errors, []


def _card_metadata(commit: Commit) -> dict[str, Any] | None:
    readme = commit.files.get("README.md")
    if readme is None:
        return None
    front_matter, _ = split_front_matter(readme.data.decode("utf-8", errors="replace"))
    if front_matter is None:
        return None
    try:
        metadata = yaml.safe_load(front_matter)
    except yaml.YAMLError:
        return None
    return metadata if isinstance(metadata, dict) else None


def _json_file(commit: Commit, path: str) -> dict[str, Any] | None:
    stored = commit.files.get(path)
    if stored is None:
        return None
    try:
        value = json.loads(stored.data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value if item is not None]
    return []


def _default_gitattributes() -> bytes:
    lines = [f"*{suffix} filter=lfs diff=lfs merge=lfs -text" for suffix in LFS_SUFFIXES]
    lines.append("*tfevents* filter=lfs diff=lfs merge=lfs -text")
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------


class _BoundServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hub: HubServer, role: Literal["hub", "cdn"]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.hub = hub
        self.role: Literal["hub", "cdn"] = role


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "UnimseTestHub/1.0"
    timeout = 60  # seconds an idle keep-alive connection is kept
    server: _BoundServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr logging (the hub keeps its own log)."""

    def do_GET(self) -> None:
        """Handle a GET request."""
        self._handle("GET")

    def do_HEAD(self) -> None:
        """Handle a HEAD request."""
        self._handle("HEAD")

    def do_POST(self) -> None:
        """Handle a POST request."""
        self._handle("POST")

    def do_PUT(self) -> None:
        """Handle a PUT request."""
        self._handle("PUT")

    def do_DELETE(self) -> None:
        """Handle a DELETE request."""
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        hub = self.server.hub
        role = self.server.role
        split = urlsplit(self.path)
        path = split.path
        authorized = bool(self.headers.get("Authorization"))
        fault = hub._take_fault(method, path)
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            hub._record(RequestRecord(method, path, STATUS_DROPPED, split.query, role, authorized))
            return
        if fault == "drop":
            # Logged first: the client may see the closed socket (and the test check the log) at once.
            hub._record(RequestRecord(method, path, STATUS_DROPPED, split.query, role, authorized))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(fault, int):
            reply = hub._error_reply(_HubError(fault, f"Injected fault ({fault}) for {method} {path}"))
        else:
            request = _Request(
                method=method,
                path=path,
                query=parse_qs(split.query, keep_blank_values=True),
                raw_query=split.query,
                headers=self.headers,
                body=body,
            )
            reply = hub._dispatch(role, request)
        hub._record(RequestRecord(method, path, reply.status, split.query, role, authorized))
        try:
            self.send_response(reply.status)
            headers = dict(reply.headers)
            headers.setdefault("Content-Length", str(len(reply.body)))
            for key, value in headers.items():
                # http.server encodes header lines as latin-1: never let a path make that fail.
                self.send_header(key, value.encode("latin-1", errors="replace").decode("latin-1"))
            self.end_headers()
            if method != "HEAD" and reply.body:
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True


def _parse_range(header: str | None, size: int) -> tuple[int, int] | Literal["invalid"] | None:
    """Parse a single ``bytes=`` range into an inclusive ``(start, end)``; ``None`` means the whole body."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if match is None or (not match.group(1) and not match.group(2)):
        return None  # unsupported (e.g. several ranges): answer the whole body, as HTTP allows
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = int(last)
        if suffix == 0:
            return "invalid"
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return "invalid"
    return start, end


def _content_reply(data: bytes, range_header: str | None, headers: dict[str, str]) -> _Reply:
    headers = {"Accept-Ranges": "bytes", **headers}
    byte_range = _parse_range(range_header, len(data))
    if byte_range == "invalid":
        headers["Content-Range"] = f"bytes */{len(data)}"
        return _Reply(416, b"", headers)
    if byte_range is None:
        return _Reply(200, data, headers)
    start, end = byte_range
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return _Reply(206, data[start : end + 1], headers)


# ---------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------


class HubServer:
    """An in-memory Hub (plus a CDN on a second port) served on 127.0.0.1 from background threads.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. ``port=0`` and ``cdn_port=0``
    pick free ports. The only accepted token is ``token`` (user ``user``); it may write to the
    ``user`` namespace only. Reads of public repos need no token, but a wrong token is always
    answered ``401``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
        token: str = TEST_TOKEN,
        user: str = TEST_USER,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"The test Hub binds to loopback only, got host={host!r}")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.token = token
        self.user = user
        self._requested_ports = (port, cdn_port)
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lfs_store: dict[str, bytes] = {}
        self._faults: list[FaultRule] = []
        self._log: list[RequestRecord] = []
        self._internal_errors: list[str] = []
        self._unknown_routes: list[str] = []
        self._counter = itertools.count(1)
        self._servers: list[_BoundServer] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> HubServer:
        """Bind both ports and serve from daemon threads. Returns ``self``."""
        if self._servers:
            return self
        hub_port, cdn_port = self._requested_ports
        for role, port in (("hub", hub_port), ("cdn", cdn_port)):
            server = _BoundServer((self.host, port), self, role)  # type: ignore[arg-type]
            thread = threading.Thread(target=server.serve_forever, name=f"test-hub-{role}", daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and release both ports."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _address(self, index: int) -> str:
        if not self._servers:
            raise RuntimeError("HubServer is not started")
        port = self._servers[index].server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    @property
    def endpoint(self) -> str:
        """Base URL of the Hub, e.g. ``http://127.0.0.1:45678`` (the value for ``HF_ENDPOINT``)."""
        return self._address(0)

    @property
    def cdn_endpoint(self) -> str:
        """Base URL of the CDN / LFS storage server (a different origin from :attr:`endpoint`)."""
        return self._address(1)

    @property
    def port(self) -> int:
        """Port of the Hub."""
        return int(self.endpoint.rsplit(":", 1)[1])

    # -- fault injection and request log ------------------------------------------------------------

    def inject_faults(
        self,
        path_regex: str,
        status: FaultAction = 500,
        count: int = 1,
        method: str | None = None,
    ) -> FaultRule:
        """Make the next ``count`` requests whose raw path matches ``path_regex`` fail.

        ``status`` is an HTTP status to answer (with a JSON error body) or ``"drop"`` to close the
        connection without any response. The path is matched with :func:`re.search` against the path
        as received (URL-quoted, without the query string), on both the Hub and the CDN port.
        ``method`` restricts the rule to one HTTP method. Returns the rule, whose ``hits`` and
        ``remaining`` show how often it fired.
        """
        if status != "drop" and not (isinstance(status, int) and 100 <= status <= 599):
            raise ValueError(f"status must be an HTTP status code or 'drop', got {status!r}")
        if count < 1:
            raise ValueError("count must be >= 1")
        rule = FaultRule(re.compile(path_regex), status, count, method.upper() if method else None)
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[FaultRule]:
        """Fault rules that have not fired ``count`` times yet."""
        with self._lock:
            return [rule for rule in self._faults if rule.remaining > 0]

    def _take_fault(self, method: str, path: str) -> FaultAction | None:
        with self._lock:
            for rule in self._faults:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    rule.hits += 1
                    return rule.action
        return None

    @property
    def request_log(self) -> list[RequestRecord]:
        """A copy of every request handled so far, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    def find_requests(
        self, method: str | None = None, path_regex: str | None = None, server: str | None = None
    ) -> list[RequestRecord]:
        """Logged requests filtered by method, a :func:`re.search` on the raw path, and server role."""
        pattern = re.compile(path_regex) if path_regex is not None else None
        return [
            record
            for record in self.request_log
            if (method is None or record.method == method.upper())
            and (pattern is None or pattern.search(record.path))
            and (server is None or record.server == server)
        ]

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of unexpected exceptions raised while handling requests (answered ``500``)."""
        with self._lock:
            return list(self._internal_errors)

    @property
    def unknown_routes(self) -> list[str]:
        """``"METHOD path"`` of requests for endpoints the server does not implement (answered ``404``)."""
        with self._lock:
            return list(self._unknown_routes)

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    # -- direct state access for assertions ---------------------------------------------------------

    def reset(self) -> None:
        """Delete every repo, LFS object, fault rule, logged request, internal error and unknown route."""
        with self._lock:
            self._repos.clear()
            self._lfs_store.clear()
            self._faults.clear()
            self._log.clear()
            self._internal_errors.clear()
            self._unknown_routes.clear()

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        """Whether the repo exists on the server."""
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def resolve_revision(self, repo_id: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> str:
        """The commit sha a revision (branch, tag, sha or ``refs/pr/N``) points to."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                raise KeyError(f"No {repo_type} repo {repo_id}")
            return self._resolve(repo, revision).oid

    def list_files(self, repo_id: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> list[str]:
        """Sorted paths of the files at a revision."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return sorted(self._resolve(repo, revision).files)

    def read_file(self, repo_id: str, path: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> bytes:
        """Content of a file at a revision."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return self._resolve(repo, revision).files[path].data

    def commit_history(self, repo_id: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> list[Commit]:
        """The commits reachable from a revision through first parents, newest first."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return list(self._history(repo, self._resolve(repo, revision)))

    # -- internals: state ---------------------------------------------------------------------------

    def _get_repo(self, request: _Request, repo_type: str, repo_id: str, write: bool = False) -> _Repo:
        user = self._authenticate(request, required=write)
        repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user is None):
            raise _repo_not_found(repo_type, repo_id)
        if write:
            self._check_namespace(user, repo_id, repo_type)
        return repo

    def _authenticate(self, request: _Request, required: bool) -> str | None:
        token = request.token
        if token is None:
            if required:
                raise _HubError(401, "Invalid credentials in Authorization header")
            return None
        if token != self.token:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return self.user

    def _check_namespace(self, user: str | None, repo_id: str, repo_type: str) -> None:
        namespace = repo_id.split("/", 1)[0]
        if namespace != user:
            raise _HubError(
                403, f"You don't have the rights to write to the {repo_type} repo {repo_id} (namespace {namespace})"
            )

    def _resolve(self, repo: _Repo, revision: str) -> Commit:
        rev = revision
        if rev.startswith("refs/heads/"):
            rev = rev[len("refs/heads/") :]
        elif rev.startswith("refs/tags/"):
            tag = rev[len("refs/tags/") :]
            if tag in repo.tags:
                return repo.commits[repo.tags[tag]]
            raise _revision_not_found(revision)
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if rev in repo.tags:
            return repo.commits[repo.tags[rev]]
        match = _PR_RE.match(rev)
        if match and int(match.group(1)) in repo.pull_requests:
            return repo.commits[repo.pull_requests[int(match.group(1))]]
        if _SHA_RE.match(rev) and rev in repo.commits:
            return repo.commits[rev]
        raise _revision_not_found(revision)

    def _history(self, repo: _Repo, head: Commit) -> Iterator[Commit]:
        commit: Commit | None = head
        while commit is not None:
            yield commit
            commit = repo.commits[commit.parents[0]] if commit.parents else None

    def _new_commit(
        self, repo: _Repo, parent: Commit | None, files: Mapping[str, StoredFile], title: str, message: str
    ) -> Commit:
        date = _now()
        fingerprint = json.dumps(
            {
                "repo": [repo.repo_type, repo.repo_id],
                "parent": parent.oid if parent else None,
                "files": {path: stored.git_oid for path, stored in sorted(files.items())},
                "title": title,
                "message": message,
                "date": _iso(date),
                "counter": next(self._counter),
            },
            sort_keys=True,
        )
        commit = Commit(
            oid=hashlib.sha1(fingerprint.encode()).hexdigest(),
            parents=(parent.oid,) if parent else (),
            title=title,
            message=message,
            author=self.user,
            date=date,
            files=types.MappingProxyType(dict(files)),
        )
        repo.commits[commit.oid] = commit
        return commit

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.endpoint}/{repo.url_prefix}{repo.repo_id}"

    # -- internals: dispatch ------------------------------------------------------------------------

    def _unknown_route(self, request: _Request) -> _HubError:
        description = f"{request.method} {request.path}"
        with self._lock:
            self._unknown_routes.append(description)
        return _HubError(404, f"The test Hub does not implement {description}")

    def _error_reply(self, error: _HubError) -> _Reply:
        headers = dict(error.headers)
        headers["X-Error-Message"] = error.message.replace("\r", " ").replace("\n", " ")
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
        return _json_reply(error.body, error.status, headers)

    def _dispatch(self, role: Literal["hub", "cdn"], request: _Request) -> _Reply:
        try:
            if role == "cdn":
                return self._route_cdn(request)
            return self._route_hub(request)
        except _HubError as error:
            return self._error_reply(error)
        except Exception:
            trace = traceback.format_exc()
            with self._lock:
                self._internal_errors.append(f"{request.method} {request.path}\n{trace}")
            return self._error_reply(_HubError(500, f"Internal error in the test Hub: {trace.splitlines()[-1]}"))

    def _route_hub(self, request: _Request) -> _Reply:
        segments = request.segments
        method = request.method
        if segments[:1] == ["api"]:
            return self._route_api(request, segments[1:])
        repo_type = "model"
        rest = segments
        if rest and rest[0] in ("datasets", "spaces"):
            repo_type = _API_PLURALS[rest[0]]
            rest = rest[1:]
        if len(rest) == 6 and rest[1].endswith(".git") and rest[2:5] == ["info", "lfs", "objects"]:
            repo_id = f"{unquote(rest[0])}/{unquote(rest[1][: -len('.git')])}"
            if method == "POST" and rest[5] == "batch":
                return self._lfs_batch(request, repo_type, repo_id)
            if method == "POST" and rest[5] == "verify":
                return self._lfs_verify(request, repo_type, repo_id)
        if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            repo_id = f"{unquote(rest[0])}/{unquote(rest[1])}"
            return self._resolve_file(request, repo_type, repo_id, unquote(rest[3]), unquote("/".join(rest[4:])))
        raise self._unknown_route(request)

    def _route_api(self, request: _Request, segments: list[str]) -> _Reply:
        method = request.method
        if segments == ["whoami-v2"] and method == "GET":
            return self._whoami(request)
        if segments == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(request)
        if segments == ["repos", "create"] and method == "POST":
            return self._create_repo(request)
        if segments == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo(request)
        if len(segments) >= 3 and segments[0] in _API_PLURALS:
            repo_type = _API_PLURALS[segments[0]]
            repo_id = f"{unquote(segments[1])}/{unquote(segments[2])}"
            rest = segments[3:]
            action = rest[0] if rest else None
            tail = unquote("/".join(rest[1:]))
            if action is None and method in ("GET", "HEAD"):
                return self._repo_info(request, repo_type, repo_id, None)
            if action == "revision" and rest[1:] and method in ("GET", "HEAD"):
                return self._repo_info(request, repo_type, repo_id, tail)
            if action == "tree" and rest[1:] and method == "GET":
                return self._tree(request, repo_type, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])))
            if action == "preupload" and rest[1:] and method == "POST":
                return self._preupload(request, repo_type, repo_id, tail)
            if action == "commit" and rest[1:] and method == "POST":
                return self._commit(request, repo_type, repo_id, tail)
            if action == "branch" and rest[1:] and method in ("POST", "DELETE"):
                return self._branch(request, repo_type, repo_id, tail)
            if action == "tag" and rest[1:] and method in ("POST", "DELETE"):
                return self._tag(request, repo_type, repo_id, tail)
            if action == "refs" and len(rest) == 1 and method == "GET":
                return self._refs(request, repo_type, repo_id)
            if action == "commits" and rest[1:] and method == "GET":
                return self._commits(request, repo_type, repo_id, tail)
            if action == "paths-info" and rest[1:] and method == "POST":
                return self._paths_info(request, repo_type, repo_id, tail)
        raise self._unknown_route(request)

    # -- handlers: account and metadata -------------------------------------------------------------

    def _whoami(self, request: _Request) -> _Reply:
        user = self._authenticate(request, required=True)
        return _json_reply(
            {
                "type": "user",
                "id": hashlib.sha1(str(user).encode()).hexdigest()[:24],
                "name": user,
                "fullname": "Test User",
                "email": f"{user}@example.invalid",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "test", "role": "write", "createdAt": _iso(_now())},
                },
            }
        )

    def _validate_yaml(self, request: _Request) -> _Reply:
        if request.token is not None:
            self._authenticate(request, required=False)
        payload = request.json()
        content = payload.get("content")
        if not isinstance(content, str):
            raise _HubError(400, '"content" must be a string')
        errors, warnings = validate_card_metadata(content, str(payload.get("repoType") or "model"))
        body = {"errors": [{"message": m} for m in errors], "warnings": [{"message": m} for m in warnings]}
        return _json_reply(body, 400 if errors else 200)

    # -- handlers: repos ----------------------------------------------------------------------------

    def _create_repo(self, request: _Request) -> _Reply:
        user = self._authenticate(request, required=True)
        payload = request.json()
        name = payload.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", name):
            raise _HubError(400, f"Invalid repo name: {name!r}")
        namespace = payload.get("organization") or user
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise _HubError(400, f"Invalid repo type: {repo_type!r}")
        repo_id = f"{namespace}/{name}"
        self._check_namespace(user, repo_id, repo_type)
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        with self._lock:
            existing = self._repos.get((repo_type, repo_id))
            if existing is not None:
                raise _HubError(
                    409,
                    f"You already created this {repo_type} repo",
                    body={"error": f"You already created this {repo_type} repo", "url": self._repo_url(existing)},
                )
            repo = _Repo(repo_type, repo_id, private, _now(), sdk=payload.get("sdk"))
            files = {".gitattributes": StoredFile.create(_default_gitattributes(), lfs=False)}
            initial = self._new_commit(repo, None, files, "initial commit", "")
            repo.branches[DEFAULT_BRANCH] = initial.oid
            self._repos[(repo_type, repo_id)] = repo
            url = self._repo_url(repo)
        return _json_reply({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self, request: _Request) -> _Reply:
        user = self._authenticate(request, required=True)
        payload = request.json()
        repo_id = f"{payload.get('organization') or user}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        self._check_namespace(user, repo_id, repo_type)
        with self._lock:
            if self._repos.pop((repo_type, repo_id), None) is None:
                raise _repo_not_found(repo_type, repo_id)
        return _Reply(200, b"", {"Content-Type": "text/plain"})

    def _siblings(self, commit: Commit, blobs: bool) -> list[dict[str, Any]]:
        siblings = []
        for path, stored in sorted(commit.files.items()):
            entry: dict[str, Any] = {"rfilename": path}
            if blobs:
                entry.update(size=stored.size, blobId=stored.git_oid)
                if stored.lfs:
                    entry["lfs"] = {"size": stored.size, "sha256": stored.sha256, "pointerSize": stored.pointer_size}
            siblings.append(entry)
        return siblings

    def _repo_info(self, request: _Request, repo_type: str, repo_id: str, revision: str | None) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id)
            commit = self._resolve(repo, revision or DEFAULT_BRANCH)
            info = self._info_payload(repo, commit, blobs=request.flag("blobs"))
        return _json_reply(info)

    def _info_payload(self, repo: _Repo, commit: Commit, blobs: bool) -> dict[str, Any]:
        card = _card_metadata(commit)
        card_dict = card or {}
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/", 1)[0],
            "sha": commit.oid,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.created_at),
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "likes": 0,
            "downloads": 0,
            "siblings": self._siblings(commit, blobs),
            "usedStorage": sum(stored.size for stored in commit.files.values()),
        }
        if card is not None:
            info["cardData"] = card
        tags: list[str] = list(_as_list(card_dict.get("tags")))
        if repo.repo_type == "model":
            config = _json_file(commit, "config.json")
            library_name = card_dict.get("library_name") or ("transformers" if config is not None else None)
            pipeline_tag = card_dict.get("pipeline_tag")
            info.update(modelId=repo.repo_id, library_name=library_name, pipeline_tag=pipeline_tag)
            if library_name:
                tags.append(str(library_name))
            if any(path.endswith(".safetensors") for path in commit.files):
                tags.append("safetensors")
            if config is not None:
                info["config"] = {key: config[key] for key in _MODEL_INFO_CONFIG_KEYS if key in config}
                if isinstance(config.get("model_type"), str):
                    tags.append(config["model_type"])
                if config.get("auto_map"):
                    tags.append("custom_code")
                transformers_info = self._transformers_info(commit, config, pipeline_tag)
                if transformers_info is not None:
                    info["transformersInfo"] = transformers_info
            if pipeline_tag:
                tags.append(str(pipeline_tag))
            if card_dict.get("widget") is not None:
                info["widgetData"] = card_dict["widget"]
            if card_dict.get("model-index") is not None:
                info["model-index"] = card_dict["model-index"]
            info["spaces"] = []
        elif repo.repo_type == "space":
            info["sdk"] = card_dict.get("sdk") or repo.sdk
        tags.extend(_as_list(card_dict.get("language")))
        tags.extend(f"dataset:{name}" for name in _as_list(card_dict.get("datasets")))
        tags.extend(f"license:{name}" for name in _as_list(card_dict.get("license")))
        tags.append("region:us")
        info["tags"] = list(dict.fromkeys(tags))
        return info

    def _transformers_info(
        self, commit: Commit, config: Mapping[str, Any], pipeline_tag: str | None
    ) -> dict[str, Any] | None:
        auto_map = config.get("auto_map")
        if not isinstance(auto_map, dict):
            return None
        model_keys = [key for key in auto_map if str(key).startswith("AutoModel")]
        if not model_keys:
            return None
        key = model_keys[0]
        if "processor_config.json" in commit.files or "preprocessor_config.json" in commit.files:
            processor = "AutoProcessor"
        elif "tokenizer_config.json" in commit.files:
            processor = "AutoTokenizer"
        else:
            processor = None
        custom_class = auto_map[key]
        return {
            "auto_model": key,
            "custom_class": custom_class if isinstance(custom_class, str) else None,
            "pipeline_tag": pipeline_tag,
            "processor": processor,
        }

    # -- handlers: tree and paths-info --------------------------------------------------------------

    def _last_commits(self, repo: _Repo, head: Commit) -> dict[str, Commit]:
        """For each path at ``head``, the newest commit that changed it (following first parents)."""
        result: dict[str, Commit] = {}
        pending = set(head.files)
        history = list(self._history(repo, head))
        for index, commit in enumerate(history):
            if not pending:
                break
            parent = history[index + 1] if index + 1 < len(history) else None
            for path in list(pending):
                stored = commit.files.get(path)
                previous = parent.files.get(path) if parent else None
                if stored is not None and (previous is None or previous.git_oid != stored.git_oid):
                    result[path] = commit
                    pending.discard(path)
        return result

    def _tree_entries(
        self, repo: _Repo, commit: Commit, prefix: str, recursive: bool, expand: bool
    ) -> list[dict[str, Any]]:
        base = prefix.strip("/")
        base_slash = f"{base}/" if base else ""
        if base and base not in commit.files and not any(p.startswith(base_slash) for p in commit.files):
            raise _entry_not_found(base, commit.oid)
        if base in commit.files:
            raise _entry_not_found(base, commit.oid, f"{base} is a file, not a directory")
        last_commits = self._last_commits(repo, commit) if expand else {}
        files: list[str] = []
        folders: set[str] = set()
        for path in commit.files:
            if not path.startswith(base_slash):
                continue
            relative = path[len(base_slash) :]
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(base_slash + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                files.append(path)
        entries = [self._folder_entry(commit, folder, last_commits) for folder in folders]
        entries.extend(self._file_entry(commit, path, last_commits) for path in files)
        return sorted(entries, key=lambda entry: entry["path"])

    def _file_entry(self, commit: Commit, path: str, last_commits: Mapping[str, Commit]) -> dict[str, Any]:
        stored = commit.files[path]
        entry: dict[str, Any] = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": path}
        if stored.lfs:
            entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": stored.pointer_size}
        if path in last_commits:
            last = last_commits[path]
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": _iso(last.date)}
        return entry

    def _folder_entry(self, commit: Commit, folder: str, last_commits: Mapping[str, Commit]) -> dict[str, Any]:
        prefix = folder + "/"
        members = sorted((path, stored.git_oid) for path, stored in commit.files.items() if path.startswith(prefix))
        oid = hashlib.sha1(json.dumps(members).encode()).hexdigest()
        entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": folder}
        changed = [last_commits[path] for path, _ in members if path in last_commits]
        if changed:
            last = max(changed, key=lambda commit_: commit_.date)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": _iso(last.date)}
        return entry

    def _tree(self, request: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id)
            commit = self._resolve(repo, revision)
            entries = self._tree_entries(repo, commit, path, request.flag("recursive"), request.flag("expand"))
        return _json_reply(entries)

    def _paths_info(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Reply:
        content_type = request.headers.get("Content-Type", "")
        if "json" in content_type:
            payload = request.json()
            paths = _as_list(payload.get("paths"))
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(request.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand", ["false"])[0]).lower() in ("1", "true")
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id)
            commit = self._resolve(repo, revision)
            last_commits = self._last_commits(repo, commit) if expand else {}
            result = []
            for path in paths:
                clean = path.strip("/")
                if clean in commit.files:
                    result.append(self._file_entry(commit, clean, last_commits))
                elif any(p.startswith(clean + "/") for p in commit.files):
                    result.append(self._folder_entry(commit, clean, last_commits))
        return _json_reply(result)

    # -- handlers: downloads ------------------------------------------------------------------------

    def _resolve_file(self, request: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id)
            commit = self._resolve(repo, revision)
            stored = commit.files.get(path)
            if stored is None:
                raise _entry_not_found(path, commit.oid)
        headers = {"X-Repo-Commit": commit.oid}
        if stored.lfs:
            location = f"{self.cdn_endpoint}/lfs/{stored.sha256}?filename={quote(posixpath.basename(path))}"
            headers.update(
                {
                    "Location": location,
                    "ETag": f'"{stored.sha256}"',
                    "X-Linked-Etag": f'"{stored.sha256}"',
                    "X-Linked-Size": str(stored.size),
                }
            )
            return _Reply(302, b"", headers)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers.update(
            {
                "ETag": f'"{stored.git_oid}"',
                "Content-Type": content_type,
                "Content-Disposition": f"inline; filename*=UTF-8''{quote(posixpath.basename(path))}",
            }
        )
        return _content_reply(stored.data, request.headers.get("Range"), headers)

    # -- handlers: uploads --------------------------------------------------------------------------

    def _preupload(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Reply:
        payload = request.json()
        files = payload.get("files")
        if not isinstance(files, list):
            raise _HubError(400, '"files" must be an array')
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id, write=True)
            commit = self._resolve(repo, revision)
            answer = []
            for item in files:
                if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                    raise _HubError(400, "Each file needs a string path")
                path = item["path"]
                size = int(item.get("size") or 0)
                mode = "lfs" if is_lfs_path(path, size) else "regular"
                entry: dict[str, Any] = {"path": path, "uploadMode": mode, "shouldIgnore": False}
                existing = commit.files.get(path)
                if existing is not None and existing.lfs == (mode == "lfs"):
                    entry["oid"] = existing.upload_oid
                answer.append(entry)
        return _json_reply({"files": answer, "commitOid": commit.oid})

    def _lfs_batch(self, request: _Request, repo_type: str, repo_id: str) -> _Reply:
        payload = request.json()
        operation = payload.get("operation")
        objects = payload.get("objects")
        if operation not in ("upload", "download") or not isinstance(objects, list):
            raise _HubError(400, "Invalid LFS batch request")
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id, write=operation == "upload")
            answer = []
            for obj in objects:
                oid, size = obj.get("oid"), obj.get("size")
                if not isinstance(oid, str) or not isinstance(size, int):
                    raise _HubError(400, "Each LFS object needs a string oid and an integer size")
                entry: dict[str, Any] = {"oid": oid, "size": size}
                known = oid in repo.lfs_oids and len(self._lfs_store.get(oid, b"")) == size
                if operation == "upload" and not known:
                    entry["actions"] = {
                        "upload": {"href": f"{self.cdn_endpoint}/lfs/{oid}"},
                        "verify": {"href": f"{self.endpoint}/{repo.url_prefix}{repo_id}.git/info/lfs/objects/verify"},
                    }
                elif operation == "download":
                    if known:
                        entry["actions"] = {"download": {"href": f"{self.cdn_endpoint}/lfs/{oid}"}}
                    else:
                        entry["error"] = {"code": 404, "message": "Object does not exist"}
                answer.append(entry)
        body = {"transfer": "basic", "objects": answer, "hash_algo": "sha256"}
        return _json_reply(body, headers={"Content-Type": _LFS_JSON})

    def _lfs_verify(self, request: _Request, repo_type: str, repo_id: str) -> _Reply:
        payload = request.json()
        oid, size = payload.get("oid"), payload.get("size")
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id, write=True)
            data = self._lfs_store.get(str(oid))
            if data is None or len(data) != size:
                raise _HubError(404, f"LFS object {oid} of size {size} was not uploaded")
            repo.lfs_oids.add(str(oid))
        return _json_reply({"success": True})

    def _route_cdn(self, request: _Request) -> _Reply:
        segments = request.segments
        if len(segments) != 2 or segments[0] != "lfs" or not re.fullmatch(r"[0-9a-f]{64}", segments[1]):
            raise self._unknown_route(request)
        oid = segments[1]
        if request.method == "PUT":
            digest = hashlib.sha256(request.body).hexdigest()
            if digest != oid:
                raise _HubError(400, f"Uploaded content has sha256 {digest}, expected {oid}")
            with self._lock:
                self._lfs_store[oid] = request.body
            return _Reply(200, b"", {"ETag": f'"{hashlib.md5(request.body).hexdigest()}"'})
        if request.method in ("GET", "HEAD"):
            with self._lock:
                data = self._lfs_store.get(oid)
            if data is None:
                raise _HubError(404, f"No LFS object {oid}")
            headers = {"ETag": f'"{oid}"', "Content-Type": "application/octet-stream"}
            filename = request.param("filename")
            if filename:
                headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
            return _content_reply(data, request.headers.get("Range"), headers)
        raise _HubError(405, f"Method {request.method} not allowed on the CDN")

    # -- handlers: commits, branches, tags, refs ----------------------------------------------------

    @staticmethod
    def _parse_ndjson(body: bytes) -> list[dict[str, Any]]:
        items = []
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as err:
                raise _HubError(400, f"Invalid ndjson line {number}: {err}") from err
            if not isinstance(item, dict) or "key" not in item or not isinstance(item.get("value"), dict):
                raise _HubError(400, f"Invalid ndjson line {number}: expected {{key, value}}")
            items.append(item)
        if not items or items[0]["key"] != "header":
            raise _HubError(400, "The first ndjson line must be the commit header")
        return items

    @staticmethod
    def _check_path(path: Any) -> str:
        if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/"):
            raise _HubError(400, f"Invalid path in commit: {path!r}")
        parts = path.split("/")
        if any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
            raise _HubError(400, f"Invalid path in commit: {path!r}")
        return path

    def _apply_operations(
        self, repo: _Repo, base: Commit, operations: Iterable[Mapping[str, Any]]
    ) -> dict[str, StoredFile]:
        files = dict(base.files)
        for item in operations:
            key, value = item["key"], item["value"]
            if key == "file":
                path = self._check_path(value.get("path"))
                content = value.get("content", "")
                if value.get("encoding") == "base64":
                    try:
                        data = base64.b64decode(content, validate=True)
                    except ValueError as err:
                        raise _HubError(400, f"Invalid base64 content for {path}") from err
                else:
                    data = str(content).encode()
                files[path] = StoredFile.create(data, lfs=False)
            elif key == "lfsFile":
                path = self._check_path(value.get("path"))
                oid = value.get("oid")
                if value.get("algo", "sha256") != "sha256" or oid not in repo.lfs_oids:
                    raise _HubError(422, f"LFS object {oid} for {path} was not uploaded to this repo")
                data = self._lfs_store[oid]
                if value.get("size") is not None and value["size"] != len(data):
                    raise _HubError(422, f"LFS object {oid} has size {len(data)}, not {value['size']}")
                files[path] = StoredFile.create(data, lfs=True, sha256=oid)
            elif key == "deletedFile":
                path = self._check_path(value.get("path"))
                if files.pop(path, None) is None:
                    raise _entry_not_found(path, base.oid, f"A file with this name doesn't exist: {path}")
            elif key == "deletedFolder":
                folder = str(value.get("path", "")).strip("/")
                prefix = f"{folder}/" if folder else ""
                doomed = [path for path in files if path.startswith(prefix)]
                if not doomed:
                    raise _entry_not_found(folder, base.oid, f"A folder with this name doesn't exist: {folder}")
                for path in doomed:
                    del files[path]
            else:
                raise _HubError(400, f"Unknown commit operation: {key!r}")
        return files

    def _commit(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Reply:
        items = self._parse_ndjson(request.body)
        header = items[0]["value"]
        summary = header.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise _HubError(400, "The commit summary must be a non-empty string")
        create_pr = request.flag("create_pr")
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id, write=True)
            base = self._resolve(repo, revision)
            target_branch: str | None = None
            target_pr: int | None = None
            if not create_pr:
                name = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
                pr_match = _PR_RE.match(revision)
                if name in repo.branches:
                    target_branch = name
                elif pr_match and int(pr_match.group(1)) in repo.pull_requests:
                    target_pr = int(pr_match.group(1))
                else:
                    raise _HubError(400, f"Can only commit to a branch or a pull request ref, not {revision!r}")
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != base.oid:
                raise _HubError(
                    412, f"A commit has happened since {parent_commit}; {revision} now points to {base.oid}"
                )
            files = self._apply_operations(repo, base, items[1:])
            commit = self._new_commit(repo, base, files, summary.strip(), str(header.get("description") or ""))
            pr_url: str | None = None
            if create_pr:
                target_pr = max(repo.pull_requests, default=0) + 1
                pr_url = f"{self._repo_url(repo)}/discussions/{target_pr}"
            if target_pr is not None:
                repo.pull_requests[target_pr] = commit.oid
            if target_branch is not None:
                repo.branches[target_branch] = commit.oid
            commit_url = f"{self._repo_url(repo)}/commit/{commit.oid}"
        return _json_reply(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": commit_url,
                "hookOutput": "",
                "pullRequestUrl": pr_url,
            }
        )

    def _branch(self, request: _Request, repo_type: str, repo_id: str, branch: str) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id, write=True)
            if request.method == "DELETE":
                if branch == DEFAULT_BRANCH:
                    raise _HubError(403, "Cannot delete the default branch")
                if repo.branches.pop(branch, None) is None:
                    raise _revision_not_found(branch)
                return _json_reply({"success": True})
            if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch) or branch.startswith("refs/"):
                raise _HubError(400, f"Invalid branch name: {branch!r}")
            if branch in repo.branches:
                raise _HubError(409, f"Branch {branch} already exists")
            payload = request.json()
            start = payload.get("startingPoint") or DEFAULT_BRANCH
            repo.branches[branch] = self._resolve(repo, start).oid
        return _json_reply({"success": True})

    def _tag(self, request: _Request, repo_type: str, repo_id: str, rev_or_tag: str) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id, write=True)
            if request.method == "DELETE":
                if repo.tags.pop(rev_or_tag, None) is None:
                    raise _revision_not_found(rev_or_tag)
                return _json_reply({"success": True})
            payload = request.json()
            tag = payload.get("tag")
            if not isinstance(tag, str) or not tag:
                raise _HubError(400, "A tag name is required")
            if tag in repo.tags:
                raise _HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = self._resolve(repo, rev_or_tag).oid
        return _json_reply({"success": True})

    def _refs(self, request: _Request, repo_type: str, repo_id: str) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id)
            body: dict[str, Any] = {
                "branches": [
                    {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                    for name, oid in sorted(repo.branches.items())
                ],
                "tags": [
                    {"name": name, "ref": f"refs/tags/{name}", "targetCommit": oid}
                    for name, oid in sorted(repo.tags.items())
                ],
                "converts": [],
            }
            if request.flag("include_prs"):
                body["pullRequests"] = [
                    {"name": f"refs/pr/{number}", "ref": f"refs/pr/{number}", "targetCommit": oid}
                    for number, oid in sorted(repo.pull_requests.items())
                ]
        return _json_reply(body)

    def _commits(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Reply:
        with self._lock:
            repo = self._get_repo(request, repo_type, repo_id)
            history = list(self._history(repo, self._resolve(repo, revision)))
        body = []
        for commit in history:
            item: dict[str, Any] = {
                "id": commit.oid,
                "title": commit.title,
                "message": commit.message,
                "date": _iso(commit.date),
                "authors": [{"user": commit.author}],
            }
            if request.param("expand[]") == "formatted":
                item["formatted"] = {"title": commit.title, "message": commit.message}
            body.append(item)
        return _json_reply(body)
