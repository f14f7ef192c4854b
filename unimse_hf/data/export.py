# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Writing a prepared corpus: Parquet splits, a dataset card with checksums, Hub upload.

A prepared folder is written whole or not at all (:func:`write_prepared_dataset`): every split, the
card and the label report go into a temporary sibling folder, which is then renamed into place. An
occupied output folder is refused unless ``overwrite=True``, and then replaced as a whole, so no
split of an earlier run survives beside the new ones. A failure leaves the previous folder (or no
folder) as it was. :func:`check_prepared_folder` verifies a folder against its card before it is
pushed or read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from .errors import MalformedSourceError, OutputExistsError
from .schema import COLUMNS, SPLITS, unimse_features
from .validation import check_split_datasets

CARD_NAME = "README.md"
"""The dataset card of a prepared folder."""

REPORT_NAMES: tuple[str, ...] = ("universal_labels_report.md", "universal_labels_report.json")
"""The universal-label report files of a prepared folder."""

DATASET_LICENCES: dict[str, str] = {
    "mosi": "CMU-MOSI (Zadeh et al., 2016): research use; the videos are YouTube content of their owners. "
    "Splits are the CMU-MultimodalSDK standard folds (MIT).",
    "mosei": "CMU-MOSEI (Zadeh et al., 2018): research use; the videos are YouTube content of their owners. "
    "Splits are the CMU-MultimodalSDK standard folds (MIT).",
    "meld": "MELD (Poria et al., 2019), official repository under GPL-3.0; the utterances come from the TV "
    "series Friends.",
    "iemocap": "IEMOCAP (Busso et al., 2008) is licensed by USC SAIL to each requester under a release "
    "agreement and must not be redistributed.",
}
"""Licence and provenance note per corpus, written into the dataset card."""

_COLUMN_DOCS: dict[str, str] = {
    "id": "`{dataset}/{split}/{key}`, unique across splits and corpora",
    "dataset": "source corpus",
    "split": "`train`, `validation` or `test`",
    "clip": "video (MOSI/MOSEI) or dialogue (MELD/IEMOCAP) of the utterance; splits are disjoint by clip",
    "text": "utterance transcript",
    "context": "ERC: ±2 turns with the target between `</s>` markers",
    "speaker": "ERC speaker",
    "acoustic": "frames x features float32, cut to the true length; null if absent",
    "visual": "frames x features float32, cut to the true length; null if absent",
    "word_timestamps": "words with start/end seconds from the segment start",
    "score": "sentiment score in [-3, 3]",
    "polarity": "positive / negative / neutral",
    "meld_emotion": "MELD emotion slot",
    "iemocap_emotion": "IEMOCAP emotion slot",
    "slot_sources": "where each slot came from: gold, neutral-default, polarity-default or transfer:<id>",
    "target": "universal label `polarity,score,MELD-emotion,IEMOCAP-emotion`",
}


def sha256_of(path: str) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_parquet_splits(dataset_dict: Mapping[str, Any], output_dir: str) -> dict[str, str]:
    """Write each split to ``output_dir/{split}.parquet`` via a temporary name, so no partial file is left.

    Split files are replaced one by one; a ``{split}.parquet`` of a split not in ``dataset_dict`` is
    refused (it would be read with the new ones). For a whole prepared folder with its card use
    :func:`write_prepared_dataset`, which is atomic as a whole.
    """
    unknown = [split for split in dataset_dict if split not in SPLITS]
    if unknown:
        raise ValueError(f"`dataset_dict` has splits {unknown}; expected names from {SPLITS}")
    stale = [f"{split}.parquet" for split in SPLITS if split not in dataset_dict and os.path.exists(os.path.join(output_dir, f"{split}.parquet"))]
    if stale:
        raise OutputExistsError(f"{output_dir} holds {stale} from another run, which would be read with the new splits; remove it first")
    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    for split, dataset in dataset_dict.items():
        final = os.path.join(output_dir, f"{split}.parquet")
        partial = os.path.join(output_dir, f".{split}.parquet.partial")
        try:
            dataset.to_parquet(partial)
            os.replace(partial, final)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        paths[split] = final
    return paths


