# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSEOnnxPredictor: run the graphs written by `unimse_hf.export_onnx` with ONNX Runtime.

The same processor prepares the inputs and parses the generated labels as with the PyTorch model, and
decoding follows the processor's `generation_kwargs` (the one UniMSE decoder): greedy, with the label
grammar applied to the logits of every step by default and the same token budget, exactly as
`model.generate(**inputs, **processor.generation_kwargs())` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .export_onnx import DECODER_INPUTS, ENCODER_INPUTS, MANIFEST_FORMAT, MANIFEST_NAME, cache_names
from .labels import ParsedLabel
from .processing_unimse import UniMSEProcessor

@dataclass
class UniMSEOnnxGenerateOutput:
    """What :meth:`UniMSEOnnxPredictor.generate` returns."""

    sequences: torch.LongTensor
    """(batch, 1 + steps) ids, the decoder start token first (as `model.generate` returns them)."""
    logits: list[np.ndarray] = field(default_factory=list)
    """Per step, the (batch, vocab) raw logits (before the grammar); filled with `output_logits=True`."""


class UniMSEOnnxPredictor:
    """Greedy universal-label generation with the exported encoder and decoder graphs.

    Args:
        encoder, decoder, decoder_with_past (`onnxruntime.InferenceSession`): the three graphs.
        processor ([`UniMSEProcessor`]): the checkpoint's processor.
        manifest (`dict`): the export's ``onnx_export.json`` (decoder depth and token ids).
    """

    def __init__(self, encoder, decoder, decoder_with_past, processor: UniMSEProcessor, manifest: Mapping[str, Any]):
        self.encoder = encoder
        self.decoder = decoder
        self.decoder_with_past = decoder_with_past
        self.processor = processor
        self.num_layers = int(manifest["num_decoder_layers"])
        self.decoder_start_token_id = int(manifest["decoder_start_token_id"])
        self.eos_token_id = int(manifest["eos_token_id"])
        self.pad_token_id = int(manifest["pad_token_id"])

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, quantize: Optional[str] = None,
                        session_options=None, providers: Optional[Sequence[str]] = None) -> "UniMSEOnnxPredictor":
        """Load an export folder. `quantize="int8"` selects the int8 graphs (exported with ``--int8``)."""
        import onnxruntime as ort

        directory = Path(directory)
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ValueError(f"`directory` {directory} is not a UniMSE ONNX export: it has no {MANIFEST_NAME}")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"`directory` {directory}: {MANIFEST_NAME} has format {manifest.get('format')!r}, "
                             f"this version reads format {MANIFEST_FORMAT}")
        precision = "fp32" if quantize is None else quantize
        if precision not in ("fp32", "int8"):
            raise ValueError(f"`quantize` must be None or 'int8', got {quantize!r}")
        graphs = manifest["graphs"].get(precision)
        if graphs is None:
            raise ValueError(f"`directory` {directory} has no {precision} graphs; export with --int8 for quantize='int8'")
        providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        sessions = [ort.InferenceSession(str(directory / graphs[role]), sess_options=session_options, providers=providers)
                    for role in ("encoder", "decoder", "decoder_with_past")]
        processor = UniMSEProcessor.from_pretrained(directory)
        return cls(*sessions, processor=processor, manifest=manifest)

    # ------------------------------------------------------------------ graphs

    def encode(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the encoder graph on processor outputs.

        A modality the inputs lack is given as zero frames with mask 0, one per input token (an all-masked
        sample is encoded as missing, as when the modality is not passed; the token count also suits
        token-level fusion).
        """
        batch, text_length = np.asarray(inputs["input_ids"]).shape
        feed = {}
        for name in ENCODER_INPUTS:
            value = inputs.get(name)
            if value is None:
                modality = name.split("_")[0]
                dim = getattr(self.processor.feature_extractor, f"{modality}_dim")
                shape = (batch, text_length, dim) if name.endswith("features") else (batch, text_length)
                value = np.zeros(shape, np.float32 if name.endswith("features") else np.int64)
            value = value.numpy() if torch.is_tensor(value) else np.asarray(value)
            feed[name] = value.astype(np.float32 if name.endswith("features") else np.int64, copy=False)
        hidden, acoustic, visual = self.encoder.run(None, feed)
        return {"encoder_hidden_states": hidden, "encoder_attention_mask": feed["attention_mask"],
                "acoustic_vector": acoustic, "visual_vector": visual}

    def generate(self, inputs: Mapping[str, Any], max_new_tokens: Optional[int] = None, structured: bool = True,
                 output_logits: bool = False) -> UniMSEOnnxGenerateOutput:
        """Greedy decoding of processor outputs (`input_ids`, `attention_mask`, modality features/masks).

        `structured` and `max_new_tokens` mean what they mean in `processor.generation_kwargs` (grammar on;
        budget = the longest label). Finished rows continue with the pad id, as in `generate`.
        """
        decoding = self.processor.generation_kwargs(structured=structured, max_new_tokens=max_new_tokens)
        max_new_tokens = decoding["max_new_tokens"]
        logits_processor = decoding.get("logits_processor")
        missing = [name for name in ("input_ids", "attention_mask") if inputs.get(name) is None]
        if missing:
            raise ValueError(f"`inputs` lacks {missing}; pass the processor's output")
        encoded = self.encode(inputs)
        batch = encoded["encoder_hidden_states"].shape[0]
        sequences = torch.full((batch, 1), self.decoder_start_token_id, dtype=torch.long)
        unfinished = torch.ones(batch, dtype=torch.bool)
        shared = {name: encoded[name] for name in DECODER_INPUTS[1:]}
        outputs = self.decoder.run(None, {"decoder_input_ids": sequences.numpy(), **shared})
        cache_size = 2 * self.num_layers
        self_cache, cross_cache = outputs[1:1 + cache_size], outputs[1 + cache_size:]
        cross_feed = dict(zip(cache_names("cross", self.num_layers), cross_cache))
        past_names = cache_names("past_self", self.num_layers)
        all_logits = []
        for step in range(max_new_tokens):
            logits = torch.from_numpy(np.ascontiguousarray(outputs[0][:, -1, :], dtype=np.float32))
            if output_logits:
                all_logits.append(logits.numpy().copy())
            scores = logits_processor(sequences, logits) if logits_processor is not None else logits
            next_ids = torch.where(unfinished, scores.argmax(dim=-1), self.pad_token_id)
            sequences = torch.cat([sequences, next_ids.unsqueeze(1)], dim=1)
            unfinished &= next_ids != self.eos_token_id
            if not bool(unfinished.any()) or step == max_new_tokens - 1:
                break
            feed = {"decoder_input_ids": next_ids.unsqueeze(1).numpy(), **shared, **dict(zip(past_names, self_cache)),
                    **cross_feed}
            outputs = self.decoder_with_past.run(None, feed)
            self_cache = outputs[1:]
        return UniMSEOnnxGenerateOutput(sequences=sequences, logits=all_logits)

    # ------------------------------------------------------------------ end to end

    def __call__(self, text, acoustic: Any = None, visual: Any = None, max_new_tokens: Optional[int] = None,
                 structured: bool = True, **processor_kwargs: Any) -> list[ParsedLabel]:
        """Predict universal labels: the processor's arguments (`text`, `acoustic`, `visual`,
        `word_timestamps`, `align_to_tokens`, ...) in, one `ParsedLabel` per sample out."""
        inputs = self.processor(text, acoustic=acoustic, visual=visual, return_tensors="np", **processor_kwargs)
        result = self.generate(inputs, max_new_tokens=max_new_tokens, structured=structured)
        return self.processor.post_process_generation(result.sequences)


__all__ = ["UniMSEOnnxPredictor", "UniMSEOnnxGenerateOutput"]
