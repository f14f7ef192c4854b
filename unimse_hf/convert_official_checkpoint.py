# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Convert a state dict saved by the official UniMSE code (LeMei/UniMSE) into a UniMSE checkpoint.

Usage::

    python -m unimse_hf.convert_official_checkpoint --official_state_dict model.pt --output_dir unimse-converted \\
        [--official_quirks] [--tokenizer_dir data/t5]

Dimensions (d_model, layers, heads, d_ff, feature sizes, LSTM sizes, adapter depth and bottleneck,
contrastive projections) are read from the tensor shapes. `--official_quirks` sets the flags that
make the converted model compute exactly what the official code computes (B1, B2, B3, B4).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from .configuration_unimse import UniMSEConfig
from .modeling_unimse import UniMSEForConditionalGeneration

OFFICIAL_T5_PREFIX = "T5_encoder.t5_model."
OFFICIAL_QUIRK_FLAGS: dict[str, Any] = {
    "cl_in_decoder": True,
    "cl_text_pooling": "mean_with_padding",
    "cl_permute_modality_sequences": True,
    "freeze_cl_projections": True,
}
"""Config values reproducing the official computation (findings B1-B4 of docs/official-differences.md)."""

_ADAPTER = re.compile(r"^(encoder|decoder)\.block\.(\d+)\.layer\.(\d+)\.adapter_(down_project|up_project|linear)\.(weight|bias)$")
_INFO_NCE = re.compile(r"^(encoder|decoder)\.info_nce\.info_proj_(query|positive)\.weight$")
_MODALITY = re.compile(r"^(acoustic|visual)_enc\.(rnn|linear_1)\.(.+)$")
_ADAPTER_NAMES = {"down_project": "down_proj", "up_project": "up_proj", "linear": "out_proj"}
_TIED_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")


