# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Reading a source CSV: UTF-8 with or without a byte-order mark, errors named by file and line."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from .errors import MalformedSourceError, PathLike, require_file

CSV_ENCODING = "utf-8-sig"
"""UTF-8; a leading byte-order mark (as Excel writes one) is skipped, not read into the first column."""


def read_source_csv(path: PathLike, what: str, **read_csv_kwargs: Any) -> pd.DataFrame:
    """Read a CSV with pandas, raising :class:`MalformedSourceError` naming the file for anything unreadable.

    A missing file is ``FileNotFoundError``; an empty file, a file without data rows, text that is not
    UTF-8 and a CSV pandas cannot tokenize (a broken quote, a row with extra fields; pandas' message
    gives the line) are ``MalformedSourceError``.
    """
    path = require_file(path, what)
    try:
        frame = pd.read_csv(path, encoding=CSV_ENCODING, **read_csv_kwargs)
    except pd.errors.EmptyDataError as error:
        raise MalformedSourceError(path, "the file is empty") from error
    except pd.errors.ParserError as error:
        raise MalformedSourceError(path, f"not a readable CSV: {str(error).strip()}") from error
    except UnicodeDecodeError as error:
        raise MalformedSourceError(path, f"not UTF-8 text ({error})") from error
    if frame.empty:
        raise MalformedSourceError(path, "no data rows")
    return frame


def file_lines(index: Sequence[Any], limit: int = 5) -> list[int]:
    """Return the file line numbers (header = line 1) of the first ``limit`` frame rows in ``index``."""
    return [int(i) + 2 for i in list(index)[:limit]]


def check_complete(frame: pd.DataFrame, column: str, path: str) -> None:
    """Raise naming the file lines where ``column`` is empty (or holds only spaces)."""
    values = frame[column]
    blank = values.isna() | values.astype(str).str.strip().eq("")
    if blank.any():
        raise MalformedSourceError(path, f"empty values in file lines {file_lines(frame.index[blank])}", column)


def check_unique(frame: pd.DataFrame, keys: pd.Series, path: str, column: str) -> None:
    """Raise naming the repeated key and its file lines if a key occurs twice."""
    repeated = keys.duplicated(keep=False)
    if repeated.any():
        first = keys[repeated].iloc[0]
        lines = file_lines(keys.index[keys == first])
        raise MalformedSourceError(path, f"utterance {first!r} appears more than once (file lines {lines})", column)


def numeric_column(frame: pd.DataFrame, column: str, path: str) -> pd.Series:
    """Return ``column`` as floats, raising naming the file lines of values that are not numbers."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        examples = frame[column][bad].head(3).tolist()
        raise MalformedSourceError(path, f"not a number in file lines {file_lines(frame.index[bad])} ({examples})", column)
    return values.astype(float)
