# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Export a UniMSE checkpoint to ONNX Runtime graphs.

    python -m unimse_hf.export_onnx --model DIR --output_dir DIR [--int8]

Three graphs are written, the layout of an encoder-decoder export with past key values:

* ``encoder_model.onnx``: ``input_ids``, ``attention_mask``, ``acoustic_features``,
  ``acoustic_attention_mask``, ``visual_features``, ``visual_attention_mask`` ->
  ``last_hidden_state``, ``acoustic_vector``, ``visual_vector`` (the LSTMs and the fused T5 encoder,
  i.e. ``model.encode``). A missing modality is given as zero frames with mask 0 (a sample with no
  valid frame is encoded as missing, exactly as when the modality is not passed).
* ``decoder_model.onnx``: the first decoder step (``decoder_input_ids`` of length 1, the encoder
  states and mask, both modality vectors) -> ``logits`` and, per decoder layer, the self-attention
  and cross-attention keys/values.
* ``decoder_with_past_model.onnx``: one later step, reading the self-attention cache and the
  cross-attention keys/values -> ``logits`` and the grown self-attention cache.

The graphs are traced (TorchScript exporter) through the model's public calls: ``model.encode`` and
``model(encoder_outputs=..., decoder_input_ids=..., cache=...)``. optimum-onnx is not used: its only
release requires transformers < 4.58, and it has no export config for extra encoder inputs. The
dynamo exporter cannot be used either: ``model.encode`` validates its inputs with data-dependent
checks, which ``torch.export`` refuses. The exporter cannot trace packed LSTM sequences, so while
tracing the modality encoders run the same LSTM over the (valid-first) frames unpacked and read the
output at each sample's last valid frame, which is the final hidden state of the packed run.

Before anything is written, the checkpoint is checked (see :func:`check_exportable`). After export, the
graphs are run on a probe batch and must reproduce PyTorch's encoder outputs and logits; otherwise the
export fails and the output folder is not created. With ``--int8``, ONNX Runtime's dynamic int8
quantisation of the MatMul/Gemm weights is written alongside (``*_int8.onnx``); the LM head stays fp32
(see :func:`quantize_graphs`; the manifest's ``int8_fp32_nodes`` names it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from .configuration_unimse import UniMSEConfig
from .modeling_unimse import UniMSEEncoderOutput, UniMSEForConditionalGeneration, UniMSEModalityEncoding
from .processing_unimse import UniMSEProcessor

OPSET_VERSION = 17
MANIFEST_NAME = "onnx_export.json"
"""The file, written next to the graphs, that names them and the decoding token ids."""
MANIFEST_FORMAT = 1
GRAPH_FILES = {
    "fp32": {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx",
             "decoder_with_past": "decoder_with_past_model.onnx"},
    "int8": {"encoder": "encoder_model_int8.onnx", "decoder": "decoder_model_int8.onnx",
             "decoder_with_past": "decoder_with_past_model_int8.onnx"},
}
"""Graph file names per precision."""
ENCODER_INPUTS = ["input_ids", "attention_mask", "acoustic_features", "acoustic_attention_mask",
                  "visual_features", "visual_attention_mask"]
ENCODER_OUTPUTS = ["last_hidden_state", "acoustic_vector", "visual_vector"]
DECODER_INPUTS = ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask", "acoustic_vector",
                  "visual_vector"]
VERIFY_TOLERANCE = 1e-4
"""Largest absolute difference between ONNX Runtime and PyTorch accepted on the probe batch."""


def cache_names(prefix: str, num_layers: int) -> list[str]:
    """Names of one cache's tensors: ``{prefix}_key.{i}``, ``{prefix}_value.{i}`` for every layer."""
    return [f"{prefix}_{kind}.{layer}" for layer in range(num_layers) for kind in ("key", "value")]


def _unpack_cache(cache: DynamicCache) -> list[torch.Tensor]:
    return [tensor for layer in cache.layers for tensor in (layer.keys, layer.values)]


def _pack_cache(tensors: Sequence[torch.Tensor]) -> DynamicCache:
    return DynamicCache([(tensors[i], tensors[i + 1]) for i in range(0, len(tensors), 2)])


# ---------------------------------------------------------------------------------------------- modules