def load_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official state dict from `.safetensors`, or from a torch file with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`official_state_dict` not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state_dict = load_file(str(path))
    else:
        state_dict = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state_dict, Mapping) and "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, Mapping) or not all(torch.is_tensor(v) for v in state_dict.values()):
        raise ValueError(f"`official_state_dict` ({path}) must hold a mapping of parameter names to tensors")
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def _t5_view(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the official wrapper prefix from the T5 keys; keep the modality-encoder keys as they are."""
    out = {}
    for key, value in state_dict.items():
        out[key.removeprefix(OFFICIAL_T5_PREFIX)] = value
    return out


def _adapter_blocks(keys: list[str], stack: str) -> list[int]:
    return sorted({int(m.group(2)) for k in keys if (m := _ADAPTER.match(k)) and m.group(1) == stack})


def infer_config_from_official_state_dict(state_dict: Mapping[str, torch.Tensor], **overrides: Any) -> UniMSEConfig:
    """Build a `UniMSEConfig` whose dimensions match the tensors of an official state dict.

    Keyword arguments override any inferred or default field (e.g. the quirk flags).
    """
    sd = _t5_view(state_dict)
    required = ("shared.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                "acoustic_enc.rnn.weight_ih_l0", "visual_enc.rnn.weight_ih_l0", "acoustic_enc.linear_1.weight")
    absent = [key for key in required if key not in sd]
    if absent:
        raise ValueError(f"`official_state_dict` lacks {absent}: not a state dict saved by the official UniMSE code")
    keys = list(sd)
    vocab_size, d_model = sd["shared.weight"].shape
    num_layers = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"^encoder\.block\.(\d+)\.", k)))
    num_decoder_layers = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"^decoder\.block\.(\d+)\.", k)))
    bias = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    num_buckets, num_heads = bias.shape
    inner = sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in sd
    wi = sd["encoder.block.0.layer.1.DenseReluDense." + ("wi_0" if gated else "wi") + ".weight"]
    encoder_adapters = _adapter_blocks(keys, "encoder")
    decoder_adapters = _adapter_blocks(keys, "decoder")
    if encoder_adapters != list(range(num_layers - len(encoder_adapters), num_layers)):
        raise ValueError(f"`official_state_dict` has PMF adapters in encoder blocks {encoder_adapters}; "
                         "UniMSE supports adapters in the last consecutive blocks only")
    fields: dict[str, Any] = {
        "vocab_size": int(vocab_size),
        "d_model": int(d_model),
        "d_kv": int(inner // num_heads),
        "d_ff": int(wi.shape[0]),
        "num_layers": int(num_layers),
        "num_decoder_layers": int(num_decoder_layers),
        "num_heads": int(num_heads),
        "relative_attention_num_buckets": int(num_buckets),
        "feed_forward_proj": "gated-gelu" if gated else "relu",
        "pmf_layers": len(encoder_adapters),
        "pmf_in_decoder": bool(decoder_adapters),
        "acoustic_dim": int(sd["acoustic_enc.rnn.weight_ih_l0"].shape[1]),
        "visual_dim": int(sd["visual_enc.rnn.weight_ih_l0"].shape[1]),
        "modality_hidden": int(sd["acoustic_enc.rnn.weight_hh_l0"].shape[1]),
        "modality_out": int(sd["acoustic_enc.linear_1.weight"].shape[0]),
        "cl_enabled": "encoder.info_nce.info_proj_query.weight" in sd,
        "cl_in_decoder": "decoder.info_nce.info_proj_query.weight" in sd,
    }
    if encoder_adapters:
        fields["pmf_bottleneck"] = int(sd[f"encoder.block.{encoder_adapters[0]}.layer.2.adapter_down_project.weight"].shape[0])
    if fields["cl_enabled"]:
        fields["cl_proj_dim"] = int(sd["encoder.info_nce.info_proj_query.weight"].shape[0])
    fields.update(overrides)
    return UniMSEConfig(**fields)


def convert_official_state_dict(state_dict: Mapping[str, torch.Tensor], config: UniMSEConfig) -> dict[str, torch.Tensor]:
    """Rename official keys to UniMSE keys (adapters, LSTMs, InfoNCE projections); T5 keys keep their names."""
    sd = _t5_view(state_dict)
    block_slot = {
        "encoder": {block: i for i, block in enumerate(config.pmf_encoder_blocks)},
        "decoder": {block: i for i, block in enumerate(config.pmf_decoder_blocks)},
    }
    converted: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key in _TIED_ALIASES:
            continue
        if m := _ADAPTER.match(key):
            stack, block, _, name, kind = m.groups()
            if int(block) not in block_slot[stack]:
                raise ValueError(f"`official_state_dict` key {key!r} is an adapter in a block the config has none in")
            converted[f"{stack}_fusion.{block_slot[stack][int(block)]}.{_ADAPTER_NAMES[name]}.{kind}"] = value
        elif m := _INFO_NCE.match(key):
            stack, side = m.groups()
            target = "text_projection" if side == "query" else "modality_projection"
            converted[f"{stack}_contrastive_head.{target}.weight"] = value.squeeze(-1)
        elif m := _MODALITY.match(key):
            modality, module, rest = m.groups()
            converted[f"{modality}_encoder.{'rnn' if module == 'rnn' else 'output_projection'}.{rest}"] = value
        else:
            converted[key] = value
    return converted


def convert_official_checkpoint(
    official_state_dict: str | os.PathLike | Mapping[str, torch.Tensor],
    output_dir: str | os.PathLike | None = None,
    official_quirks: bool = False,
    tokenizer_dir: str | os.PathLike | None = None,
    **config_overrides: Any,
) -> UniMSEForConditionalGeneration:
    """Load an official state dict into a `UniMSEForConditionalGeneration` (strict: every key must map).

    With `output_dir` the model (and a processor built from `tokenizer_dir`, if given) is saved there.
    """
    state_dict = (load_official_state_dict(official_state_dict)
                  if isinstance(official_state_dict, (str, os.PathLike)) else dict(official_state_dict))
    overrides = {**(OFFICIAL_QUIRK_FLAGS if official_quirks else {}), **config_overrides}
    config = infer_config_from_official_state_dict(state_dict, **overrides)
    model = UniMSEForConditionalGeneration(config)
    converted = convert_official_state_dict(state_dict, config)
    expected = set(model.state_dict()) - set(_TIED_ALIASES)
    missing, unexpected = sorted(expected - set(converted)), sorted(set(converted) - expected)
    if missing or unexpected:
        raise ValueError(f"`official_state_dict` does not match the inferred UniMSE layout: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict(converted, strict=False)
    model.tie_weights()
    model.eval()
    if output_dir is not None:
        from . import register_auto_classes

        register_auto_classes()
        model.save_pretrained(output_dir)
        if tokenizer_dir is not None:
            from .processing_unimse import UniMSEProcessor

            UniMSEProcessor.from_tokenizer_dir(tokenizer_dir, acoustic_dim=config.acoustic_dim,
                                               visual_dim=config.visual_dim).save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official_state_dict", required=True, help="official state dict (.pt/.bin/.safetensors)")
    parser.add_argument("--output_dir", required=True, help="where to write the UniMSE checkpoint")
    parser.add_argument("--official_quirks", action="store_true", help="reproduce the official computation (B1-B4)")
    parser.add_argument("--tokenizer_dir", default=None, help="folder with the T5 spiece.model, to save a processor too")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="override a config field, e.g. --set cl_weight_ta=0.3 --set missing_modality='\"learned\"'")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects FIELD=JSON, got {item!r}")
        try:
            overrides[field] = json.loads(value)
        except json.JSONDecodeError:
            overrides[field] = value
    model = convert_official_checkpoint(args.official_state_dict, args.output_dir, official_quirks=args.official_quirks,
                                        tokenizer_dir=args.tokenizer_dir, **overrides)
    print(f"Converted {sum(p.numel() for p in model.parameters()):,} parameters into {args.output_dir}")


if __name__ == "__main__":
    main()
