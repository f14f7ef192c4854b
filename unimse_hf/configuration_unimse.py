# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE model configuration: a T5 configuration plus the fusion and contrastive fields."""

from typing import Literal

from huggingface_hub.dataclasses import strict, validated_field

from transformers import T5Config

def _positive_int(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")


def _non_negative_int(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")


def _non_negative_number(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ValueError(f"expected a finite number >= 0, got {value!r}")


def _positive_number(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ValueError(f"expected a finite number > 0, got {value!r}")


def _probability_below_one(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"expected a number in [0, 1), got {value!r}")


@strict
class UniMSEConfig(T5Config):
    r"""
    Configuration of [`UniMSEForConditionalGeneration`]. Defaults reproduce the paper's T5-base setup
    (PMF in the last 3 blocks of encoder and decoder, LSTM 64->32, blocks 10-11 trainable) with the
    plain bugs of the official code fixed; each fix that changes numbers has a flag restoring the
    official behaviour. The findings (B1, B2, ...) are explained in `docs/official-differences.md`.

    Every field is validated when the config is built *and* when a field is assigned
    (`config.pmf_bottleneck = "x"` raises `StrictDataclassFieldValidationError` naming the field), as in
    transformers' own `@strict` configs; checks across fields run at construction and `validate()`.

    T5 fields (`vocab_size`, `d_model`, `d_kv`, `d_ff`, `num_layers`, `num_decoder_layers`, `num_heads`,
    `relative_attention_*`, `dropout_rate`, `layer_norm_epsilon`, `initializer_factor`,
    `feed_forward_proj`, token ids) keep their T5 meaning, with t5-base defaults. The task prefix is the
    processor's (`UniMSEProcessor.task_prefix`), the single place it is defined.

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
    fusion_granularity (`str`, defaults to `"utterance"`):
        What the encoder-side adapters fuse at each token: `"utterance"` (the paper: one acoustic and one
        visual vector per sample, broadcast to every token) or `"token"` (each token's own acoustic and
        visual states, from token-aligned inputs; see `UniMSEModalityEncoder`). Decoder-side adapters always
        fuse the utterance vectors (decoder positions have no alignment).
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
    modality_mask_prob (`float`, defaults to 0.0):
        During training only, the probability, per sample and per modality, of hiding that modality (the
        sample is then encoded as missing, with the `missing_modality` policy), so the model learns to
        predict when a modality is absent at test time. 0 disables it. Unrelated to `modality_dropout`.
    cl_enabled (`bool`, defaults to `True`):
        Compute the text-acoustic and text-visual InfoNCE terms (off in the official default, B5).
    cl_temperature (`float`, defaults to 0.1):
        InfoNCE temperature.
    cl_proj_dim (`int`, defaults to 30):
        Size of the contrastive projections.
    cl_weight_ta (`float`, defaults to 0.5):
        Weight of the text-acoustic InfoNCE term in the loss the model returns.
    cl_weight_tv (`float`, defaults to 0.5):
        Weight of the text-visual InfoNCE term in the loss the model returns.
    cl_label_weight (`float`, defaults to 0.0):
        Weight of the optional label-aware inter-sample term (samples sharing a label are positives; needs
        `contrastive_label_ids` in the batch); 0 = off.
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
        Indices of the T5 blocks (encoder and decoder) that `freeze_for_fine_tuning` leaves trainable with
        the fusion modules. `None` means the last two blocks (10 and 11 for t5-base, as in the paper).
    trainable_token_embeddings (`bool`, defaults to `False`):
        `freeze_for_fine_tuning` also leaves the shared token embedding trainable (in T5 it is tied to the encoder
        and decoder inputs and to the LM head). Off in the paper's fine-tuning of a pretrained T5; on when the
        backbone is trained from scratch, as in `make demo`.
    """

    model_type = "unimse"

    # T5 fields with t5-base defaults (T5Config's own defaults are t5-small).
    d_model: int = 768
    d_kv: int = 64
    d_ff: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    decoder_start_token_id: int | None = 0

    pmf_layers: int = validated_field(_non_negative_int, default=3)
    pmf_in_decoder: bool = True
    pmf_bottleneck: int = validated_field(_positive_int, default=64)
    pmf_activation: Literal["sigmoid", "relu", "gelu", "tanh"] = "sigmoid"
    pmf_identity_init: bool = False
    pmf_init_std: float | int = validated_field(_non_negative_number, default=0.001)
    fusion_granularity: Literal["utterance", "token"] = "utterance"
    acoustic_dim: int = validated_field(_positive_int, default=64)
    visual_dim: int = validated_field(_positive_int, default=64)
    modality_hidden: int = validated_field(_positive_int, default=32)
    modality_out: int = validated_field(_positive_int, default=32)
    modality_dropout: float | int = validated_field(_probability_below_one, default=0.3)
    missing_modality: Literal["zeros", "learned"] = "zeros"
    modality_mask_prob: float | int = validated_field(_probability_below_one, default=0.0)
    cl_enabled: bool = True
    cl_temperature: float | int = validated_field(_positive_number, default=0.1)
    cl_proj_dim: int = validated_field(_positive_int, default=30)
    cl_weight_ta: float | int = validated_field(_non_negative_number, default=0.5)
    cl_weight_tv: float | int = validated_field(_non_negative_number, default=0.5)
    cl_label_weight: float | int = validated_field(_non_negative_number, default=0.0)
    cl_layer: int = -1
    cl_in_decoder: bool = False
    cl_text_pooling: Literal["masked_mean", "mean_with_padding"] = "masked_mean"
    cl_permute_modality_sequences: bool = False
    freeze_cl_projections: bool = False
    trainable_t5_blocks: list[int] | None = None
    trainable_token_embeddings: bool = False

    def __post_init__(self, **kwargs):
        # `task_prefix` was a config field before the processor became its single source; old config.json
        # files still carry it, and it is dropped here rather than kept as an unused attribute.
        kwargs.pop("task_prefix", None)
        super().__post_init__(**kwargs)
        if self.trainable_t5_blocks is None:
            self.trainable_t5_blocks = list(range(max(self.num_layers - 2, 0), self.num_layers))

    def validate_unimse_dimensions(self) -> None:
        """T5 sizes must be positive (T5Config checks their types only)."""
        for name in ("d_model", "d_kv", "d_ff", "num_layers", "num_heads", "vocab_size"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"UniMSEConfig.{name} must be a positive integer, got {value!r}")

    def validate_cl_layer(self) -> None:
        """`cl_layer` must index an encoder block."""
        if not -self.num_layers <= self.cl_layer < self.num_layers:
            raise ValueError(f"UniMSEConfig.cl_layer must be an encoder block index in "
                             f"[-{self.num_layers}, {self.num_layers}), got {self.cl_layer!r}")

    def validate_trainable_t5_blocks(self) -> None:
        """`trainable_t5_blocks` must index blocks of the encoder or the decoder."""
        depth = max(self.num_layers, self.num_decoder_layers or 0)
        blocks = self.trainable_t5_blocks
        if blocks is not None and not all(0 <= index < depth for index in blocks):
            raise ValueError(f"UniMSEConfig.trainable_t5_blocks must be block indices in [0, {depth}), got {blocks!r}")

    @property
    def pmf_encoder_blocks(self) -> list[int]:
        """Encoder block indices carrying a PMF adapter (the official clamped rule)."""
        return _last_blocks(self.num_layers, self.pmf_layers)

    @property
    def pmf_decoder_blocks(self) -> list[int]:
        """Decoder block indices carrying a PMF adapter; empty unless `pmf_in_decoder`."""
        return _last_blocks(self.num_decoder_layers, self.pmf_layers) if self.pmf_in_decoder else []

    @property
    def cl_block_index(self) -> int:
        """`cl_layer` as a non-negative encoder block index."""
        return self.cl_layer % self.num_layers


def _last_blocks(depth: int, count: int) -> list[int]:
    return list(range(depth - min(count, depth), depth))


__all__ = ["UniMSEConfig"]