class UniMSETraceableModalityEncoder(nn.Module):
    """The vectors of a `UniMSEModalityEncoder` without packed sequences, for tracing.

    The valid frames are moved first (stable order) and the LSTM runs over all frames; a unidirectional
    LSTM's output at a sample's last valid frame is the final hidden state of the packed run, and its
    outputs at the valid frames are those of the packed run. The utterance vector, presence and (for
    token-level fusion) per-position states are produced; the pooled sequence feeds only the contrastive
    loss and is left out.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.rnn = encoder.rnn
        self.dropout = encoder.dropout
        self.output_projection = encoder.output_projection
        self.source = encoder

    def forward(self, features: torch.Tensor, mask: Optional[torch.Tensor],
                return_token_states: bool = False) -> UniMSEModalityEncoding:
        """Encode (batch, frames, input_dim) features with a (batch, frames) validity mask."""
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True).unsqueeze(-1)
        outputs, _ = self.rnn(torch.gather(features, 1, order.expand_as(features)))
        last = (lengths.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
        final_hidden = torch.gather(outputs, 1, last).squeeze(1)
        present = lengths > 0
        missing = self.source.missing_embedding.to(outputs.dtype)
        vector = self.output_projection(self.dropout(final_hidden))
        vector = torch.where(present.unsqueeze(1), vector, missing.unsqueeze(0))
        token_states = None
        if return_token_states:
            # Back to the frames' own positions; an invalid position takes the missing vector.
            in_place = torch.zeros_like(outputs).scatter(1, order.expand_as(outputs), outputs)
            token_states = torch.where(mask.unsqueeze(-1), self.output_projection(self.dropout(in_place)), missing)
        return UniMSEModalityEncoding(vector=vector, pooled_sequence=None, present=present, token_states=token_states)


@contextmanager
def traceable_modality_encoders(model: UniMSEForConditionalGeneration) -> Iterator[None]:
    """Within the block, `model`'s acoustic and visual encoders are their traceable equivalents."""
    acoustic, visual = model.acoustic_encoder, model.visual_encoder
    model.acoustic_encoder = UniMSETraceableModalityEncoder(acoustic).train(acoustic.training)
    model.visual_encoder = UniMSETraceableModalityEncoder(visual).train(visual.training)
    try:
        yield
    finally:
        model.acoustic_encoder, model.visual_encoder = acoustic, visual


