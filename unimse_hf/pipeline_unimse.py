# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The `multimodal-sentiment-analysis` pipeline: transcript (+ audio/video or features) -> label.

Uploaded with checkpoints (through `custom_pipelines`), so it imports only torch, transformers,
numpy and, relatively, the other Hub modules. Raw audio/video needs the optional `unimse_hf.media`
extra on the machine that runs the pipeline.
"""

from typing import Any, Optional, Union

import numpy as np
import torch

from transformers import Pipeline
from transformers.utils import logging

from .labels import MELD_EMOTIONS, parse_universal_label

PIPELINE_TASK = "multimodal-sentiment-analysis"
logger = logging.get_logger(__name__)
_MEDIA_KEYS = ("audio", "video")
_FEATURE_KEYS = ("acoustic", "visual", "word_timestamps", "acoustic_feature_kind", "visual_feature_kind")


class UniMSEPipeline(Pipeline):
    """Predict `{score, polarity, emotion, iemocap_emotion, label, valid}` for a transcript.

    Inputs: a string (text only, what the Hub widget sends), or a dict with `text` and optionally
    `audio` / `video` (path, bytes or, for audio, a numpy waveform with `sampling_rate`) or precomputed
    `acoustic` / `visual` frame arrays with optional `word_timestamps` and `*_feature_kind`.
    Parameters: `max_new_tokens` (default 32), `num_beams`, `structured` (constrain decoding to the label
    grammar, default True when the grammar module is available), `return_emotion_scores` (adds the
    probability of each MELD emotion given the generated polarity and score).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not hasattr(self.model, "acoustic_encoder") or not hasattr(self.processor, "feature_extractor"):
            raise ValueError(f"`model` must be a UniMSE checkpoint with its processor; got a "
                             f"{type(self.model).__name__} with {type(self.processor).__name__}")
        if self.processor.task_prefix != self.model.config.task_prefix:
            logger.warning(f"the processor prepends {self.processor.task_prefix!r} but the model was configured "
                           f"with task_prefix {self.model.config.task_prefix!r}; predictions may suffer")

    def _sanitize_parameters(self, max_new_tokens: Optional[int] = None, num_beams: Optional[int] = None,
                             structured: Optional[bool] = None, return_emotion_scores: Optional[bool] = None,
                             **kwargs):
        forward = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "structured": structured,
                   "return_emotion_scores": return_emotion_scores}
        return {}, {name: value for name, value in forward.items() if value is not None}, {}

    def preprocess(self, inputs: Union[str, dict]) -> dict:
        if isinstance(inputs, str):
            inputs = {"text": inputs}
        if not isinstance(inputs, dict):
            raise TypeError(f"`inputs` must be a string or a dict with 'text', got {type(inputs).__name__}")
        unknown = set(inputs) - {"text", "sampling_rate", *_MEDIA_KEYS, *_FEATURE_KEYS}
        if unknown:
            raise ValueError(f"`inputs` has unknown keys {sorted(unknown)}")
        text = inputs.get("text")
        features = {key: inputs[key] for key in _FEATURE_KEYS if inputs.get(key) is not None}
        if any(inputs.get(key) is not None for key in _MEDIA_KEYS):
            features.update(self._extract_media(inputs))
        processor_inputs: dict[str, Any] = {"text": text}
        for key in ("acoustic", "visual"):
            if key in features:
                processor_inputs[key] = [np.asarray(features[key], dtype=np.float32)]
        if "word_timestamps" in features and any(k in features for k in ("acoustic", "visual")):
            processor_inputs["word_timestamps"] = [features["word_timestamps"]]
        for key in ("acoustic_feature_kind", "visual_feature_kind"):
            if key in features:
                processor_inputs[key] = features[key]
        return dict(self.processor(**processor_inputs, return_tensors="pt"))

    def _extract_media(self, inputs: dict) -> dict:
        try:
            from unimse_hf.media import extract_media_features
        except ImportError as error:
            raise ImportError("Predicting from raw audio/video needs the media extra: "
                              "pip install 'unimse-hf[media]'") from error
        result = extract_media_features(inputs.get("text"), audio=inputs.get("audio"), video=inputs.get("video"),
                                        sampling_rate=inputs.get("sampling_rate"))
        extractor = self.processor.feature_extractor
        spec = result["spec"]
        features = {"word_timestamps": result.get("word_timestamps")}
        for modality in ("acoustic", "visual"):
            frames = result.get(modality)
            if frames is None or (modality == "visual" and inputs.get("video") is None):
                continue
            features[modality] = frames
            features[f"{modality}_feature_kind"] = getattr(spec, f"{modality}_kind")
            rate = getattr(extractor, f"{modality}_frame_rate")
            if rate is not None and abs(rate - result[f"{modality}_frame_rate"]) > 1e-6:
                raise ValueError(f"`{modality}` frames come at {result[f'{modality}_frame_rate']} Hz but this "
                                 f"checkpoint expects {rate} Hz")
        return features

    def _forward(self, model_inputs: dict, max_new_tokens: int = 32, num_beams: int = 1,
                 structured: Optional[bool] = None, return_emotion_scores: bool = False) -> dict:
        generate_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "num_beams": num_beams}
        processor = self._label_processor(structured)
        if processor is not None:
            generate_kwargs["logits_processor"] = [processor]
        with torch.no_grad():
            sequences = self.model.generate(**model_inputs, **generate_kwargs)
        output = {"sequences": sequences}
        if return_emotion_scores:
            output["emotion_scores"] = self._emotion_scores(model_inputs, sequences)
        return output

    def _label_processor(self, structured: Optional[bool]):
        if structured is False:
            return None
        try:
            from .label_grammar import UniversalLabelLogitsProcessor
        except ImportError:
            if structured:
                raise
            return None
        cache = getattr(self, "_grammar_processor", None)
        if cache is None:
            decimals = self.processor.score_decimals if self.processor.score_decimals is not None else 4
            cache = UniversalLabelLogitsProcessor(self.processor.tokenizer, score_decimals=decimals)
            self._grammar_processor = cache
        return cache

    def _emotion_scores(self, model_inputs: dict, sequences: torch.Tensor) -> Optional[dict]:
        parsed = parse_universal_label(self.processor.decode(sequences[0]))
        if parsed.polarity is None or parsed.score is None:
            return None
        prefix = f"{parsed.polarity},{parsed.text.split(',')[1].strip()},"
        candidates = [f"{prefix}{emotion}" for emotion in MELD_EMOTIONS]
        labels = self.processor.tokenizer(candidates, return_tensors="pt", padding=True)
        label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        repeated = {k: v.repeat_interleave(len(candidates), dim=0) for k, v in model_inputs.items()}
        with torch.no_grad():
            logits = self.model(**repeated, labels=label_ids).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        token_log_probs = log_probs.gather(-1, label_ids.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        totals = (token_log_probs * (label_ids != -100)).sum(dim=1)
        probabilities = torch.softmax(totals, dim=0)
        return {emotion: float(p) for emotion, p in zip(MELD_EMOTIONS, probabilities)}

    def postprocess(self, model_outputs: dict) -> dict:
        text = self.processor.decode(model_outputs["sequences"][0])
        parsed = parse_universal_label(text)
        result = {
            "score": parsed.score_or_default,
            "polarity": parsed.polarity,
            "emotion": parsed.meld_emotion,
            "iemocap_emotion": parsed.iemocap_emotion,
            "label": text,
            "valid": parsed.valid,
        }
        if "emotion_scores" in model_outputs:
            result["emotion_scores"] = model_outputs["emotion_scores"]
        return result


__all__ = ["UniMSEPipeline", "PIPELINE_TASK"]
