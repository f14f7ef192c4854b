# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Opt-in loading of pickle files (MMSA, official UniMSE, MELD and IEMOCAP feature pickles)."""

from __future__ import annotations

import pickle

from .errors import PathLike, require_file

PICKLE_SUFFIXES: tuple[str, ...] = (".pkl", ".pickle", ".pk")
"""File suffixes recognised as pickles."""


def load_pickle(path: PathLike, trust_pickle: bool = False) -> object:
    """Unpickle ``path``, only when the caller said it trusts the file.

    Unpickling runs code chosen by whoever wrote the file, so it is refused unless
    ``trust_pickle=True`` (``--trust_pickle`` on the command line). Pickles written by NumPy 1.x
    load under NumPy 2 as well.
    """
    path = require_file(path, "pickle")
    if not trust_pickle:
        raise ValueError(
            f"refusing to unpickle {path}: loading a pickle executes code from the file. "
            "Pass trust_pickle=True (--trust_pickle) only for files from a source you trust."
        )
    with open(path, "rb") as handle:
        try:
            return pickle.load(handle, encoding="latin1")
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
            raise ValueError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from error
