# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSEProcessor: the T5 tokenizer, the UniMSE feature extractor and the universal-label codec in one."""

from __future__ import annotations

import os
import re
from typing import Any, Optional, Sequence, Union

import numpy as np

from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .feature_extraction_unimse import UniMSEFeatureExtractor
from .labels import ParsedLabel, UniversalLabel, format_universal_label, parse_universal_label

_WORD = re.compile(r"\S+")
LabelInput = Union[str, UniversalLabel]


class UniMSEProcessor(ProcessorMixin):
    r"""
    Builds UniMSE inputs: prepends the task prefix and tokenizes the text, pads or token-aligns the
    acoustic/visual frames, encodes universal labels as `labels`, and parses generated text.

    Args:
        feature_extractor ([`UniMSEFeatureExtractor`]): pads and aligns frame sequences.
        tokenizer ([`T5Tokenizer`]): the T5 SentencePiece tokenizer.
        task_prefix (`str`, defaults to `"sst2 sentence: "`): prepended to every input text.
        score_decimals (`int`, *optional*): decimals of the score slot in encoded labels; `None` keeps
            Python's `str(float)`, as the official targets do.
        max_length (`int`, defaults to 512): input truncation length in tokens (B22).
    """

    def __init__(
        self,
        feature_extractor: UniMSEFeatureExtractor,
        tokenizer,
        task_prefix: str = "sst2 sentence: ",
        score_decimals: Optional[int] = None,
        max_length: int = 512,
        **kwargs,
    ):
        if not isinstance(task_prefix, str):
            raise TypeError(f"`task_prefix` must be a string, got {type(task_prefix).__name__}")
        if score_decimals is not None and (not isinstance(score_decimals, int) or score_decimals < 0):
            raise ValueError(f"`score_decimals` must be None or an int >= 0, got {score_decimals!r}")
        self.task_prefix = task_prefix
        self.score_decimals = score_decimals
        self.max_length = max_length
        super().__init__(feature_extractor, tokenizer, **kwargs)

    @classmethod
    def from_tokenizer_dir(cls, tokenizer_dir: str | os.PathLike, **feature_extractor_kwargs: Any) -> "UniMSEProcessor":
        """Build a processor from a folder holding T5's `spiece.model` (or saved tokenizer files)."""
        from transformers import T5Tokenizer

        tokenizer = T5Tokenizer.from_pretrained(str(tokenizer_dir))
        return cls(UniMSEFeatureExtractor(**feature_extractor_kwargs), tokenizer)

    # ------------------------------------------------------------------ encoding

    def format_label(self, label: LabelInput) -> str:
        """Return the target string of a label (strings are validated and passed through)."""
        if isinstance(label, UniversalLabel):
            return format_universal_label(label, score_decimals=self.score_decimals)
        if isinstance(label, str):
            if not parse_universal_label(label).valid:
                raise ValueError(f"`labels` entry {label!r} is not a universal label 'polarity,score,meld,iemocap'")
            return label
        raise TypeError(f"`labels` entries must be strings or UniversalLabel, got {type(label).__name__}")

    def _texts(self, text: Union[str, Sequence[str], None]) -> list[str]:
        if text is None:
            raise ValueError("`text` is required: UniMSE always reads a transcript")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("`text` is an empty batch")
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise TypeError(f"`text[{i}]` must be a string, got {type(item).__name__}")
            if not item.strip():
                raise ValueError(f"`text[{i}]` is empty; UniMSE needs a non-empty transcript")
        return texts

    def _token_word_ids(self, encoding, texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Map every token to the index of the transcript word it starts in (-1 for prefix/special tokens)."""
        prefix_length = len(self.task_prefix)
        all_ids, all_lengths = [], []
        for i, text in enumerate(texts):
            words = list(_WORD.finditer(text))
            starts = np.array([m.start() for m in words], dtype=np.int64) + prefix_length
            offsets = np.asarray(encoding["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
            special = np.asarray(encoding["special_tokens_mask"][i], dtype=bool)
            word_ids = np.searchsorted(starts, offsets[:, 0], side="right") - 1
            word_ids[(offsets[:, 0] < prefix_length) | special | (offsets[:, 1] <= offsets[:, 0])] = -1
            all_ids.append(word_ids.tolist())
            all_lengths.append([m.end() - m.start() for m in words])
        return all_ids, all_lengths

    def __call__(
        self,
        text: Union[str, Sequence[str], None] = None,
        acoustic: Any = None,
        visual: Any = None,
        labels: Union[LabelInput, Sequence[LabelInput], None] = None,
        word_timestamps: Optional[Sequence[Any]] = None,
        align_to_tokens: bool = False,
        acoustic_feature_kind: Optional[str] = None,
        visual_feature_kind: Optional[str] = None,
        padding: Union[bool, str] = "longest",
        truncation: bool = True,
        max_length: Optional[int] = None,
        return_tensors: Optional[str] = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Prepare model inputs.

        Args:
            text: a transcript (or ERC context string) or a batch of them; never empty.
            acoustic, visual: per-sample (frames, dim) arrays, or a list of them (see the feature extractor).
            labels: universal labels (strings or `UniversalLabel`), encoded to `labels` with -100 padding.
            word_timestamps: per sample, a (start, end) pair in seconds for each whitespace-separated word
                of the text; implies `align_to_tokens=True`.
            align_to_tokens: give every token the mean of its word's frames instead of frame-level inputs.
            acoustic_feature_kind, visual_feature_kind: the extractor that produced the features, if known;
                a kind the checkpoint was not trained on is refused.
            padding, truncation, max_length, return_tensors: as for the tokenizer.
        """
        texts = self._texts(text)
        batch = len(texts)
        for name, value in (("acoustic", acoustic), ("visual", visual)):
            count = _batch_size(value)
            if count is not None and count != batch:
                raise ValueError(f"`{name}` has {count} samples but `text` has {batch}")
        align = align_to_tokens or word_timestamps is not None
        if word_timestamps is not None:
            if batch == 1 and len(word_timestamps) and np.ndim(word_timestamps[0]) == 1:
                word_timestamps = [word_timestamps]
            if len(word_timestamps) != batch:
                raise ValueError(f"`word_timestamps` has {len(word_timestamps)} samples but `text` has {batch}")
            for i, (sample_text, stamps) in enumerate(zip(texts, word_timestamps)):
                words = len(sample_text.split())
                if stamps is not None and len(stamps) != words:
                    raise ValueError(f"`word_timestamps[{i}]` has {len(stamps)} spans but `text[{i}]` has {words} words")
        encoding = self.tokenizer(
            [self.task_prefix + t for t in texts],
            padding=padding,
            truncation=truncation,
            max_length=max_length or self.max_length,
            return_offsets_mapping=align,
            return_special_tokens_mask=align,
        )
        data: dict[str, Any] = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
        if acoustic is not None or visual is not None:
            extra = {}
            if align:
                extra["token_word_ids"], extra["word_lengths"] = self._token_word_ids(encoding, texts)
                extra["word_timestamps"] = word_timestamps
            features = self.feature_extractor(
                acoustic=acoustic, visual=visual, acoustic_feature_kind=acoustic_feature_kind,
                visual_feature_kind=visual_feature_kind, **extra,
            )
            data.update(features)
        if labels is not None:
            data["labels"] = self.encode_labels(labels, expected=batch)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def encode_labels(self, labels: Union[LabelInput, Sequence[LabelInput]], expected: Optional[int] = None) -> list[list[int]]:
        """Tokenize universal labels to id lists padded with -100."""
        items = [labels] if isinstance(labels, (str, UniversalLabel)) else list(labels)
        if expected is not None and len(items) != expected:
            raise ValueError(f"`labels` has {len(items)} entries but `text` has {expected}")
        ids = self.tokenizer([self.format_label(label) for label in items])["input_ids"]
        longest = max(len(row) for row in ids)
        return [row + [-100] * (longest - len(row)) for row in ids]

    # ------------------------------------------------------------------ decoding

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        """Decode generated ids to text, dropping special tokens."""
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.batch_decode(sequences, **kwargs)

    def decode(self, sequence, **kwargs) -> str:
        """Decode one generated sequence to text, dropping special tokens."""
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.decode(sequence, **kwargs)

    def post_process_generation(self, sequences) -> list[ParsedLabel]:
        """Decode generated ids (or take strings) and parse each into a `ParsedLabel`; never raises on bad text."""
        if len(sequences) and isinstance(sequences[0], str):
            texts = list(sequences)
        else:
            texts = self.batch_decode(sequences)
        return [parse_universal_label(t) for t in texts]

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask"] + list(self.feature_extractor.model_input_names)


def _batch_size(value: Any) -> Optional[int]:
    if value is None:
        return None
    if hasattr(value, "shape") and len(value.shape) == 3:
        return int(value.shape[0])
    if hasattr(value, "shape") and len(value.shape) == 2:
        return 1
    if isinstance(value, (list, tuple)):
        first = next((v for v in value if v is not None), None)
        return 1 if first is not None and np.ndim(first) == 1 else len(value)
    return None


__all__ = ["UniMSEProcessor"]
