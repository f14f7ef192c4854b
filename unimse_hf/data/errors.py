# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The errors raised for malformed source files and occupied output folders."""

from __future__ import annotations

import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class MalformedSourceError(ValueError):
    """A source file does not have the layout a converter expects.

    The message always names the file and, where one is involved, the key or column, so that a user
    can find the problem without reading the converter. ``path`` and ``key`` are kept as attributes.
    """

    def __init__(self, path: PathLike, problem: str, key: Optional[str] = None) -> None:
        self.path = os.fspath(path)
        self.key = key
        where = f"{self.path}" if key is None else f"{self.path} [{key}]"
        super().__init__(f"{where}: {problem}")


class OutputExistsError(FileExistsError, ValueError):
    """An output folder already holds files and the caller did not ask to replace it (``overwrite``)."""


def require_file(path: PathLike, what: str = "file") -> str:
    """Return ``path`` as a string, raising ``FileNotFoundError`` (naming it) if it is not a file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path