class UniMSEOnnxEncoder(nn.Module):
    """`model.encode` with positional tensor inputs and a tuple output, as the encoder graph."""

    def __init__(self, model: UniMSEForConditionalGeneration):
        super().__init__()
        self.model = model
        self.train(model.training)  # the exporter restores the wrapper's mode on the whole model afterwards

    def forward(self, input_ids, attention_mask, acoustic_features, acoustic_attention_mask, visual_features,
                visual_attention_mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (last_hidden_state, acoustic_vector, visual_vector)."""
        encoded = self.model.encode(
            input_ids=input_ids, attention_mask=attention_mask, acoustic_features=acoustic_features,
            acoustic_attention_mask=acoustic_attention_mask, visual_features=visual_features,
            visual_attention_mask=visual_attention_mask,
        )
        return encoded.last_hidden_state, encoded.acoustic_vector, encoded.visual_vector


class UniMSEOnnxDecoder(nn.Module):
    """The first decoder step: logits plus the self- and cross-attention caches it creates."""

    def __init__(self, model: UniMSEForConditionalGeneration):
        super().__init__()
        self.model = model
        self.train(model.training)  # the exporter restores the wrapper's mode on the whole model afterwards

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask, acoustic_vector,
                visual_vector) -> tuple[torch.Tensor, ...]:
        """Return (logits, self keys/values per layer..., cross keys/values per layer...)."""
        encoder_outputs = UniMSEEncoderOutput(last_hidden_state=encoder_hidden_states,
                                              acoustic_vector=acoustic_vector, visual_vector=visual_vector)
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        output = self.model(encoder_outputs=encoder_outputs, attention_mask=encoder_attention_mask,
                            decoder_input_ids=decoder_input_ids, cache=cache, use_cache=True)
        return (output.logits, *_unpack_cache(output.cache.self_attention_cache),
                *_unpack_cache(output.cache.cross_attention_cache))


class UniMSEOnnxDecoderWithPast(nn.Module):
    """A later decoder step: reads the caches, returns logits and the grown self-attention cache."""

    def __init__(self, model: UniMSEForConditionalGeneration):
        super().__init__()
        self.model = model
        self.train(model.training)  # the exporter restores the wrapper's mode on the whole model afterwards
        self.num_layers = model.config.num_decoder_layers

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask, acoustic_vector,
                visual_vector, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`caches`: self keys/values per layer, then cross keys/values per layer."""
        size = 2 * self.num_layers
        cache = EncoderDecoderCache(_pack_cache(caches[:size]), _pack_cache(caches[size:]))
        encoder_outputs = UniMSEEncoderOutput(last_hidden_state=encoder_hidden_states,
                                              acoustic_vector=acoustic_vector, visual_vector=visual_vector)
        output = self.model(encoder_outputs=encoder_outputs, attention_mask=encoder_attention_mask,
                            decoder_input_ids=decoder_input_ids, cache=cache, use_cache=True)
        return (output.logits, *_unpack_cache(output.cache.self_attention_cache))


# ---------------------------------------------------------------------------------------------- checks


def check_exportable(model_dir: str | Path) -> UniMSEConfig:
    """Return the checkpoint's config, or raise `ValueError` naming `--model` and what the export cannot use.

    Refused: a folder without ``config.json``; a checkpoint that is not UniMSE (``model_type``); a
    checkpoint without its processor (the exported folder must carry it to be usable). A checkpoint whose
    graphs do not reproduce it is refused after tracing (see :func:`verify_graphs`).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"`--model` {model_dir} is not a checkpoint folder: it has no config.json")
    with open(model_dir / "config.json", encoding="utf-8") as handle:
        model_type = json.load(handle).get("model_type")
    if model_type != UniMSEConfig.model_type:
        raise ValueError(f"`--model` {model_dir} is a {model_type!r} checkpoint; only UniMSE "
                         f"(model_type {UniMSEConfig.model_type!r}) can be exported")
    if not (model_dir / "processor_config.json").is_file():
        raise ValueError(f"`--model` {model_dir} has no processor_config.json; save the processor with the "
                         f"model before exporting (the export carries it)")
    return AutoConfig.from_pretrained(model_dir)


def _check_output_dir(output_dir: Path) -> None:
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(f"`--output_dir` {output_dir} already exists and is not an empty folder; "
                         f"choose a new folder (nothing is overwritten)")


# ---------------------------------------------------------------------------------------------- export


def probe_inputs(processor: UniMSEProcessor, token_aligned: bool = False) -> dict[str, torch.Tensor]:
    """A small batch with padding in the text and in both modalities (one sample lacks visual frames);
    `token_aligned` gives every token its word's frames (what token-level fusion reads)."""
    rng = np.random.default_rng(0)
    extractor = processor.feature_extractor
    acoustic = [rng.standard_normal((n, extractor.acoustic_dim)).astype(np.float32) for n in (5, 3, 4)]
    visual = [rng.standard_normal((n, extractor.visual_dim)).astype(np.float32) for n in (4, 2)] + [None]
    batch = processor(["that was a truly wonderful film", "not good", "fine i guess"], acoustic=acoustic,
                      visual=visual, align_to_tokens=token_aligned, return_tensors="pt")
    return dict(batch)


_TOPK_SCALAR_TYPES = {"Float", "Double", "Int", "Long"}
_ONNX_INT32 = 6


def _stable_argsort_symbolic(graph, values, *args):
    """ONNX for `torch.argsort` (also `stable=True`, which the TorchScript exporter lacks): a full-length
    TopK, which the ONNX specification defines as stable (equal values keep their index order)."""
    from torch.onnx import symbolic_helper

    dim, descending = args[-2:]  # aten::argsort(self, dim, descending) or argsort.stable(self, stable, dim, descending)
    dim = symbolic_helper._get_const(dim, "i", "dim")
    descending = symbolic_helper._get_const(descending, "b", "descending")
    if values.type().scalarType() not in _TOPK_SCALAR_TYPES:
        values = graph.op("Cast", values, to_i=_ONNX_INT32)
    length = graph.op("Gather", graph.op("Shape", values), graph.op("Constant", value_t=torch.tensor([dim])))
    _, indices = graph.op("TopK", values, length, axis_i=dim, largest_i=int(descending), sorted_i=1, outputs=2)
    return indices


def _token_level(model: UniMSEForConditionalGeneration) -> bool:
    return getattr(model.config, "fusion_granularity", "utterance") == "token"


def _export(module: nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
            dynamic_axes: dict[str, dict[int, str]]) -> None:
    torch.onnx.register_custom_op_symbolic("aten::argsort", _stable_argsort_symbolic, OPSET_VERSION)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on the model's shape checks; the probe run verifies
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET_VERSION, dynamo=False,
                          do_constant_folding=True)


