# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE model configuration: a T5 configuration plus the fusion and contrastive fields."""

from __future__ import annotations

from transformers import T5Config

MISSING_MODALITY_POLICIES = ("zeros", "learned")
CL_TEXT_POOLINGS = ("masked_mean", "mean_with_padding")
PMF_ACTIVATIONS = ("sigmoid", "relu", "gelu", "tanh")


class UniMSEConfig(T5Config):
    r"""
    Configuration of [`UniMSEForConditionalGeneration`]. Defaults reproduce the paper's T5-base setup
    (PMF in the last 3 blocks of encoder and decoder, LSTM 64->32, blocks 10-11 trainable) with the
    plain bugs of the official code fixed; each fix that changes numbers has a flag restoring the
    official behaviour (see `unimse-reference.md` section 9 for the finding numbers B1-B28).

    T5 fields (`vocab_size`, `d_model`, `d_kv`, `d_ff`, `num_layers`, `num_decoder_layers`, `num_heads`,
    `relative_attention_*`, `dropout_rate`, `layer_norm_epsilon`, `initializer_factor`,
    `feed_forward_proj`, token ids) keep their T5 meaning, with t5-base defaults.

    pmf_layers (`int`, defaults to 3):
        Number of final blocks carrying a PMF fusion adapter after their feed-forward sub-layer. As in the
        official code, a value larger than a stack's depth is clamped to every block of that stack.
    pmf_in_decoder (`bool`, defaults to `True`):
        Also put adapters in the decoder's last `pmf_layers` blocks (the official code does, B6).
    pmf_bottleneck (`int`, defaults to 64):
        Width of the adapter's bottleneck.
    pmf_activation (`str`, defaults to `"sigmoid"`):
        Bottleneck non-linearity, one of `"sigmoid"` (official), `"relu"`, `"gelu"`, `"tanh"`.
    pmf_identity_init (`bool`, defaults to `False`):
        Initialise each adapter as the identity on the text states (output projection = [I | 0], up
        projection = 0), so a fresh UniMSE equals its T5 backbone (B7). `False` keeps the official
        PyTorch-default output projection.
    pmf_init_std (`float`, defaults to 0.001):
        Standard deviation of the adapter's down/up projections at initialisation.
    acoustic_dim (`int`, defaults to 64):
        Dimension of one acoustic frame.
    visual_dim (`int`, defaults to 64):
        Dimension of one visual frame.
    modality_hidden (`int`, defaults to 32):
        Hidden size of the acoustic and visual LSTMs.
    modality_out (`int`, defaults to 32):
        Size of the utterance vectors fed to the adapters.
    modality_dropout (`float`, defaults to 0.3):
        Dropout on the LSTM's final hidden state before the output projection.
    missing_modality (`str`, defaults to `"zeros"`):
        Utterance vector used when a modality is absent (not given, or a sample with no valid frame):
        `"zeros"` (a zero vector) or `"learned"` (a trained embedding per modality).
    cl_enabled (`bool`, defaults to `True`):
        Compute the text-acoustic and text-visual InfoNCE terms (off in the official default, B5).
    cl_temperature (`float`, defaults to 0.1):
        InfoNCE temperature.
    cl_proj_dim (`int`, defaults to 30):
        Size of the contrastive projections.
    cl_weight_ta (`float`, defaults to 0.5):
        Weight of the text-acoustic InfoNCE term in the training loss.
    cl_weight_tv (`float`, defaults to 0.5):
        Weight of the text-visual InfoNCE term in the training loss.
    cl_label_weight (`float`, defaults to 0.0):
        Weight of the optional label-aware inter-sample term (samples sharing a label are positives); 0 = off.
    cl_layer (`int`, defaults to -1):
        Encoder block whose *input* hidden states are pooled for the text side (-1 = last block, as
        the official code ends up using, B3).
    cl_in_decoder (`bool`, defaults to `False`):
        Also compute InfoNCE on the decoder's last-block input and add it (official behaviour, B3).
    cl_text_pooling (`str`, defaults to `"masked_mean"`):
        `"masked_mean"` ignores padding (B4 fixed); `"mean_with_padding"` reproduces the official mean.
    cl_permute_modality_sequences (`bool`, defaults to `False`):
        Reproduce the official LSTM sequence re-permutation bug (B1) that mismatches InfoNCE positives.
    freeze_cl_projections (`bool`, defaults to `False`):
        Keep the contrastive projections frozen during training, as the official optimiser does (B2).
    trainable_t5_blocks (`list[int]`, *optional*):
        Indices of the T5 blocks (encoder and decoder) trained with the fusion modules; every other T5
        weight is frozen. `None` means the last two blocks (10 and 11 for t5-base, as in the paper).
    task_prefix (`str`, defaults to `"sst2 sentence: "`):
        Text prepended to every input; the processor applies it and the pipeline checks they agree.
    """

    model_type = "unimse"

    # T5 fields with t5-base defaults (T5Config's own defaults are t5-small).
    d_model: int = 768
    d_kv: int = 64
    d_ff: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    decoder_start_token_id: int | None = 0

    pmf_layers: int = 3
    pmf_in_decoder: bool = True
    pmf_bottleneck: int = 64
    pmf_activation: str = "sigmoid"
    pmf_identity_init: bool = False
    pmf_init_std: float = 0.001
    acoustic_dim: int = 64
    visual_dim: int = 64
    modality_hidden: int = 32
    modality_out: int = 32
    modality_dropout: float = 0.3
    missing_modality: str = "zeros"
    cl_enabled: bool = True
    cl_temperature: float = 0.1
    cl_proj_dim: int = 30
    cl_weight_ta: float = 0.5
    cl_weight_tv: float = 0.5
    cl_label_weight: float = 0.0
    cl_layer: int = -1
    cl_in_decoder: bool = False
    cl_text_pooling: str = "masked_mean"
    cl_permute_modality_sequences: bool = False
    freeze_cl_projections: bool = False
    trainable_t5_blocks: list[int] | None = None
    task_prefix: str = "sst2 sentence: "

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._validate_unimse_fields()
        if self.trainable_t5_blocks is None:
            self.trainable_t5_blocks = [i for i in range(max(self.num_layers - 2, 0), self.num_layers)]
        else:
            self.trainable_t5_blocks = [int(i) for i in self.trainable_t5_blocks]

    @property
    def pmf_encoder_blocks(self) -> list[int]:
        """Encoder block indices carrying a PMF adapter (the official clamped rule)."""
        return _last_blocks(self.num_layers, self.pmf_layers)

    @property
    def pmf_decoder_blocks(self) -> list[int]:
        """Decoder block indices carrying a PMF adapter; empty unless `pmf_in_decoder`."""
        return _last_blocks(self.num_decoder_layers, self.pmf_layers) if self.pmf_in_decoder else []

    def _validate_unimse_fields(self) -> None:
        positive_ints = ("d_model", "d_kv", "d_ff", "num_layers", "num_heads", "vocab_size", "pmf_bottleneck",
                         "acoustic_dim", "visual_dim", "modality_hidden", "modality_out", "cl_proj_dim")
        for name in positive_ints:
            _require(name, getattr(self, name), lambda v: _is_int(v) and v > 0, "a positive integer")
        _require("pmf_layers", self.pmf_layers, lambda v: _is_int(v) and v >= 0, "an integer >= 0")
        _require("pmf_activation", self.pmf_activation, lambda v: v in PMF_ACTIVATIONS, f"one of {PMF_ACTIVATIONS}")
        _require("missing_modality", self.missing_modality, lambda v: v in MISSING_MODALITY_POLICIES,
                 f"one of {MISSING_MODALITY_POLICIES}")
        _require("cl_text_pooling", self.cl_text_pooling, lambda v: v in CL_TEXT_POOLINGS, f"one of {CL_TEXT_POOLINGS}")
        _require("modality_dropout", self.modality_dropout, lambda v: _is_number(v) and 0 <= v < 1, "a float in [0, 1)")
        _require("pmf_init_std", self.pmf_init_std, lambda v: _is_number(v) and v >= 0, "a float >= 0")
        _require("cl_temperature", self.cl_temperature, lambda v: _is_number(v) and v > 0, "a float > 0")
        for name in ("cl_weight_ta", "cl_weight_tv", "cl_label_weight"):
            _require(name, getattr(self, name), lambda v: _is_number(v) and v >= 0, "a float >= 0")
        for name in ("pmf_in_decoder", "pmf_identity_init", "cl_enabled", "cl_in_decoder",
                     "cl_permute_modality_sequences", "freeze_cl_projections"):
            _require(name, getattr(self, name), lambda v: isinstance(v, bool), "a bool")
        _require("cl_layer", self.cl_layer, lambda v: _is_int(v) and -self.num_layers <= v < self.num_layers,
                 f"an encoder block index in [-{self.num_layers}, {self.num_layers})")
        _require("task_prefix", self.task_prefix, lambda v: isinstance(v, str), "a string")
        if self.trainable_t5_blocks is not None:
            depth = max(self.num_layers, self.num_decoder_layers)
            _require("trainable_t5_blocks", self.trainable_t5_blocks,
                     lambda v: isinstance(v, (list, tuple)) and all(_is_int(i) and 0 <= i < depth for i in v),
                     f"a list of block indices in [0, {depth})")


def _last_blocks(depth: int, count: int) -> list[int]:
    return list(range(depth - min(count, depth), depth))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(name: str, value: object, check, expected: str) -> None:
    if not check(value):
        raise ValueError(f"UniMSEConfig.{name} must be {expected}, got {value!r}")


__all__ = ["UniMSEConfig"]
