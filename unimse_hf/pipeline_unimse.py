# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The `multimodal-sentiment-analysis` pipeline: transcript (+ audio/video or features) -> label.

Uploaded with checkpoints (through `custom_pipelines`), so it imports only torch, transformers,
numpy and, relatively, the other Hub modules. Raw audio/video needs the optional `unimse_hf.media`
extra (and PyAV) on the machine that runs the pipeline.
"""

import io
import math
from typing import Any, Optional, Union

import numpy as np
import torch

from transformers import Pipeline

from .labels import MELD_EMOTIONS, ParsedLabel, parse_universal_label

PIPELINE_TASK = "multimodal-sentiment-analysis"
MODALITIES = ("acoustic", "visual")
MEDIA_MODALITIES = {"audio": ("acoustic",), "video": ("acoustic", "visual")}
"""The modalities each raw-media input gives (a video's audio track gives the acoustic frames)."""
_FEATURE_KEYS = ("acoustic", "visual", "word_timestamps", "acoustic_feature_kind", "visual_feature_kind")
INPUT_KEYS = frozenset({"text", "sampling_rate", *MEDIA_MODALITIES, *_FEATURE_KEYS})
PIPELINE_PARAMETERS = ("max_new_tokens", "num_beams", "structured", "return_emotion_scores",
                       "return_modality_contributions", "max_clip_seconds")
UNSPECIFIED_FEATURE_KIND = "unspecified"

PipelineInput = Union[str, dict]


def check_processor_matches_model(processor: Any, config: Any) -> None:
    """Refuse a processor whose feature sizes (or frame rates, where the config records them) differ from
    the model's config, naming both values."""
    extractor = processor.feature_extractor
    for modality in MODALITIES:
        for field in (f"{modality}_dim", f"{modality}_frame_rate"):
            if not hasattr(config, field):  # configs record frame rates only when the model depends on them
                continue
            expected, given = getattr(config, field), getattr(extractor, field, None)
            if expected != given:
                raise ValueError(f"the processor's feature extractor has {field}={given!r} but the model's config "
                                 f"has {field}={expected!r}; load the processor saved with this model")


def clip_seconds(source: Any, sampling_rate: Optional[int], name: str) -> float:
    """The duration in seconds of a clip (a path, file bytes or a waveform array with `sampling_rate`), as its
    container reports it; read from the header, without decoding the clip."""
    if isinstance(source, np.ndarray):
        if not sampling_rate:
            raise ValueError(f"`{name}` is a waveform array and needs `sampling_rate` to check its duration")
        return max(source.shape) / float(sampling_rate)
    try:
        import av
    except ImportError as error:
        raise ImportError("Predicting from raw audio/video needs the media extra: pip install 'unimse-hf[media]'") from error
    target = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        with av.open(target) as container:
            if container.duration is not None:
                return container.duration / av.time_base
            durations = [float(s.duration * s.time_base) for s in container.streams if s.duration is not None]
    except av.error.FFmpegError as error:
        raise ValueError(f"`{name}` could not be read as audio/video: {error}") from error
    if not durations:
        raise ValueError(f"`{name}` does not state its duration, so the clip-length limit cannot be checked")
    return max(durations)


class UniMSEPipeline(Pipeline):
    """Predict `{score, polarity, emotion, iemocap_emotion, label, valid}` for a transcript.

    Inputs: one input is a string (text only, what the Hub widget sends) or a dict with `text` (one
    string) and optionally `audio` / `video` (path, bytes or, for audio, a numpy waveform with
    `sampling_rate`) or precomputed `acoustic` / `visual` frame arrays with optional `word_timestamps`
    and `*_feature_kind`. A list of inputs gives a list of results, in order; with `batch_size=N` the
    inputs run as real batches (padded; one `generate` per batch), and inputs of one batch may differ in
    text length and in which modalities they have. A list under `text` is refused: it is not one input.

    Parameters (anything else is refused, naming it): `max_new_tokens` (default: the tokens of the longest
    label the grammar allows), `num_beams` (default 1), `structured` (constrain decoding to the label
    grammar, default True; decoding goes through `processor.generation_kwargs`),
    `return_emotion_scores` (adds the probability of each MELD emotion given the generated polarity and
    score under the same decoding: with `structured`, each token normalised over the grammar's choices there;
    scored for all seven candidates of all inputs in one batched decoder pass over the encoder
    outputs of the generation, after one pass over the tokens the candidates share), `return_modality_contributions` (for each modality an input has, the prediction without
    it and the difference, see below), `max_clip_seconds` (refuse longer audio/video before decoding it).

    Modality contributions: for every given modality m, `modality_contributions[m]` holds `without`
    (the prediction, with its emotion probabilities, of the same input without m), `score_delta` (score
    with m minus score without it) and `emotion_probability_delta` (probability of the predicted emotion
    with m minus without it); `None` where a label did not parse. The inputs without each modality run as
    extra rows of the same batch: one encoder pass, one `generate` and one scoring pass for all of them.

    Raw media and text-only checkpoints: audio/video are turned into features by `unimse_hf.media`, whose
    feature kinds the checkpoint's feature extractor must record (`acoustic_feature_kind`, and
    `visual_feature_kind` for video). A checkpoint that records none for a modality (kind
    `"unspecified"`, e.g. the text-only `make demo` checkpoint) was not trained on media features; raw
    media for it is refused before anything is decoded, with an error naming the missing feature kinds,
    rather than predicting from the text alone behind the user's back. Precomputed frames of the
    checkpoint's size are accepted as before.
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
        check_processor_matches_model(self.processor, self.model.config)

    # ------------------------------------------------------------------ parameters

    def _sanitize_parameters(self, max_new_tokens: Optional[int] = None, num_beams: Optional[int] = None,
                             structured: Optional[bool] = None, return_emotion_scores: Optional[bool] = None,
                             return_modality_contributions: Optional[bool] = None,
                             max_clip_seconds: Optional[float] = None, **unknown):
        if unknown:
            raise ValueError(f"unknown pipeline parameters {sorted(unknown)}; the pipeline takes "
                             f"{list(PIPELINE_PARAMETERS)} (plus batch_size and num_workers)")
        for name, value in (("max_new_tokens", max_new_tokens), ("num_beams", num_beams)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        for name, value in (("structured", structured), ("return_emotion_scores", return_emotion_scores),
                            ("return_modality_contributions", return_modality_contributions)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"`{name}` must be True or False, got {value!r}")
        if max_clip_seconds is not None and (isinstance(max_clip_seconds, bool) or not isinstance(
                max_clip_seconds, (int, float)) or not max_clip_seconds > 0 or not math.isfinite(max_clip_seconds)):
            raise ValueError(f"`max_clip_seconds` must be a positive number of seconds, got {max_clip_seconds!r}")
        preprocess = {} if max_clip_seconds is None else {"max_clip_seconds": max_clip_seconds}
        forward = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "structured": structured,
                   "return_emotion_scores": return_emotion_scores,
                   "return_modality_contributions": return_modality_contributions}
        forward = {name: value for name, value in forward.items() if value is not None}
        postprocess = {} if return_emotion_scores is None else {"return_emotion_scores": return_emotion_scores}
        return preprocess, forward, postprocess

    # ------------------------------------------------------------------ inputs

    def check_input(self, inputs: PipelineInput, max_clip_seconds: Optional[float] = None) -> dict:
        """Validate one input without doing any work on it; return it as a dict.

        Refuses a non-string `text` (a list under `text` is not one input), unknown keys, raw media for a
        checkpoint that records no media feature kinds, and clips longer than `max_clip_seconds`.
        """
        if isinstance(inputs, str):
            inputs = {"text": inputs}
        if not isinstance(inputs, dict):
            raise TypeError(f"`inputs` must be a string or a dict with 'text', got {type(inputs).__name__}")
        unknown = set(inputs) - INPUT_KEYS
        if unknown:
            raise ValueError(f"`inputs` has unknown keys {sorted(unknown)}; allowed: {sorted(INPUT_KEYS)}")
        text = inputs.get("text")
        if not isinstance(text, str):
            hint = " (one input holds one transcript; pass a list of inputs for a batch)" if isinstance(
                text, (list, tuple)) else ""
            raise TypeError(f"`inputs['text']` must be a string, got {type(text).__name__}{hint}")
        media = [key for key in MEDIA_MODALITIES if inputs.get(key) is not None]
        for key in media:
            self._check_checkpoint_reads_media(key)
        if max_clip_seconds is not None:
            for key in media:
                seconds = clip_seconds(inputs[key], inputs.get("sampling_rate"), f"inputs['{key}']")
                if seconds > max_clip_seconds:
                    raise ValueError(f"`inputs['{key}']` is {seconds:.1f} s long; the limit is {max_clip_seconds:g} s")
        return inputs

    def _check_checkpoint_reads_media(self, key: str) -> None:
        extractor = self.processor.feature_extractor
        missing = [m for m in MEDIA_MODALITIES[key]
                   if getattr(extractor, f"{m}_feature_kind", UNSPECIFIED_FEATURE_KIND) == UNSPECIFIED_FEATURE_KIND]
        if missing:
            kinds = ", ".join(f"{m}_feature_kind={UNSPECIFIED_FEATURE_KIND!r} ({m}_dim="
                              f"{getattr(extractor, f'{m}_dim')})" for m in missing)
            raise ValueError(f"`inputs['{key}']` cannot be used: this checkpoint was not trained on media features "
                             f"(its feature extractor records no {' or '.join(missing)} feature kind: {kinds}). "
                             f"Predict from the transcript alone, or use a checkpoint trained on features from "
                             f"unimse_hf.media.")

    def preprocess(self, inputs: PipelineInput, max_clip_seconds: Optional[float] = None) -> dict:
        inputs = self.check_input(inputs, max_clip_seconds)
        features = {key: inputs[key] for key in _FEATURE_KEYS if inputs.get(key) is not None}
        if any(inputs.get(key) is not None for key in MEDIA_MODALITIES):
            features.update(self._extract_media(inputs))
        processor_inputs: dict[str, Any] = {"text": inputs["text"]}
        for key in MODALITIES:
            if key in features:
                processor_inputs[key] = [np.asarray(features[key], dtype=np.float32)]
        if "word_timestamps" in features and any(k in features for k in MODALITIES):
            processor_inputs["word_timestamps"] = [features["word_timestamps"]]
        for key in ("acoustic_feature_kind", "visual_feature_kind"):
            if key in features:
                processor_inputs[key] = features[key]
        model_inputs = dict(self.processor(**processor_inputs, return_tensors="pt"))
        for modality in MODALITIES:  # an absent modality is zero frames, so that any inputs collate together
            if f"{modality}_features" not in model_inputs:
                dim = getattr(self.processor.feature_extractor, f"{modality}_dim")
                model_inputs[f"{modality}_features"] = torch.zeros((1, 0, dim))
                model_inputs[f"{modality}_attention_mask"] = torch.zeros((1, 0), dtype=torch.long)
        return model_inputs

    def _extract_media(self, inputs: dict) -> dict:
        try:
            from unimse_hf.media import extract_media_features
        except ImportError as error:
            raise ImportError("Predicting from raw audio/video needs the media extra: "
                              "pip install 'unimse-hf[media]'") from error
        result = extract_media_features(inputs["text"], audio=inputs.get("audio"), video=inputs.get("video"),
                                        sampling_rate=inputs.get("sampling_rate"))
        extractor = self.processor.feature_extractor
        spec = result["spec"]
        features = {"word_timestamps": result.get("word_timestamps")}
        for modality in MODALITIES:
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

    # ------------------------------------------------------------------ model

    def _forward(self, model_inputs: dict, max_new_tokens: Optional[int] = None, num_beams: int = 1,
                 structured: bool = True, return_emotion_scores: bool = False,
                 return_modality_contributions: bool = False) -> dict:
        batch = _without_absent_modalities(model_inputs)
        rows = batch["input_ids"].shape[0]
        removed: list[tuple[int, str]] = []
        if return_modality_contributions:
            removed = [(row, modality) for modality in MODALITIES if f"{modality}_attention_mask" in batch
                       for row in range(rows) if bool(batch[f"{modality}_attention_mask"][row].any())]
            batch = _with_rows_without_modality(batch, removed)
        encoder_outputs = self.model.encode(**batch)
        generate_kwargs = self.processor.generation_kwargs(structured=structured, max_new_tokens=max_new_tokens)
        sequences = self.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                        encoder_outputs=_copy_output(encoder_outputs), num_beams=num_beams,
                                        **generate_kwargs)
        output = {"sequences": sequences[:rows]}
        if not (return_emotion_scores or return_modality_contributions):
            return output
        probabilities = self._emotion_probabilities(encoder_outputs, batch["attention_mask"], sequences, structured)
        output["emotion_probabilities"] = probabilities[:rows]
        for modality in MODALITIES if return_modality_contributions else ():
            variant_rows = [rows + j for j, (_, m) in enumerate(removed) if m == modality]
            source_rows = [row for row, m in removed if m == modality]
            given = torch.zeros(rows, dtype=torch.bool)
            given[source_rows] = True
            without_sequences = sequences.new_full((rows, sequences.shape[1]), self.processor.tokenizer.pad_token_id)
            without_sequences[source_rows] = sequences[variant_rows]
            without_probabilities = probabilities.new_full((rows, len(MELD_EMOTIONS)), float("nan"))
            without_probabilities[source_rows] = probabilities[variant_rows]
            output[f"without_{modality}_given"] = given
            output[f"without_{modality}_sequences"] = without_sequences
            output[f"without_{modality}_emotion_probabilities"] = without_probabilities
        return output

    def _emotion_probabilities(self, encoder_outputs: Any, attention_mask: torch.Tensor,
                               sequences: torch.Tensor, structured: bool) -> torch.Tensor:
        """(rows, 7) probabilities of each MELD emotion given each row's generated polarity and score (NaN
        where they did not parse), from the encoder outputs of the generation, under the decoding that produced
        them: with `structured`, each token's probability is normalised over the tokens the label grammar allows
        there (what structured decoding chooses among, and all a model trained with the grammar-constrained
        loss was trained on); otherwise over the whole vocabulary, with the EOS after the emotion.

        The seven candidates of a row share their first tokens, whose log-probabilities are equal and cancel
        in the softmax over candidates: the decoder runs once per row on the tokens every row's candidates
        share, and once on all candidates of all rows for the rest, from that pass's cache.
        """
        probabilities = torch.full((sequences.shape[0], len(MELD_EMOTIONS)), float("nan"))
        prefixes = [_emotion_prefix(parsed) for parsed in self.processor.post_process_generation(sequences)]
        rows = [row for row, prefix in enumerate(prefixes) if prefix is not None]
        if not rows:
            return probabilities
        count = len(MELD_EMOTIONS)
        candidates = [f"{prefixes[row]}{emotion}" for row in rows for emotion in MELD_EMOTIONS]
        labels = self.processor.tokenizer(candidates, return_tensors="pt", padding=True, add_special_tokens=not structured)
        label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100).to(sequences.device)
        decoder_input_ids = self.model.prepare_decoder_input_ids_from_labels(label_ids)
        by_row = label_ids.view(len(rows), count, -1)
        shared = int((by_row == by_row[:, :1]).all(dim=1).long().cumprod(dim=1).sum(dim=1).min())
        index = torch.tensor(rows, device=sequences.device)
        cache = None
        if shared > 0:
            cache = self.model(encoder_outputs=_select_rows(encoder_outputs, index), attention_mask=attention_mask[index],
                               decoder_input_ids=decoder_input_ids[::count, :shared], use_cache=True).cache
            cache.batch_repeat_interleave(count)
        index = index.repeat_interleave(count)
        logits = self.model(encoder_outputs=_select_rows(encoder_outputs, index), attention_mask=attention_mask[index],
                            decoder_input_ids=decoder_input_ids[:, shared:], past_key_values=cache,
                            use_cache=cache is not None).logits
        targets = label_ids[:, shared:]
        logits = logits.float()
        token_logits = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        if structured:
            allowed = self.processor.label_constraint().label_candidate_ids(label_ids)[:, shared:]
            allowed_logits = logits.gather(-1, allowed.clamp(min=0)).masked_fill(allowed < 0, -float("inf"))
            token_log_probs = token_logits - torch.logsumexp(allowed_logits, dim=-1)
        else:
            token_log_probs = token_logits - torch.logsumexp(logits, dim=-1)
        totals = (token_log_probs * (targets != -100)).sum(dim=1).view(len(rows), count)
        probabilities[rows] = torch.softmax(totals, dim=1).cpu()
        return probabilities

    # ------------------------------------------------------------------ outputs

    def postprocess(self, model_outputs: dict, return_emotion_scores: bool = False) -> dict:
        result = self._prediction(model_outputs["sequences"][0], model_outputs.get("emotion_probabilities"))
        if "without_acoustic_given" in model_outputs:  # modality contributions were asked for
            contributions = {}
            for modality in MODALITIES:
                if not bool(model_outputs[f"without_{modality}_given"][0]):
                    continue
                without = self._prediction(model_outputs[f"without_{modality}_sequences"][0],
                                           model_outputs[f"without_{modality}_emotion_probabilities"])
                contributions[modality] = {"without": without, **_differences(result, without)}
            result["modality_contributions"] = contributions
        if not return_emotion_scores:
            result.pop("emotion_scores", None)
        return result

    def _prediction(self, sequence: torch.Tensor, probabilities: Optional[torch.Tensor]) -> dict:
        text = self.processor.decode(sequence)
        parsed = parse_universal_label(text)
        result = {
            "score": parsed.score,
            "polarity": parsed.polarity,
            "emotion": parsed.meld_emotion,
            "iemocap_emotion": parsed.iemocap_emotion,
            "label": text,
            "valid": parsed.valid,
        }
        if probabilities is not None:
            row = probabilities[0]
            result["emotion_scores"] = None if bool(torch.isnan(row).any()) else {
                emotion: float(p) for emotion, p in zip(MELD_EMOTIONS, row)}
        return result


def _emotion_prefix(parsed: ParsedLabel) -> Optional[str]:
    """`polarity,score,` as generated, the prefix the emotion candidates are scored after."""
    if parsed.polarity is None or parsed.score is None:
        return None
    return f"{parsed.polarity},{parsed.text.split(',')[1].strip()},"


def _differences(full: dict, without: dict) -> dict:
    """Score and predicted-emotion probability with a modality minus without it (None where unreadable)."""
    score_delta = None if full["score"] is None or without["score"] is None else full["score"] - without["score"]
    emotion = full["emotion"]
    full_scores, without_scores = full.get("emotion_scores"), without.get("emotion_scores")
    probability_delta = None
    if emotion is not None and full_scores is not None and without_scores is not None:
        probability_delta = full_scores[emotion] - without_scores[emotion]
    return {"score_delta": score_delta, "emotion_probability_delta": probability_delta}


def _without_absent_modalities(model_inputs: dict) -> dict:
    """Drop a modality that no row of the batch has (zero valid frames), so the model treats it as missing."""
    batch = dict(model_inputs)
    for modality in MODALITIES:
        mask = batch.get(f"{modality}_attention_mask")
        if mask is not None and not bool(mask.any()):
            del batch[f"{modality}_features"], batch[f"{modality}_attention_mask"]
    return batch


def _with_rows_without_modality(batch: dict, removed: list[tuple[int, str]]) -> dict:
    """`batch` followed by one extra row per `(row, modality)`: that row with the modality's frames removed."""
    if not removed:
        return batch
    index = torch.tensor([row for row, _ in removed], device=batch["input_ids"].device)
    extra = {key: value[index].clone() for key, value in batch.items()}
    for j, (_, modality) in enumerate(removed):
        extra[f"{modality}_features"][j] = 0.0
        extra[f"{modality}_attention_mask"][j] = 0
    return {key: torch.cat([batch[key], extra[key]]) for key in batch}


def _copy_output(encoder_outputs: Any) -> Any:
    """A shallow copy (`generate` expands the tensors of the encoder outputs it is given in place, for beams)."""
    return encoder_outputs.__class__(**dict(encoder_outputs.items()))


def _select_rows(encoder_outputs: Any, index: torch.Tensor) -> Any:
    """The encoder outputs of rows `index` (rows repeat when `index` does)."""
    return encoder_outputs.__class__(**{key: value[index] for key, value in encoder_outputs.items()
                                        if torch.is_tensor(value)})


__all__ = ["UniMSEPipeline", "PIPELINE_TASK", "check_processor_matches_model", "clip_seconds"]