def export_graphs(model: UniMSEForConditionalGeneration, processor: UniMSEProcessor, output_dir: Path) -> None:
    """Trace the three fp32 graphs of `model` (in eval mode, eager attention) into `output_dir`."""
    model.eval()
    num_layers = model.config.num_decoder_layers
    probe = probe_inputs(processor, _token_level(model))
    encoder_args = tuple(probe[name] for name in ENCODER_INPUTS)
    batch_axes = {0: "batch"}
    encoder_axes = {
        "input_ids": {0: "batch", 1: "text_length"}, "attention_mask": {0: "batch", 1: "text_length"},
        "acoustic_features": {0: "batch", 1: "acoustic_frames"}, "acoustic_attention_mask": {0: "batch", 1: "acoustic_frames"},
        "visual_features": {0: "batch", 1: "visual_frames"}, "visual_attention_mask": {0: "batch", 1: "visual_frames"},
        "last_hidden_state": {0: "batch", 1: "text_length"}, "acoustic_vector": batch_axes, "visual_vector": batch_axes,
    }
    decoder_axes = {
        "decoder_input_ids": batch_axes, "encoder_hidden_states": {0: "batch", 1: "text_length"},
        "encoder_attention_mask": {0: "batch", 1: "text_length"}, "acoustic_vector": batch_axes,
        "visual_vector": batch_axes, "logits": batch_axes,
    }
    past_axes = {name: {0: "batch", 2: "past_length"} for name in cache_names("past_self", num_layers)}
    present_axes = {name: {0: "batch", 2: "past_length_plus_1"} for name in cache_names("present_self", num_layers)}
    first_present_axes = {name: batch_axes for name in cache_names("present_self", num_layers)}
    cross_axes = {name: {0: "batch", 2: "text_length"} for name in cache_names("cross", num_layers)}
    files = GRAPH_FILES["fp32"]
    with torch.no_grad(), traceable_modality_encoders(model):
        _export(UniMSEOnnxEncoder(model), encoder_args, output_dir / files["encoder"], ENCODER_INPUTS,
                ENCODER_OUTPUTS, encoder_axes)
        hidden, acoustic_vector, visual_vector = UniMSEOnnxEncoder(model)(*encoder_args)
        batch = hidden.shape[0]
        start = torch.full((batch, 1), model.config.decoder_start_token_id, dtype=torch.long)
        decoder_args = (start, hidden, probe["attention_mask"], acoustic_vector, visual_vector)
        _export(UniMSEOnnxDecoder(model), decoder_args, output_dir / files["decoder"], DECODER_INPUTS,
                ["logits", *cache_names("present_self", num_layers), *cache_names("cross", num_layers)],
                {**decoder_axes, **first_present_axes, **cross_axes})
        first = UniMSEOnnxDecoder(model)(*decoder_args)
        # Two steps of history, so the traced cache length is not a constant 1.
        step_ids = torch.full((batch, 1), 3, dtype=torch.long)
        self_cache = list(first[1:1 + 2 * num_layers])
        cross_cache = list(first[1 + 2 * num_layers:])
        second = UniMSEOnnxDecoderWithPast(model)(step_ids, *decoder_args[1:], *self_cache, *cross_cache)
        with_past_args = (step_ids, *decoder_args[1:], *second[1:], *cross_cache)
        _export(UniMSEOnnxDecoderWithPast(model), with_past_args, output_dir / files["decoder_with_past"],
                [*DECODER_INPUTS, *cache_names("past_self", num_layers), *cache_names("cross", num_layers)],
                ["logits", *cache_names("present_self", num_layers)],
                {**decoder_axes, **past_axes, **present_axes, **cross_axes})


def verify_graphs(model: UniMSEForConditionalGeneration, processor: UniMSEProcessor, output_dir: Path) -> float:
    """Greedy-decode the probe batch with the graphs and with PyTorch (the real modality encoders, no
    traced stand-ins); return the largest logit difference, or raise `RuntimeError` beyond tolerance."""
    from .onnx_predictor import UniMSEOnnxPredictor

    predictor = UniMSEOnnxPredictor.from_pretrained(output_dir)
    probe = probe_inputs(processor, _token_level(model))
    steps = 4
    result = predictor.generate(probe, max_new_tokens=steps, structured=False, output_logits=True)
    with torch.no_grad():
        reference = model.generate(**probe, max_new_tokens=steps, do_sample=False, num_beams=1,
                                   output_logits=True, return_dict_in_generate=True)
    worst = max(float((torch.as_tensor(ort) - ref).abs().max()) for ort, ref in zip(result.logits, reference.logits))
    if worst > VERIFY_TOLERANCE or not torch.equal(result.sequences, reference.sequences):
        raise RuntimeError(f"the exported graphs do not reproduce the PyTorch model on a probe batch (largest "
                           f"logit difference {worst:.3g}, tolerance {VERIFY_TOLERANCE}); nothing was written")
    return worst


