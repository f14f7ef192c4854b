# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSEProcessor: the T5 tokenizer, the UniMSE feature extractor and the universal-label codec in one."""

from __future__ import annotations

import os
import unicodedata
import weakref
from typing import Any, Optional, Sequence, Union

import numpy as np

from transformers import LogitsProcessorList
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .alignment_unimse import sample_error, token_word_ids
from .feature_extraction_unimse import UniMSEFeatureExtractor
from .label_grammar import UniversalLabelLogitsProcessor
from .labels import (ParsedLabel, UniversalLabel, format_universal_label, parse_universal_label, polarity_of_score,
                     score_problem)

LabelInput = Union[str, UniversalLabel]
_LABEL_CONSTRAINTS: "weakref.WeakKeyDictionary[UniMSEProcessor, dict[int, UniversalLabelLogitsProcessor]]" = (
    weakref.WeakKeyDictionary())
MAX_SCORE_DECIMALS = 6
"""The most score decimals a processor encodes and decodes."""


def _has_visible_character(text: str) -> bool:
    """Whether `text` holds a character other than whitespace and invisible format characters (zero-width...)."""
    return any(not (char.isspace() or unicodedata.category(char) == "Cf") for char in text)


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return value


class UniMSEProcessor(ProcessorMixin):
    r"""
    Builds UniMSE inputs: prepends the task prefix and tokenizes the text, pads or token-aligns the
    acoustic/visual frames, encodes universal labels as `labels`, parses generated text, and gives the
    keyword arguments of the one way UniMSE decodes (`generation_kwargs`).

    The processor is the single source of the task prefix: the model config holds none, so a checkpoint
    feeds its model exactly the prefix saved in its `processor_config.json`.

    Args:
        feature_extractor ([`UniMSEFeatureExtractor`]): pads and aligns frame sequences.
        tokenizer ([`T5Tokenizer`]): the T5 SentencePiece tokenizer.
        task_prefix (`str`, defaults to `"sst2 sentence: "`): prepended to every input text.
        score_decimals (`int`, defaults to 4): decimals of the score slot, 0 to 6. Every encoded label is
            written in the canonical form at these decimals (the form the label grammar emits), and
            structured decoding allows at most these decimals.
        max_length (`int`, defaults to 512): input truncation length in tokens (B22).
    """

    def __init__(
        self,
        feature_extractor: UniMSEFeatureExtractor,
        tokenizer,
        task_prefix: str = "sst2 sentence: ",
        score_decimals: int = 4,
        max_length: int = 512,
        **kwargs,
    ):
        if not isinstance(task_prefix, str):
            raise TypeError(f"`task_prefix` must be a string, got {type(task_prefix).__name__}")
        if (not isinstance(score_decimals, int) or isinstance(score_decimals, bool)
                or not 0 <= score_decimals <= MAX_SCORE_DECIMALS):
            raise ValueError(f"`score_decimals` must be an int from 0 to {MAX_SCORE_DECIMALS}, got {score_decimals!r}")
        self.task_prefix = task_prefix
        self.score_decimals = score_decimals
        self.max_length = _positive_int(max_length, "max_length")
        super().__init__(feature_extractor, tokenizer, **kwargs)

    @classmethod
    def from_tokenizer_dir(cls, tokenizer_dir: str | os.PathLike, **feature_extractor_kwargs: Any) -> "UniMSEProcessor":
        """Build a processor from a folder holding T5's `spiece.model` (or saved tokenizer files)."""
        from transformers import T5Tokenizer

        tokenizer = T5Tokenizer.from_pretrained(str(tokenizer_dir))
        return cls(UniMSEFeatureExtractor(**feature_extractor_kwargs), tokenizer)

    # ------------------------------------------------------------------ encoding

    def format_label(self, label: LabelInput, name: str = "labels") -> str:
        """Return the canonical target string of a label at `score_decimals`, or raise naming `name`.

        A string is read as `parse_universal_label` reads generations (case, spaces around slots and
        IEMOCAP abbreviations are normalised: `POSITIVE , 1.0 , JOY , EXC` becomes
        `positive,1.0000,joy,excited`) and refused where that parser finds it invalid: a wrong slot count
        or word, a score that is not a finite ASCII number, outside [-3, 3], or whose sign contradicts the
        polarity. A non-zero score that rounds to 0 at `score_decimals` is refused too (its polarity would
        contradict the target). Every accepted label is a string the label grammar can emit.
        """
        if isinstance(label, str):
            parsed = parse_universal_label(label)
            if not parsed.valid:
                raise ValueError(f"`{name}` = {label!r} is not a universal label 'polarity,score,meld,iemocap': "
                                 f"{parsed.problem}")
            label = parsed.to_label()
        elif not isinstance(label, UniversalLabel):
            raise TypeError(f"`{name}` must be a string or a UniversalLabel, got {type(label).__name__}")
        problem = score_problem(label.polarity, label.score)
        if problem is not None:
            raise ValueError(f"`{name}` = {label!r} is not a universal label: {problem}")
        text = format_universal_label(label, score_decimals=self.score_decimals)
        if polarity_of_score(float(text.split(",")[1])) != label.polarity:
            raise ValueError(f"`{name}` = {label!r}: score {label.score!r} rounds to 0 at {self.score_decimals} "
                             f"decimals, contradicting polarity {label.polarity!r}; raise `score_decimals`")
        return text

    def _texts(self, text: Union[str, Sequence[str], None]) -> list[str]:
        if text is None:
            raise ValueError("`text` is required: UniMSE always reads a transcript")
        if isinstance(text, str):
            texts = [text]
        elif isinstance(text, (list, tuple)):
            texts = list(text)
        else:
            raise TypeError(f"`text` must be a string or a list of strings, got {type(text).__name__}")
        if not texts:
            raise ValueError("`text` is an empty batch")
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise sample_error(TypeError, i, f"`text[{i}]` must be a string, got {type(item).__name__}")
            if not _has_visible_character(item):
                raise sample_error(ValueError, i, f"`text[{i}]` is empty (only whitespace or invisible characters, "
                                                  f"{item!r}); UniMSE needs a non-empty transcript")
        return texts

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
            text: a transcript (or ERC context string) or a list of them; none may be empty or only
                whitespace/zero-width characters.
            acoustic, visual: per-sample (frames, dim) arrays of real numbers, or a list of them (see the
                feature extractor).
            labels: universal labels (strings or `UniversalLabel`), encoded in canonical form (see
                `format_label`) to `labels` with -100 padding.
            word_timestamps: per sample, one (start, end) pair of seconds from the clip start, or one
                {"start", "end"} mapping (Whisper's word timestamps), per whitespace-separated word of the
                text (see `alignment_unimse`); implies `align_to_tokens=True` and needs `acoustic` or `visual`.
            align_to_tokens: give every token the mean of its word's frames instead of frame-level inputs.
            acoustic_feature_kind, visual_feature_kind: the extractor that produced the features, if known;
                a kind the checkpoint was not trained on is refused.
            padding, truncation, return_tensors: as for the tokenizer.
            max_length: truncation length in tokens (a positive int); defaults to `self.max_length`.
        """
        texts = self._texts(text)
        batch = len(texts)
        max_length = self.max_length if max_length is None else _positive_int(max_length, "max_length")
        for name, value in (("acoustic", acoustic), ("visual", visual)):
            count = _batch_size(value)
            if count is not None and count != batch:
                raise ValueError(f"`{name}` has {count} samples but `text` has {batch}")
        if word_timestamps is not None and acoustic is None and visual is None:
            raise ValueError("`word_timestamps` were given without `acoustic` or `visual` frames to align")
        align = align_to_tokens or word_timestamps is not None
        encoded_labels = None if labels is None else self.encode_labels(labels, expected=batch)
        encoding = self.tokenizer(
            [self.task_prefix + t for t in texts],
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            return_offsets_mapping=align,
            return_special_tokens_mask=align,
        )
        data: dict[str, Any] = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
        if acoustic is not None or visual is not None:
            extra = {}
            if align:
                extra["token_word_ids"], extra["words"] = token_word_ids(
                    texts, len(self.task_prefix), encoding["offset_mapping"], encoding["special_tokens_mask"])
                extra["word_timestamps"] = word_timestamps
            features = self.feature_extractor(
                acoustic=acoustic, visual=visual, acoustic_feature_kind=acoustic_feature_kind,
                visual_feature_kind=visual_feature_kind, **extra,
            )
            data.update(features)
        if encoded_labels is not None:
            data["labels"] = encoded_labels
        return BatchFeature(data=data, tensor_type=return_tensors)

    def encode_labels(self, labels: Union[LabelInput, Sequence[LabelInput]], expected: Optional[int] = None) -> list[list[int]]:
        """Tokenize universal labels, each in its canonical form (`format_label`), to id lists padded with -100."""
        single = isinstance(labels, (str, UniversalLabel))
        if not single and not isinstance(labels, (list, tuple)):
            raise TypeError(f"`labels` must be a label or a list of labels, got {type(labels).__name__}")
        items = [labels] if single else list(labels)
        if not items:
            raise ValueError("`labels` is an empty batch")
        if expected is not None and len(items) != expected:
            raise ValueError(f"`labels` has {len(items)} entries but `text` has {expected}")
        targets = []
        for i, label in enumerate(items):
            try:
                targets.append(self.format_label(label, name="labels" if single else f"labels[{i}]"))
            except (TypeError, ValueError) as error:
                raise sample_error(type(error), i, str(error)) from None
        ids = self.tokenizer(targets)["input_ids"]
        longest = max(len(row) for row in ids)
        return [row + [-100] * (longest - len(row)) for row in ids]

    # ------------------------------------------------------------------ decoding

    def label_constraint(self) -> UniversalLabelLogitsProcessor:
        """The `UniversalLabelLogitsProcessor` at `score_decimals`, built once per processor and decimals.

        The cache lives beside the processor (not in its attributes), so saving it never serialises the tables.
        """
        cache = _LABEL_CONSTRAINTS.setdefault(self, {})
        if self.score_decimals not in cache:
            cache[self.score_decimals] = UniversalLabelLogitsProcessor(self.tokenizer, score_decimals=self.score_decimals)
        return cache[self.score_decimals]

    def generation_kwargs(self, structured: bool = True, max_new_tokens: Optional[int] = None) -> dict[str, Any]:
        """The keyword arguments every caller passes to `model.generate`: the one way UniMSE decodes.

        Args:
            structured: constrain decoding to the label grammar at `score_decimals` (a `LogitsProcessorList`
                holding this processor's cached `UniversalLabelLogitsProcessor`); `False` decodes freely.
            max_new_tokens: defaults to the tokens the longest grammatical label needs, EOS included.

        Returns:
            `{"max_new_tokens": ...}` plus `{"logits_processor": LogitsProcessorList([...])}` when structured.
        """
        if not isinstance(structured, bool):
            raise TypeError(f"`structured` must be a bool, got {type(structured).__name__}")
        constraint = self.label_constraint()
        kwargs: dict[str, Any] = {
            "max_new_tokens": constraint.max_label_tokens if max_new_tokens is None
            else _positive_int(max_new_tokens, "max_new_tokens"),
        }
        if structured:
            kwargs["logits_processor"] = LogitsProcessorList([constraint])
        return kwargs

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