def load_parquet_splits(output_dir: str, dataset: Optional[str] = None) -> Any:
    """Read a prepared folder's ``train/validation/test.parquet`` into a ``DatasetDict``, checked.

    A folder with a dataset card must match it (:func:`check_prepared_folder`); every file must have
    the schema's columns, and the rows pass :func:`~unimse_hf.data.validation.check_split_datasets`
    (rows stored under their own split, of ``dataset`` when given, splits disjoint by clip). Reads
    with pyarrow directly rather than ``load_dataset``, which contacts the Hub unless offline.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict
    from datasets.table import InMemoryTable

    if not os.path.isdir(output_dir):
        raise FileNotFoundError(f"prepared folder not found: {output_dir}")
    if os.path.isfile(os.path.join(output_dir, CARD_NAME)):
        check_prepared_folder(output_dir)
    splits = {}
    for split in SPLITS:
        path = os.path.join(output_dir, f"{split}.parquet")
        if os.path.isfile(path):
            try:
                table = pq.read_table(path, memory_map=True)
            except (pa.ArrowException, OSError) as error:
                raise MalformedSourceError(path, f"not a readable Parquet file ({error})") from error
            missing = [column for column in COLUMNS if column not in table.column_names]
            if missing:
                raise MalformedSourceError(
                    path, f"missing columns {missing}: not written by this version of prepare_data.py; prepare it again"
                )
            try:
                splits[split] = Dataset(InMemoryTable(table.select(list(COLUMNS)))).cast(unimse_features())
            except (TypeError, ValueError, pa.ArrowException) as error:
                raise MalformedSourceError(path, f"columns do not have the schema's types ({error})") from error
    if not splits:
        raise FileNotFoundError(f"no train/validation/test.parquet in {output_dir}")
    check_split_datasets(splits, output_dir, dataset)
    return DatasetDict(splits)


def _card_splits(card_path: str) -> tuple[list[str], str]:
    with open(card_path, encoding="utf-8") as handle:
        text = handle.read()
    front = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
    return re.findall(r"^\s*- split: (\S+)\s*$", front, flags=re.MULTILINE), text


def check_prepared_folder(folder: str) -> list[str]:
    """Verify that ``folder`` is a completely written prepared folder; return its splits.

    The card must exist and list the splits in its ``configs``; the folder must hold exactly those
    ``{split}.parquet`` files, each with the SHA-256 the card records, and no leftover partial file.
    Raises :class:`MalformedSourceError` naming the file otherwise.
    """
    card = os.path.join(folder, CARD_NAME)
    if not os.path.isfile(card):
        raise FileNotFoundError(f"{folder} has no dataset card ({CARD_NAME}); it was not written by prepare_data.py")
    listed, text = _card_splits(card)
    if not listed:
        raise MalformedSourceError(card, "the card lists no splits in its configs")
    present = sorted(split for split in SPLITS if os.path.isfile(os.path.join(folder, f"{split}.parquet")))
    if sorted(listed) != present:
        raise MalformedSourceError(card, f"the card lists splits {sorted(listed)} but the folder holds {[f'{s}.parquet' for s in present]}")
    leftovers = sorted(name for name in os.listdir(folder) if name.endswith(".partial"))
    if leftovers:
        raise MalformedSourceError(folder, f"partially written files {leftovers}")
    for split in listed:
        path = os.path.join(folder, f"{split}.parquet")
        if f"`{sha256_of(path)}`" not in text:
            raise MalformedSourceError(path, f"its SHA-256 is not the one {card} records: the file changed after the card was written")
    return listed


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` unless ``output_dir`` is absent, empty, or (``overwrite``) a prepared folder."""
    if not os.path.lexists(output_dir):
        return
    if not os.path.isdir(output_dir) or os.path.islink(output_dir):
        raise OutputExistsError(f"`output_dir` {output_dir} exists and is not a folder")
    entries = sorted(os.listdir(output_dir))
    if not entries:
        return
    if not overwrite:
        raise OutputExistsError(
            f"`output_dir` {output_dir} is not empty (holds {entries[:5]}); pass --overwrite (overwrite=True) to replace it"
        )
    known = {CARD_NAME, *REPORT_NAMES, *(f"{split}.parquet" for split in SPLITS)}
    foreign = [name for name in entries if name not in known]
    if foreign:
        raise OutputExistsError(
            f"`output_dir` {output_dir} holds files a prepared folder does not ({foreign[:5]}); "
            "refusing to replace it even with --overwrite"
        )