def output_projection_nodes(graph_path: Path, vocab_size: int) -> list[str]:
    """The MatMul/Gemm nodes of a graph whose constant weight has a `vocab_size` dimension: the LM head."""
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False).graph
    vocabulary_weights = {init.name for init in graph.initializer if vocab_size in init.dims}
    return [node.name for node in graph.node
            if node.op_type in ("MatMul", "Gemm") and vocabulary_weights.intersection(node.input)]


def quantize_graphs(output_dir: Path, vocab_size: int) -> list[str]:
    """Write ONNX Runtime dynamic int8 versions of the fp32 graphs; return the nodes left in fp32.

    Every MatMul/Gemm with a constant weight is quantised (int8 weights, one scale per tensor,
    activations quantised per call) except the LM head, the projection onto the `vocab_size` logits:
    one scale for its whole (d_model, vocabulary) weight is the coarsest in the model, the label's
    decisive tokens are read from its logits, and the other layers carry most of the cost.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = []
    for role, name in GRAPH_FILES["fp32"].items():
        head = output_projection_nodes(output_dir / name, vocab_size)
        kept += [node for node in head if node not in kept]
        quantize_dynamic(output_dir / name, output_dir / GRAPH_FILES["int8"][role], weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=head,
                         extra_options={"MatMulConstBOnly": True})
    return kept


def export_onnx(model_dir: str | Path, output_dir: str | Path, int8: bool = False) -> Path:
    """Export the checkpoint in `model_dir` to `output_dir` (created; must not exist or be empty).

    Writes the graphs, the processor, the config and ``onnx_export.json``; with `int8` also the
    dynamically quantised graphs. Everything is built in a temporary folder and moved into place at the
    end, so a failed export leaves nothing behind.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    check_exportable(model_dir)
    _check_output_dir(output_dir)
    model = UniMSEForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    model.set_attn_implementation("eager")
    model.eval()
    processor = UniMSEProcessor.from_pretrained(model_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        export_graphs(model, processor, staging)
        config = model.config
        manifest = {
            "format": MANIFEST_FORMAT,
            "opset": OPSET_VERSION,
            "num_decoder_layers": config.num_decoder_layers,
            "decoder_start_token_id": config.decoder_start_token_id,
            "eos_token_id": config.eos_token_id,
            "pad_token_id": config.pad_token_id,
            "acoustic_dim": config.acoustic_dim,
            "visual_dim": config.visual_dim,
            "graphs": {"fp32": GRAPH_FILES["fp32"]},
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        processor.save_pretrained(staging)
        config.save_pretrained(staging)
        verify_graphs(model, processor, staging)
        if int8:
            manifest["int8_fp32_nodes"] = quantize_graphs(staging, config.vocab_size)
            manifest["graphs"]["int8"] = GRAPH_FILES["int8"]
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if output_dir.exists():
            output_dir.rmdir()
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``python -m unimse_hf.export_onnx --model DIR --output_dir DIR [--int8]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a saved UniMSE checkpoint folder (with its processor)")
    parser.add_argument("--output_dir", required=True, help="new folder for the graphs")
    parser.add_argument("--int8", action="store_true", help="also write ONNX Runtime dynamic int8 graphs")
    args = parser.parse_args(argv)
    path = export_onnx(args.model, args.output_dir, int8=args.int8)
    print(f"exported {args.model} to {path}")


if __name__ == "__main__":
    main()


__all__ = ["export_onnx", "check_exportable", "export_graphs", "verify_graphs", "quantize_graphs", "output_projection_nodes",
           "UniMSEOnnxEncoder", "UniMSEOnnxDecoder", "UniMSEOnnxDecoderWithPast", "UniMSETraceableModalityEncoder",
           "traceable_modality_encoders", "cache_names", "GRAPH_FILES", "MANIFEST_NAME"]
