# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The joint training set: MOSI + MOSEI + MELD + IEMOCAP (or any subset) mixed into one train split.

The official pipeline concatenates the four training sets and shuffles them unseeded
(``data_processor.py:223-243``); here the shuffle is seeded. Validation and test sets stay per
dataset, as ``validation_<name>`` and ``test_<name>`` splits, because each is scored on its own slot.
Every row keeps its ``dataset`` column.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import numpy as np

from .export import load_parquet_splits
from .schema import DATASET_NAMES


def build_joint_dataset(corpora: Mapping[str, Mapping[str, Any]], seed: int = 1111) -> Any:
    """Mix the training splits of ``corpora`` (``{name: DatasetDict}``) with a seeded shuffle.

    Returns a ``DatasetDict`` with ``train`` plus ``validation_<name>``/``test_<name>`` for every
    corpus that has them. Raises ``ValueError`` if a row has no ``target`` (complete the labels first
    with :mod:`unimse_hf.universal_labels`) or a corpus has rows of another corpus.
    """
    from datasets import DatasetDict, concatenate_datasets

    if not corpora:
        raise ValueError("`corpora` is empty")
    unknown = set(corpora) - set(DATASET_NAMES)
    if unknown:
        raise ValueError(f"unknown corpora {sorted(unknown)}; expected names from {DATASET_NAMES}")
    names = [name for name in DATASET_NAMES if name in corpora]
    for name in names:
        if "train" not in corpora[name]:
            raise ValueError(f"corpus {name!r} has no train split")
        for split, data in corpora[name].items():
            columns = data.select_columns(["dataset", "target"]).with_format("arrow")[:]
            missing = columns.column("target").null_count
            if missing:
                kind = "training" if split == "train" else split
                raise ValueError(f"corpus {name!r}: {missing} {kind} rows have no target; complete the labels first")
            others = sorted(set(columns.column("dataset").to_pylist()) - {name})
            if others:
                raise ValueError(f"corpus {name!r}: its {split} split holds rows of {others}")
    train = concatenate_datasets([corpora[name]["train"] for name in names]).shuffle(seed=seed)
    splits = {"train": train.flatten_indices()}
    for name in names:
        for split in ("validation", "test"):
            if split in corpora[name]:
                splits[f"{split}_{name}"] = corpora[name][split]
    return DatasetDict(splits)


def load_joint_dataset(prepared_dirs: Mapping[str, str], seed: int = 1111) -> Any:
    """Read ``prepare_data.py`` output folders (``{name: folder}``) and mix them with :func:`build_joint_dataset`.

    Each folder is checked as it is read (:func:`~unimse_hf.data.export.load_parquet_splits`): it must
    match its dataset card, hold rows of corpus ``name`` only, and have splits disjoint by clip.
    """
    if not isinstance(prepared_dirs, Mapping):
        raise TypeError(f"`prepared_dirs` must map corpus names to folders, got {type(prepared_dirs).__name__}")
    if not prepared_dirs:
        raise ValueError("`prepared_dirs` is empty")
    unknown = sorted(set(prepared_dirs) - set(DATASET_NAMES))
    if unknown:
        raise ValueError(f"`prepared_dirs` has unknown corpora {unknown}; expected names from {DATASET_NAMES}")
    for name, folder in prepared_dirs.items():
        if not isinstance(folder, (str, os.PathLike)):
            raise TypeError(f"`prepared_dirs[{name!r}]` must be a folder path, got {type(folder).__name__}")
    folders = {name: os.fspath(folder) for name, folder in prepared_dirs.items()}
    repeated = sorted({folder for folder in folders.values() if list(folders.values()).count(folder) > 1})
    if repeated:
        raise ValueError(f"`prepared_dirs` names the folder(s) {repeated} for more than one corpus")
    return build_joint_dataset({name: load_parquet_splits(folder, dataset=name) for name, folder in folders.items()}, seed)


def resize_frames(dataset: Any, acoustic_dim: Optional[int] = 64, visual_dim: Optional[int] = 64) -> Any:
    """Zero-pad or cut every frame to a fixed width, as the official joint set does (64-d A and V).

    MOSI's narrower features are padded with zeros and MELD's wider ones cut to the first columns
    (``data_processor.py:63-102``). ``None`` leaves that modality unchanged; null features stay null.
    """

    def fit(frames: Optional[list], width: Optional[int]) -> Optional[list]:
        if frames is None or width is None:
            return frames
        array = np.asarray(frames, dtype=np.float32)
        if array.shape[1] >= width:
            return array[:, :width]
        return np.pad(array, ((0, 0), (0, width - array.shape[1])))

    return dataset.map(
        lambda row: {"acoustic": fit(row["acoustic"], acoustic_dim), "visual": fit(row["visual"], visual_dim)},
        features=dataset.features,
        desc="Resizing frames",
    )
