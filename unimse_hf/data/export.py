# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Writing a prepared corpus: Parquet splits (atomically), a dataset card with checksums, Hub upload."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from .schema import COLUMNS, SPLITS, unimse_features

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
    """Write each split to ``output_dir/{split}.parquet`` via a temporary name, so no partial file is left."""
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


def load_parquet_splits(output_dir: str) -> Any:
    """Read ``train/validation/test.parquet`` written by :func:`write_parquet_splits` into a ``DatasetDict``.

    Reads with pyarrow directly rather than ``load_dataset``, which contacts the Hub unless offline.
    """
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict
    from datasets.table import InMemoryTable

    splits = {}
    for split in SPLITS:
        path = os.path.join(output_dir, f"{split}.parquet")
        if os.path.isfile(path):
            table = pq.read_table(path, memory_map=True)
            splits[split] = Dataset(InMemoryTable(table)).cast(unimse_features())
    if not splits:
        raise FileNotFoundError(f"no train/validation/test.parquet in {output_dir}")
    return DatasetDict(splits)


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

    IEMOCAP may only go to a private repo (its licence forbids redistribution).
    """
    from huggingface_hub import HfApi

    if dataset == "iemocap" and not private:
        raise ValueError("IEMOCAP must not be redistributed: push it only to a private repo (--private)")
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=output_dir, repo_id=repo_id, repo_type="dataset", commit_message="Add prepared UniMSE data")
    return str(getattr(commit, "commit_url", commit))