def write_prepared_dataset(
    output_dir: str,
    dataset_dict: Mapping[str, Any],
    dataset: str,
    sources: Sequence[str],
    command: str,
    notes: Sequence[str] = (),
    report: Optional[Any] = None,
    overwrite: bool = False,
) -> dict[str, str]:
    """Write a complete prepared folder atomically: the splits, the card and the label report.

    Everything is written into a temporary sibling folder, then renamed to ``output_dir``. An
    occupied ``output_dir`` is refused (:class:`OutputExistsError`) unless ``overwrite``; with it the
    old folder is replaced whole (only a folder of prepared-folder files is replaced). The splits are
    checked first (:func:`~unimse_hf.data.validation.check_split_datasets`) and must all have a
    ``target``. Returns ``{split: final path}``.

    Args:
        output_dir: the prepared folder to create.
        dataset_dict: ``{split: datasets.Dataset}`` in the row schema, labels completed.
        dataset: the corpus name (every row's ``dataset``).
        sources, command, notes: written into the card (:func:`write_dataset_card`).
        report: a :class:`~unimse_hf.universal_labels.UniversalLabelReport` to write beside the splits.
        overwrite: replace an existing prepared folder.
    """
    check_output_dir(output_dir, overwrite)
    if not dataset_dict or not any(len(data) for data in dataset_dict.values()):
        raise ValueError(f"no rows to write to {output_dir}")
    check_split_datasets(dataset_dict, f"the {dataset} rows for {output_dir}", dataset)
    for split, data in dataset_dict.items():
        missing = data.with_format("arrow")[:].column("target").null_count
        if missing:
            raise ValueError(f"{missing} {split} rows have no target; complete the universal labels first")
    final = os.path.abspath(output_dir)
    parent, name = os.path.split(final)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.partial")
    os.mkdir(staging)
    try:
        write_parquet_splits(dataset_dict, staging)
        if report is not None:
            report.write(staging)
        write_dataset_card(staging, dataset_dict, dataset, sources, command, notes)
        check_prepared_folder(staging)
        check_output_dir(output_dir, overwrite)  # again: another process may have written there meanwhile
        _move_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {split: os.path.join(output_dir, f"{split}.parquet") for split in dataset_dict}


def _move_into_place(staging: str, final: str) -> None:
    """Rename ``staging`` to ``final``; an existing ``final`` is moved aside first and restored on failure."""
    if not os.path.exists(final):
        os.rename(staging, final)
        return
    parent, name = os.path.split(final)
    replaced = os.path.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.replaced")
    os.rename(final, replaced)
    try:
        os.rename(staging, final)
    except BaseException:
        os.rename(replaced, final)
        raise
    shutil.rmtree(replaced, ignore_errors=True)


def write_dataset_card(
    output_dir: str,
    dataset_dict: Mapping[str, Any],
    dataset: str,
    sources: Sequence[str],
    command: str,
    notes: Sequence[str] = (),
) -> str:
    """Write ``output_dir/README.md``: Hub metadata, schema, per-split counts, checksums, sources and licence."""
    split_files = {split: os.path.join(output_dir, f"{split}.parquet") for split in dataset_dict}
    lines = [
        "---",
        "license: other",
        f"pretty_name: UniMSE {dataset.upper()} (unimse-hf schema)",
        "task_categories:",
        "- text-classification",
        "- text2text-generation",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split in dataset_dict:
        lines += [f"  - split: {split}", f"    path: {split}.parquet"]
    lines += [
        "---",
        "",
        f"# {dataset.upper()} for UniMSE",
        "",
        f"Prepared by unimse-hf on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with:",
        "",
        "```",
        command,
        "```",
        "",
        "## Splits",
        "",
        "| split | rows | polarity | with transcript | with acoustic | with visual | sha256 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, data in dataset_dict.items():
        table = data.select_columns(["polarity", "text", "acoustic", "visual"]).with_format("arrow")[:]
        polarity: dict[str, int] = {}
        for value in table.column("polarity").to_pylist():
            polarity[value] = polarity.get(value, 0) + 1
        present = {name: len(data) - table.column(name).null_count for name in ("text", "acoustic", "visual")}
        lines.append(
            f"| {split} | {len(data)} | {json.dumps(polarity, sort_keys=True)} | {present['text']} | "
            f"{present['acoustic']} | {present['visual']} | `{sha256_of(split_files[split])}` |"
        )
    lines += ["", "## Schema", "", "| column | type | meaning |", "| --- | --- | --- |"]
    features = unimse_features()
    for name in COLUMNS:
        lines.append(f"| `{name}` | `{features[name]!r}` | {_COLUMN_DOCS[name]} |")
    lines += ["", "## Sources", "", "| file | sha256 |", "| --- | --- |"]
    for source in sources:
        files = [source] if os.path.isfile(source) else sorted(
            os.path.join(root, name) for root, _, names in os.walk(source) for name in names
        )
        for name in files:
            lines.append(f"| `{os.path.relpath(name, os.path.dirname(os.path.normpath(source)))}` | `{sha256_of(name)}` |")
    lines += ["", "## Licence", "", DATASET_LICENCES[dataset]]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    path = os.path.join(output_dir, "README.md")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def push_prepared_to_hub(output_dir: str, repo_id: str, dataset: str, private: Optional[bool] = None) -> str:
    """Upload a prepared folder to a Hub dataset repo; returns the commit URL.

    Only a completely written folder is pushed (:func:`check_prepared_folder`). IEMOCAP may only go
    to a private repo (its licence forbids redistribution).
    """
    from huggingface_hub import HfApi

    if dataset == "iemocap" and not private:
        raise ValueError("IEMOCAP must not be redistributed: push it only to a private repo (--private)")
    check_prepared_folder(output_dir)
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=output_dir, repo_id=repo_id, repo_type="dataset", commit_message="Add prepared UniMSE data")
    return str(getattr(commit, "commit_url", commit))
