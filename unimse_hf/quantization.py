# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""int8 CPU inference for UniMSE with PyTorch dynamic quantisation.

``quantize_model(model, "int8")`` replaces every ``nn.Linear`` (T5 attention and feed-forward
projections, the LM head, the PMF adapters, the LSTM output projections) by a dynamically quantised
one: int8 weights with one scale per tensor, activations quantised per batch at run time. Embeddings,
layer norms and the LSTMs stay fp32. ``load_quantized(path)`` loads a checkpoint and does the same.
The quantised model generates through the usual ``model.generate``/pipeline; it is for CPU inference
only (no training, no saving).

For ONNX Runtime, ``python -m unimse_hf.export_onnx ... --int8`` writes dynamically quantised graphs.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from .modeling_unimse import UniMSEForConditionalGeneration

QUANTIZATION_MODES = ("int8",)
"""The accepted values of `quantize`."""


def quantize_model(model: UniMSEForConditionalGeneration, quantize: str = "int8") -> UniMSEForConditionalGeneration:
    """Return a dynamically int8-quantised copy of `model`'s `nn.Linear` layers, in eval mode, on CPU.

    `model` itself is left unchanged. Raises `ValueError` for an unknown `quantize` mode and `TypeError`
    for a model that is not a UniMSE model.
    """
    if quantize not in QUANTIZATION_MODES:
        raise ValueError(f"`quantize` must be one of {QUANTIZATION_MODES}, got {quantize!r}")
    if not isinstance(model, UniMSEForConditionalGeneration):
        raise TypeError(f"`model` must be a UniMSEForConditionalGeneration, got {type(model).__name__}")
    if model.device.type != "cpu" or model.dtype != torch.float32:
        raise ValueError(f"`model` must be a float32 model on CPU to be quantised, got {model.dtype} on {model.device}")
    with warnings.catch_warnings():
        # torch.ao's eager-mode quantisation warns that it will move to torchao; it still works in torch 2.x.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*")
        quantized = torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8, inplace=False)
    return quantized.eval()


def load_quantized(path: str | os.PathLike, quantize: str = "int8", **from_pretrained_kwargs) -> UniMSEForConditionalGeneration:
    """Load a UniMSE checkpoint with `from_pretrained(path, **from_pretrained_kwargs)` (fp32, CPU) and quantise it."""
    if quantize not in QUANTIZATION_MODES:
        raise ValueError(f"`quantize` must be one of {QUANTIZATION_MODES}, got {quantize!r}")
    from_pretrained_kwargs.setdefault("dtype", torch.float32)
    model = UniMSEForConditionalGeneration.from_pretrained(path, **from_pretrained_kwargs)
    return quantize_model(model, quantize)


__all__ = ["quantize_model", "load_quantized", "QUANTIZATION_MODES"]
