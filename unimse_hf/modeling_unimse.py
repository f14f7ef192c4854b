# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE: a T5 encoder-decoder with LSTM acoustic/visual encoders and PMF fusion adapters.

The T5 stacks are transformers' own `T5Stack`; nothing of T5 is forked. Each PMF adapter is attached
with a forward hook to one of the configured `T5Block`s and replaces the block's output hidden states
(the output of its feed-forward sub-layer) by the fused states, so T5's module tree and state-dict keys
stay those of a plain T5 checkpoint.

The adapters hold no state between calls. The modality vectors reach them as an argument of the stack
call: `T5Stack.forward(**kwargs)` hands its extra keyword arguments to every block, so the model calls
`self.encoder(..., modality_vectors=UniMSEModalityVectors(...))` and each adapter hook reads
`modality_vectors` from its block's call. A stack called without them (e.g. `model.get_encoder()(input_ids)`)
fails loudly instead of fusing anything stale. Gradient checkpointing recomputes a block with the same
keyword arguments, so it sees the same vectors. The text side of the contrastive loss is read from the
encoder's own recorded `hidden_states` (the input of block `cl_layer`), not from a side channel.
"""

import copy
import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import T5Stack

from .configuration_unimse import UniMSEConfig

_ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}
_FUSION_PREFIXES = ("acoustic_encoder.", "visual_encoder.", "encoder_fusion.", "decoder_fusion.",
                    "encoder_contrastive_head.", "decoder_contrastive_head.")


def info_nce_loss(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch InfoNCE: row i of `query` should match row i of `key` among all rows of `key`.

    Both are L2-normalised; the loss is the mean cross-entropy of `query @ key.T / temperature`
    against the diagonal (one direction, text -> modality, as in the official code).
    """
    query = F.normalize(query, dim=-1)
    key = F.normalize(key, dim=-1)
    logits = query @ key.transpose(0, 1) / temperature
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device))


def supervised_contrastive_loss(embeddings: torch.Tensor, label_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) over L2-normalised `embeddings` (batch, dim).

    For each anchor with at least one other sample of the same label id, the mean over its positives of
    -log softmax of the similarity among all other samples, divided by `temperature`; the mean over those
    anchors. Zero (still connected to the graph) when no sample shares a label with another.
    """
    embeddings = F.normalize(embeddings.float(), dim=-1)
    logits = embeddings @ embeddings.transpose(0, 1) / temperature
    self_mask = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (label_ids.unsqueeze(0) == label_ids.unsqueeze(1)) & ~self_mask
    positive_counts = positives.sum(dim=1)
    anchors = positive_counts > 0
    if not bool(anchors.any()):
        return embeddings.sum() * 0.0
    positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -(positive_log_prob[anchors] / positive_counts[anchors]).mean()


def masked_mean(states: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean over dim 1 of `states` (B, L, D) restricted to `mask` (B, L); all positions if `mask` is None."""
    if mask is None:
        return states.mean(dim=1)
    mask = mask.to(states.dtype).unsqueeze(-1)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


@dataclass(frozen=True)
class UniMSEModalityVectors:
    """What the PMF adapters of one stack call fuse, passed to the stack as `modality_vectors=`.

    Each tensor is `(batch, modality_out)` (one utterance vector per sample, broadcast to every position)
    or `(batch, length, modality_out)` (one state per position: token-level fusion in the encoder).
    """

    acoustic: torch.Tensor
    visual: torch.Tensor


class UniMSEFusionAdapter(nn.Module):
    """The PMF adapter: z = [h; v; a], u = z + up(act(down(z))), output = out_proj(u) (replaces h)."""

    def __init__(self, config: UniMSEConfig, location: str = "a UniMSE block"):
        super().__init__()
        fused_dim = config.d_model + 2 * config.modality_out
        self.down_proj = nn.Linear(fused_dim, config.pmf_bottleneck)
        self.up_proj = nn.Linear(config.pmf_bottleneck, fused_dim)
        self.out_proj = nn.Linear(fused_dim, config.d_model)
        self.activation = _ACTIVATIONS[config.pmf_activation]
        self.location = location
        self.down_proj._unimse_init = "pmf_bottleneck"
        self.up_proj._unimse_init = "pmf_up"
        self.out_proj._unimse_init = "pmf_out"

    def forward(self, hidden_states: torch.Tensor, visual: torch.Tensor, acoustic: torch.Tensor) -> torch.Tensor:
        """Fuse (batch, length, d_model) states with visual and acoustic vectors, each (batch, modality_out)
        or (batch, length, modality_out)."""
        fused = torch.cat(
            [hidden_states, _per_position(visual, hidden_states), _per_position(acoustic, hidden_states)], dim=-1
        )
        fused = fused + self.up_proj(self.activation(self.down_proj(fused)))
        return self.out_proj(fused)

    def fuse_block_output(self, block: nn.Module, args: tuple, kwargs: dict[str, Any], output: tuple) -> tuple:
        """Forward hook of a `T5Block` (registered `with_kwargs=True`): fuse the block's output states with
        the `modality_vectors` of this very call; a call without them is refused."""
        vectors = kwargs.get("modality_vectors")
        if not isinstance(vectors, UniMSEModalityVectors):
            raise RuntimeError(
                f"{self.location} carries a UniMSE fusion adapter but was called without `modality_vectors`. Call "
                "the UniMSE model (`model(...)`, `model.encode(...)`, `model.generate(...)`), or pass "
                "`modality_vectors=model.modality_vectors(...)` to the stack yourself."
            )
        hidden_states = output[0]
        for name in ("acoustic", "visual"):
            vector = getattr(vectors, name)
            if vector.shape[0] != hidden_states.shape[0]:
                raise ValueError(f"`modality_vectors.{name}` has {vector.shape[0]} samples but {self.location} "
                                 f"received {hidden_states.shape[0]}")
        return (self(hidden_states, vectors.visual, vectors.acoustic), *output[1:])


def _per_position(vector: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
    batch, length, _ = hidden_states.shape
    vector = vector.to(hidden_states.dtype)
    if vector.dim() == 2:
        return vector.unsqueeze(1).expand(batch, length, -1)
    if vector.shape[1] != length:
        raise ValueError(f"per-token modality states cover {vector.shape[1]} positions but the block has {length}")
    return vector


@dataclass
class UniMSEModalityEncoding:
    """What a modality encoder produces for a batch."""

    vector: torch.Tensor
    """(batch, modality_out) utterance vectors fed to the adapters."""
    pooled_sequence: Optional[torch.Tensor]
    """(batch, modality_hidden) mean of the LSTM's per-step outputs over valid frames (for contrastive keys)."""
    present: torch.Tensor
    """(batch,) bool: whether the sample had at least one valid frame."""
    token_states: Optional[torch.Tensor] = None
    """(batch, frames, modality_out): per-position states for token-level fusion (the projected LSTM output at
    each valid position, the missing vector elsewhere); only computed when asked for."""


class UniMSEModalityEncoder(nn.Module):
    """A 1-layer LSTM over a frame sequence; its final hidden state -> dropout -> linear = utterance vector.

    Frames are packed by length (the fixed version of the official encoder, B1): valid frames are
    those where the mask is 1, taken in order, so right-padded and token-aligned layouts both work.
    For token-level fusion the same projection maps the LSTM output at every valid position to that
    position's state (the LSTM runs over the valid positions in order, so each state also carries the
    preceding context of the clip).
    """

    def __init__(self, input_dim: int, config: UniMSEConfig):
        super().__init__()
        self.input_dim = input_dim
        self.rnn = nn.LSTM(input_dim, config.modality_hidden, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(config.modality_dropout)
        self.output_projection = nn.Linear(config.modality_hidden, config.modality_out)
        self.output_projection._unimse_init = "torch_default"
        self.permute_sequences = config.cl_permute_modality_sequences
        if config.missing_modality == "learned":
            self.missing_embedding = nn.Parameter(torch.zeros(config.modality_out))
        else:
            self.register_buffer("missing_embedding", torch.zeros(config.modality_out), persistent=False)

    def missing(self, batch_size: int, length: Optional[int] = None) -> UniMSEModalityEncoding:
        """The encoding of a batch in which this modality is absent (per-position states when `length` is set)."""
        vector = self.missing_embedding.unsqueeze(0).expand(batch_size, -1)
        present = torch.zeros(batch_size, dtype=torch.bool, device=vector.device)
        token_states = None if length is None else vector.unsqueeze(1).expand(batch_size, length, -1)
        return UniMSEModalityEncoding(vector=vector, pooled_sequence=None, present=present, token_states=token_states)

    def forward(self, features: torch.Tensor, mask: Optional[torch.Tensor],
                return_token_states: bool = False) -> UniMSEModalityEncoding:
        """Encode (batch, frames, input_dim) features with a (batch, frames) validity mask."""
        batch, frames, _ = features.shape
        if mask is None:
            mask = torch.ones(batch, frames, dtype=torch.bool, device=features.device)
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        prefix = torch.arange(frames, device=features.device).unsqueeze(0) < lengths.unsqueeze(1)
        order = None
        if not torch.equal(mask, prefix):
            order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
            features = torch.gather(features, 1, order.unsqueeze(-1).expand_as(features))
        packed = pack_padded_sequence(features, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h_n, _) = self.rnn(packed)
        sequence, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=frames)
        present = lengths > 0
        missing = self.missing_embedding.to(sequence.dtype)
        vector = self.output_projection(self.dropout(h_n[-1]))
        vector = torch.where(present.unsqueeze(1), vector, missing.unsqueeze(0))
        token_states = None
        if return_token_states:
            in_place = sequence if order is None else torch.zeros_like(sequence).scatter(
                1, order.unsqueeze(-1).expand_as(sequence), sequence)
            token_states = torch.where(mask.unsqueeze(-1), self.output_projection(self.dropout(in_place)), missing)
        pooled_lengths = lengths
        if self.permute_sequences:
            # Official bug B1: row i receives the sequence of the sample ranked i-th by descending length.
            rank = torch.argsort(torch.argsort(-lengths, stable=True), stable=True)
            sequence, pooled_lengths = sequence[rank], lengths[rank]
        valid = torch.arange(frames, device=features.device).unsqueeze(0) < pooled_lengths.unsqueeze(1)
        return UniMSEModalityEncoding(vector=vector, pooled_sequence=masked_mean(sequence, valid), present=present,
                                      token_states=token_states)


class UniMSEContrastiveHead(nn.Module):
    """Projections for the text-modality InfoNCE.

    One text projection (d_model -> cl_proj_dim) and one modality projection (modality_hidden ->
    cl_proj_dim) shared by acoustic and visual, as in the official code; both without bias.
    """

    def __init__(self, config: UniMSEConfig):
        super().__init__()
        self.text_projection = nn.Linear(config.d_model, config.cl_proj_dim, bias=False)
        self.modality_projection = nn.Linear(config.modality_hidden, config.cl_proj_dim, bias=False)
        self.text_projection._unimse_init = "torch_default"
        self.modality_projection._unimse_init = "torch_default"


@dataclass
class UniMSEEncoderOutput(BaseModelOutput):
    r"""
    acoustic_vector (`torch.FloatTensor` of shape `(batch_size, modality_out)`):
        Acoustic utterance vectors fed to the PMF adapters (the decoder's, and the encoder's at utterance level).
    visual_vector (`torch.FloatTensor` of shape `(batch_size, modality_out)`):
        Visual utterance vectors fed to the PMF adapters.
    text_pooled (`torch.FloatTensor` of shape `(batch_size, d_model)`, *optional*):
        Pooled input states of the contrastive block (computed when a loss is, with `cl_enabled`).
    acoustic_pooled / visual_pooled (`torch.FloatTensor` of shape `(batch_size, modality_hidden)`, *optional*):
        Mean LSTM outputs over valid frames (present when the modality is given).
    acoustic_present / visual_present (`torch.BoolTensor` of shape `(batch_size,)`):
        Which samples had at least one valid frame of that modality.
    """

    acoustic_vector: Optional[torch.FloatTensor] = None
    visual_vector: Optional[torch.FloatTensor] = None
    text_pooled: Optional[torch.FloatTensor] = None
    acoustic_pooled: Optional[torch.FloatTensor] = None
    visual_pooled: Optional[torch.FloatTensor] = None
    acoustic_present: Optional[torch.BoolTensor] = None
    visual_present: Optional[torch.BoolTensor] = None


@dataclass
class UniMSESeq2SeqLMOutput(Seq2SeqLMOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*):
        The UniMSE objective: `lm_loss` + `cl_weight_ta`·`contrastive_loss_ta` + `cl_weight_tv`·`contrastive_loss_tv`
        + `cl_label_weight`·`contrastive_loss_label` (weights from the config; absent terms count 0). With
        `num_items_in_batch` the weighted contrastive part is scaled by this batch's share of the target tokens.
    lm_loss (`torch.FloatTensor`, *optional*):
        Token cross-entropy: the mean over target tokens, or their sum over `num_items_in_batch`. Over the whole
        vocabulary, or, with `label_candidate_ids`, over each position's candidate ids.
    logits (`torch.FloatTensor`):
        Scores of the whole vocabulary `(batch_size, target_length, vocab_size)`, or, with `label_candidate_ids`,
        of each position's candidates `(batch_size, target_length, width)` (the lowest float at padding).
    acoustic_vector / visual_vector (`torch.FloatTensor` of shape `(batch_size, modality_out)`):
        The utterance vectors fed to the PMF adapters.
    text_embeds / acoustic_embeds / visual_embeds (`torch.FloatTensor` of shape `(batch_size, cl_proj_dim)`, *optional*):
        Projected pooled text, acoustic and visual embeddings of the encoder-side contrastive head
        (returned with `labels`, i.e. when a loss is computed).
    contrastive_loss_ta / contrastive_loss_tv (`torch.FloatTensor`, *optional*):
        InfoNCE text->acoustic and text->visual (summed over encoder and decoder with `cl_in_decoder`),
        over the samples that have the modality. `None` when the modality is absent or `cl_enabled` is off.
    contrastive_loss_label (`torch.FloatTensor`, *optional*):
        The label-aware supervised contrastive term over `text_embeds`; `None` unless `cl_label_weight` > 0.
    """

    lm_loss: Optional[torch.FloatTensor] = None
    acoustic_vector: Optional[torch.FloatTensor] = None
    visual_vector: Optional[torch.FloatTensor] = None
    text_embeds: Optional[torch.FloatTensor] = None
    acoustic_embeds: Optional[torch.FloatTensor] = None
    visual_embeds: Optional[torch.FloatTensor] = None
    contrastive_loss_ta: Optional[torch.FloatTensor] = None
    contrastive_loss_tv: Optional[torch.FloatTensor] = None
    contrastive_loss_label: Optional[torch.FloatTensor] = None


class UniMSEPreTrainedModel(PreTrainedModel):
    """Base class: configuration, weight initialisation and loading rules shared by UniMSE heads."""

    config: UniMSEConfig
    base_model_prefix = "unimse"
    supports_gradient_checkpointing = True
    _no_split_modules = ["T5Block"]
    _keep_in_fp32_modules = ["wo"]
    _supports_sdpa = True
    # `forward` takes `num_items_in_batch` and scales its whole loss itself (see `UniMSESeq2SeqLMOutput.loss`),
    # so the Trainer neither divides it by the accumulation steps nor needs a loss function of its own.
    accepts_loss_kwargs = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained` with UniMSE's loading rules.

        * Weights are read from safetensors only unless the caller passes `use_safetensors=False`
          (pickle-based `.bin` files can execute code when loaded).
        * A UniMSE checkpoint (its config says `model_type: unimse`) must hold every weight of the model: a
          missing fusion weight would otherwise be initialised at random with only a log line. Loading plain
          T5 weights (to start fine-tuning) initialises the UniMSE modules, as documented.
        * An unreadable weights file is reported with its path.
        """
        if kwargs.get("use_safetensors") is None:
            kwargs["use_safetensors"] = True
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error) or kwargs.get("ignore_mismatched_sizes"):
                raise
            # transformers names the mismatched weights only in a log report; load again to name them here.
            _, report = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                                **{**kwargs, "ignore_mismatched_sizes": True})
            mismatched = [f"{name} (checkpoint {tuple(saved)}, model {tuple(expected)})"
                          for name, saved, expected in report.get("mismatched_keys", ())]
            raise ValueError(f"{pretrained_model_name_or_path} holds weights whose shapes do not match its config: "
                             f"{mismatched}") from error
        except Exception as error:  # noqa: BLE001 - re-raised with the file named, never swallowed
            if "safetensor" not in type(error).__name__.lower() and "header" not in str(error).lower():
                raise
            raise OSError(f"the weights of {pretrained_model_name_or_path} could not be read (a truncated or "
                          f"corrupt model.safetensors?): {error}") from error
        if _checkpoint_model_type(pretrained_model_name_or_path, kwargs) == cls.config_class.model_type:
            missing = sorted(loading_info.get("missing_keys", ()))
            if missing:
                raise ValueError(f"{pretrained_model_name_or_path} is a UniMSE checkpoint but lacks weights "
                                 f"{missing[:8]}{' ...' if len(missing) > 8 else ''} ({len(missing)} in all); they "
                                 "would be initialised at random. Re-save the checkpoint with all its weights.")
        return (model, loading_info) if output_loading_info else model

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise the UniMSE modules; the T5 stacks are initialised by T5's own rule."""
        config = self.config
        kind = getattr(module, "_unimse_init", None)
        if kind == "pmf_bottleneck" or (kind == "pmf_up" and not config.pmf_identity_init):
            init.normal_(module.weight, mean=0.0, std=config.pmf_init_std)
            init.zeros_(module.bias)
        elif kind == "pmf_up":
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif kind == "pmf_out" and config.pmf_identity_init:
            identity = torch.zeros_like(module.weight)
            identity[:, : config.d_model] = torch.eye(config.d_model, dtype=identity.dtype, device=identity.device)
            init.copy_(module.weight, identity)
            init.zeros_(module.bias)
        elif kind in ("pmf_out", "torch_default"):
            bound = 1.0 / math.sqrt(module.weight.shape[1])
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LSTM):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, UniMSEModalityEncoder):
            init.zeros_(module.missing_embedding)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=config.initializer_factor * 1.0)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=config.initializer_factor * 1.0)


class UniMSEForConditionalGeneration(UniMSEPreTrainedModel, GenerationMixin):
    """UniMSE: T5 with acoustic/visual LSTM encoders and PMF adapters, generating the universal label."""

    _keys_to_ignore_on_load_unexpected = ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"]
    _tied_weights_keys = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
        "lm_head.weight": "shared.weight",
    }

    def __init__(self, config: UniMSEConfig):
        super().__init__(config)
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)

        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder = False
        encoder_config.use_cache = False
        self.encoder = T5Stack(encoder_config)
        decoder_config = copy.deepcopy(config)
        decoder_config.is_decoder = True
        decoder_config.num_layers = config.num_decoder_layers
        self.decoder = T5Stack(decoder_config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

        self.acoustic_encoder = UniMSEModalityEncoder(config.acoustic_dim, config)
        self.visual_encoder = UniMSEModalityEncoder(config.visual_dim, config)
        self.encoder_fusion = nn.ModuleList(
            UniMSEFusionAdapter(config, f"encoder block {i}") for i in config.pmf_encoder_blocks)
        self.decoder_fusion = nn.ModuleList(
            UniMSEFusionAdapter(config, f"decoder block {i}") for i in config.pmf_decoder_blocks)
        self.encoder_contrastive_head = UniMSEContrastiveHead(config) if config.cl_enabled else None
        use_decoder_head = config.cl_enabled and config.cl_in_decoder
        self.decoder_contrastive_head = UniMSEContrastiveHead(config) if use_decoder_head else None

        for stack, blocks, adapters in ((self.encoder, config.pmf_encoder_blocks, self.encoder_fusion),
                                        (self.decoder, config.pmf_decoder_blocks, self.decoder_fusion)):
            for index, adapter in zip(blocks, adapters):
                stack.block[index].register_forward_hook(adapter.fuse_block_output, with_kwargs=True)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.shared = new_embeddings
        self.encoder.set_input_embeddings(new_embeddings)
        self.decoder.set_input_embeddings(new_embeddings)

    # ------------------------------------------------------------------ parameter groups

    def fusion_parameter_names(self) -> list[str]:
        """Names of the parameters UniMSE adds to T5 (LSTMs, adapters, contrastive projections)."""
        return [name for name, _ in self.named_parameters() if name.startswith(_FUSION_PREFIXES)]

    def trainable_t5_parameter_names(self) -> list[str]:
        """Names of the T5 parameters in `config.trainable_t5_blocks` of the encoder and decoder, plus the shared
        token embedding when `config.trainable_token_embeddings`."""
        prefixes = tuple(f"{stack}.block.{i}." for stack in ("encoder", "decoder") for i in self.config.trainable_t5_blocks)
        embedding = "shared.weight" if self.config.trainable_token_embeddings else None
        return [name for name, _ in self.named_parameters() if name.startswith(prefixes) or name == embedding]

    def freeze_for_fine_tuning(self) -> None:
        """Train only the fusion modules and `trainable_t5_blocks`, freezing every other T5 weight (the paper's
        fine-tuning recipe; call it yourself before building the optimiser).

        With `freeze_cl_projections` the contrastive projections stay frozen too (official B2).
        """
        trainable = set(self.fusion_parameter_names()) | set(self.trainable_t5_parameter_names())
        for name, parameter in self.named_parameters():
            frozen_projection = self.config.freeze_cl_projections and "contrastive_head." in name
            parameter.requires_grad_(name in trainable and not frozen_projection)

    # ------------------------------------------------------------------ encoding

    def _encode_modality(
        self, name: str, encoder: UniMSEModalityEncoder, features: Optional[torch.Tensor],
        mask: Optional[torch.Tensor], batch_size: int, expected_dim: int, text_length: Optional[int],
    ) -> UniMSEModalityEncoding:
        if features is None:
            if mask is not None:
                raise ValueError(f"`{name}_attention_mask` was given without `{name}_features`")
            return encoder.missing(batch_size, text_length)
        if not torch.is_tensor(features) or not features.is_floating_point():
            raise TypeError(f"`{name}_features` must be a floating-point tensor, got {type(features).__name__}"
                            + (f" of dtype {features.dtype}" if torch.is_tensor(features) else ""))
        if features.dim() != 3 or features.shape[-1] != expected_dim:
            raise ValueError(f"`{name}_features` must have shape (batch, frames, {expected_dim}), "
                             f"got {tuple(features.shape)}")
        if features.shape[0] != batch_size:
            raise ValueError(f"`{name}_features` has batch size {features.shape[0]} but the text has {batch_size}")
        if mask is not None and tuple(mask.shape) != tuple(features.shape[:2]):
            raise ValueError(f"`{name}_attention_mask` must have shape {tuple(features.shape[:2])} "
                             f"(batch, frames of `{name}_features`), got {tuple(mask.shape)}")
        if text_length is not None and features.shape[1] != text_length:
            raise ValueError(
                f"this checkpoint fuses per token (`fusion_granularity='token'`), so `{name}_features` must be "
                f"token-aligned (one row per input token: {text_length}), got {features.shape[1]} frames; build the "
                "inputs with the processor's `word_timestamps=` or `align_to_tokens=True`"
            )
        if not torch.isfinite(features).all():
            raise ValueError(f"`{name}_features` contains NaN or infinite values")
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        if self.training and self.config.modality_mask_prob > 0:
            # Training for missing modalities: hide this modality for a random subset of the samples.
            kept = torch.rand(batch_size, device=features.device) >= self.config.modality_mask_prob
            mask = mask.bool() & kept.unsqueeze(1)
        return encoder(features.to(encoder.rnn.weight_ih_l0.dtype), mask, return_token_states=text_length is not None)

    def encode_modalities(
        self,
        acoustic_features: Optional[torch.FloatTensor] = None,
        acoustic_attention_mask: Optional[torch.Tensor] = None,
        visual_features: Optional[torch.FloatTensor] = None,
        visual_attention_mask: Optional[torch.Tensor] = None,
        *,
        batch_size: int,
        text_length: Optional[int] = None,
    ) -> tuple[UniMSEModalityEncoding, UniMSEModalityEncoding]:
        """Validate and encode both modalities (absent ones get the missing-modality vector).

        `text_length` (the input token count) asks for per-token states, which token-level fusion needs.
        """
        acoustic = self._encode_modality("acoustic", self.acoustic_encoder, acoustic_features, acoustic_attention_mask,
                                         batch_size, self.config.acoustic_dim, text_length)
        visual = self._encode_modality("visual", self.visual_encoder, visual_features, visual_attention_mask,
                                       batch_size, self.config.visual_dim, text_length)
        return acoustic, visual

    def modality_vectors(
        self,
        acoustic_features: Optional[torch.FloatTensor] = None,
        acoustic_attention_mask: Optional[torch.Tensor] = None,
        visual_features: Optional[torch.FloatTensor] = None,
        visual_attention_mask: Optional[torch.Tensor] = None,
        *,
        batch_size: int,
        text_length: Optional[int] = None,
    ) -> UniMSEModalityVectors:
        """What the encoder stack's adapters fuse for these inputs, for calling `model.encoder(...,
        modality_vectors=...)` yourself (`text_length` is required with token-level fusion)."""
        if self.config.fusion_granularity == "token" and text_length is None:
            raise ValueError("token-level fusion needs `text_length` (the number of input tokens)")
        acoustic, visual = self.encode_modalities(
            acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask,
            batch_size=batch_size, text_length=text_length if self.config.fusion_granularity == "token" else None,
        )
        return _encoder_side_vectors(acoustic, visual)

    def encode(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        acoustic_features: Optional[torch.FloatTensor] = None,
        acoustic_attention_mask: Optional[torch.Tensor] = None,
        visual_features: Optional[torch.FloatTensor] = None,
        visual_attention_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        return_text_pooled: bool = False,
        **kwargs,
    ) -> UniMSEEncoderOutput:
        """Run the modality encoders and the fused T5 encoder once; the result feeds `forward`/`generate`.

        `return_text_pooled` also pools the input states of block `cl_layer` for the contrastive loss (the
        model asks for it whenever it computes a loss).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Exactly one of `input_ids` and `inputs_embeds` must be given")
        text = input_ids if input_ids is not None else inputs_embeds
        batch_size, text_length = text.shape[:2]
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(text.shape[:2]):
            raise ValueError(f"`attention_mask` must have shape {tuple(text.shape[:2])}, got {tuple(attention_mask.shape)}")
        token_level = self.config.fusion_granularity == "token"
        acoustic, visual = self.encode_modalities(
            acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask,
            batch_size=batch_size, text_length=text_length if token_level else None,
        )
        wants_text_pooled = return_text_pooled and self.encoder_contrastive_head is not None
        wants_hidden_states = bool(kwargs.pop("output_hidden_states", False))
        encoded = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
            modality_vectors=_encoder_side_vectors(acoustic, visual),
            output_hidden_states=wants_hidden_states or wants_text_pooled, **kwargs,
        )
        text_pooled = None
        if wants_text_pooled:
            text_mask = attention_mask if self.config.cl_text_pooling == "masked_mean" else None
            # hidden_states[i] is the input of block i (index 0 holds the embeddings).
            text_pooled = masked_mean(encoded.hidden_states[self.config.cl_block_index], text_mask)
        return UniMSEEncoderOutput(
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states if wants_hidden_states else None,
            attentions=encoded.attentions,
            acoustic_vector=acoustic.vector,
            visual_vector=visual.vector,
            text_pooled=text_pooled,
            acoustic_pooled=acoustic.pooled_sequence,
            visual_pooled=visual.pooled_sequence,
            acoustic_present=acoustic.present,
            visual_present=visual.present,
        )

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        acoustic_features: Optional[torch.FloatTensor] = None,
        acoustic_attention_mask: Optional[torch.Tensor] = None,
        visual_features: Optional[torch.FloatTensor] = None,
        visual_attention_mask: Optional[torch.Tensor] = None,
        decoder_input_ids: Optional[torch.LongTensor] = None,
        decoder_attention_mask: Optional[torch.BoolTensor] = None,
        encoder_outputs: Optional[Union[UniMSEEncoderOutput, BaseModelOutput, tuple]] = None,
        cache=None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        decoder_inputs_embeds: Optional[torch.FloatTensor] = None,
        labels: Optional[torch.LongTensor] = None,
        contrastive_label_ids: Optional[torch.LongTensor] = None,
        label_candidate_ids: Optional[torch.LongTensor] = None,
        num_items_in_batch: Optional[Union[torch.Tensor, int]] = None,
        use_cache: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> Union[UniMSESeq2SeqLMOutput, tuple]:
        r"""
        acoustic_features (`torch.FloatTensor` of shape `(batch_size, frames, acoustic_dim)`, *optional*):
            Acoustic frame features (or token-aligned features from the processor). Absent = missing modality.
        acoustic_attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
            1 for valid frames. Valid frames are read in order; a sample with none counts as missing.
        visual_features / visual_attention_mask:
            The same for the visual modality.
        encoder_outputs (`UniMSEEncoderOutput`, *optional*):
            Output of [`~UniMSEForConditionalGeneration.encode`]; it carries the modality vectors it was encoded
            with, so modality features may not be passed with it. A plain `BaseModelOutput` (from calling the
            encoder stack with `modality_vectors=` yourself) takes the features, which give the decoder's vectors.
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Target token ids, -100 where ignored. Gives `loss`, the full UniMSE objective, and its parts.
        contrastive_label_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Label keys of the label-aware contrastive term (equal ids = positives); needed when `cl_label_weight` > 0.
        label_candidate_ids (`torch.LongTensor` of shape `(batch_size, target_length, width)`, *optional*):
            With `labels`: the token ids the label grammar allows at each target position, -1 as padding
            (`UniversalLabelLogitsProcessor.label_candidate_ids`, or the collator's `grammar_constrained_loss`).
            The LM term then normalises over those candidates only: the likelihood of structured decoding,
            which makes the same choices. It skips the projection onto the whole vocabulary, the bulk of a
            small model's step; a model trained this way must be decoded with the grammar (`structured=True`).
        num_items_in_batch (`int` or `torch.Tensor`, *optional*):
            Target tokens of the whole accumulated (and, under data parallelism, global) batch, as the Trainer
            passes it: the LM term becomes this batch's token sum over it, and the weighted contrastive part is
            scaled by this batch's share of those tokens, so summing the losses of the accumulated batches gives
            the loss of the whole batch.

        Other arguments are those of `T5ForConditionalGeneration.forward`.
        """
        if "past_key_values" in kwargs:
            cache = kwargs.pop("past_key_values")
        computes_loss = labels is not None
        encoder_outputs = self._resolve_encoder_outputs(
            encoder_outputs, input_ids, attention_mask, inputs_embeds,
            (acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask),
            return_text_pooled=computes_loss, **kwargs,
        )
        hidden_states = encoder_outputs[0]

        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(labels)

        wants_decoder_text = computes_loss and self.decoder_contrastive_head is not None
        wants_hidden_states = bool(kwargs.pop("output_hidden_states", False))
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            inputs_embeds=decoder_inputs_embeds,
            cache=cache,
            encoder_hidden_states=hidden_states,
            encoder_attention_mask=attention_mask,
            use_cache=use_cache,
            modality_vectors=UniMSEModalityVectors(encoder_outputs.acoustic_vector, encoder_outputs.visual_vector),
            output_hidden_states=wants_hidden_states or wants_decoder_text,
            **kwargs,
        )
        sequence_output = decoder_outputs[0]
        if self.config.scale_decoder_outputs:
            sequence_output = sequence_output * (self.model_dim**-0.5)
        if label_candidate_ids is None:
            logits = self.lm_head(sequence_output)
        elif not computes_loss:
            raise ValueError("`label_candidate_ids` restricts the LM loss, so it needs `labels`")
        loss = lm_loss = None
        contrastive: dict[str, torch.Tensor] = {}
        if computes_loss:
            labels = labels.to(sequence_output.device)
            targets = labels
            if label_candidate_ids is not None:
                logits, targets = self._candidate_logits(sequence_output, labels, label_candidate_ids)
            if num_items_in_batch is None:
                lm_loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
            else:
                lm_loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100,
                                          reduction="sum") / num_items_in_batch
            decoder_text = None
            if wants_decoder_text:
                decoder_text = decoder_outputs.hidden_states[self.config.num_decoder_layers - 1]
            contrastive = self._contrastive_terms(encoder_outputs, decoder_text, labels, contrastive_label_ids)
            loss = lm_loss
            weighted = self._weighted_contrastive_loss(contrastive)
            if weighted is not None:
                if num_items_in_batch is not None:
                    weighted = weighted * (labels.ne(-100).sum() / num_items_in_batch)
                loss = lm_loss + weighted

        output = UniMSESeq2SeqLMOutput(
            loss=loss,
            lm_loss=lm_loss,
            logits=logits,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states if wants_hidden_states else None,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=getattr(encoder_outputs, "hidden_states", None),
            encoder_attentions=getattr(encoder_outputs, "attentions", None),
            acoustic_vector=encoder_outputs.acoustic_vector,
            visual_vector=encoder_outputs.visual_vector,
            **contrastive,
        )
        if return_dict is False:
            return output.to_tuple()
        return output

    def _resolve_encoder_outputs(self, encoder_outputs, input_ids, attention_mask, inputs_embeds,
                                 modality_inputs: tuple, return_text_pooled: bool = False, **kwargs) -> UniMSEEncoderOutput:
        """The encoder outputs a decoder call uses: encoded now, given with their modality vectors, or given
        without them (a plain stack output) and completed from `modality_inputs`."""
        if encoder_outputs is None:
            acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask = modality_inputs
            return self.encode(
                input_ids=input_ids, attention_mask=attention_mask, acoustic_features=acoustic_features,
                acoustic_attention_mask=acoustic_attention_mask, visual_features=visual_features,
                visual_attention_mask=visual_attention_mask, inputs_embeds=inputs_embeds,
                return_text_pooled=return_text_pooled, **kwargs,
            )
        if getattr(encoder_outputs, "acoustic_vector", None) is not None:
            if any(value is not None for value in modality_inputs):
                raise ValueError("`encoder_outputs` already carry the modality vectors they were encoded with; pass "
                                 "new `acoustic_features`/`visual_features` to `encode` (or `forward`) instead")
            return encoder_outputs
        return self._with_modality_vectors(encoder_outputs, *modality_inputs)

    def _with_modality_vectors(self, encoder_outputs, acoustic_features, acoustic_attention_mask,
                               visual_features, visual_attention_mask) -> UniMSEEncoderOutput:
        last_hidden_state = encoder_outputs[0]
        acoustic, visual = self.encode_modalities(acoustic_features, acoustic_attention_mask, visual_features,
                                                  visual_attention_mask, batch_size=last_hidden_state.shape[0])
        return UniMSEEncoderOutput(
            last_hidden_state=last_hidden_state,
            acoustic_vector=acoustic.vector, visual_vector=visual.vector,
            acoustic_present=acoustic.present, visual_present=visual.present,
        )

    def _contrastive_terms(self, encoder_outputs: UniMSEEncoderOutput, decoder_text_states: Optional[torch.Tensor],
                           labels: torch.Tensor, contrastive_label_ids: Optional[torch.Tensor]) -> dict:
        """The unweighted contrastive terms and the projected embeddings (see `UniMSESeq2SeqLMOutput`)."""
        head = self.encoder_contrastive_head
        text_pooled = getattr(encoder_outputs, "text_pooled", None)
        if self.config.cl_label_weight > 0 and contrastive_label_ids is None:
            raise ValueError("`cl_label_weight` > 0 needs `contrastive_label_ids` with the labels (build the "
                             "collator with `contrastive_label_column`)")
        if head is None or text_pooled is None:
            return {}
        terms = {"text_embeds": head.text_projection(text_pooled)}
        decoder_text = None
        if decoder_text_states is not None:
            mask = labels != -100 if self.config.cl_text_pooling == "masked_mean" else None
            decoder_text = masked_mean(decoder_text_states, mask)
        for modality, short in (("acoustic", "ta"), ("visual", "tv")):
            pooled = getattr(encoder_outputs, f"{modality}_pooled")
            if pooled is None:
                continue
            present = getattr(encoder_outputs, f"{modality}_present")
            keys = head.modality_projection(pooled)
            terms[f"{modality}_embeds"] = keys
            if not bool(present.any()):
                continue
            loss = info_nce_loss(terms["text_embeds"][present], keys[present], self.config.cl_temperature)
            if decoder_text is not None:
                decoder_head = self.decoder_contrastive_head
                loss = loss + info_nce_loss(decoder_head.text_projection(decoder_text)[present],
                                            decoder_head.modality_projection(pooled)[present],
                                            self.config.cl_temperature)
            terms[f"contrastive_loss_{short}"] = loss
        if self.config.cl_label_weight > 0:
            terms["contrastive_loss_label"] = supervised_contrastive_loss(
                terms["text_embeds"], contrastive_label_ids.to(text_pooled.device), self.config.cl_temperature)
        return terms

    def _candidate_logits(self, sequence_output: torch.Tensor, labels: torch.LongTensor,
                          label_candidate_ids: torch.LongTensor) -> tuple[torch.Tensor, torch.LongTensor]:
        """The LM head's scores of each position's candidates and, per position, the index of its label among them
        (-100 where the label is ignored)."""
        candidates = label_candidate_ids.to(sequence_output.device)
        if candidates.ndim != 3 or candidates.shape[:2] != labels.shape:
            raise ValueError(f"`label_candidate_ids` must have shape (batch_size, target_length, width) = "
                             f"{tuple(labels.shape)} + (width,), got {tuple(candidates.shape)}")
        valid = candidates >= 0
        weight = self.lm_head.weight[candidates.clamp(min=0)]  # (batch, length, width, d_model)
        logits = torch.einsum("bld,blwd->blw", sequence_output, weight.to(sequence_output.dtype))
        logits = logits.masked_fill(~valid, torch.finfo(logits.dtype).min)
        is_label = (candidates == labels.unsqueeze(-1)) & valid
        kept = labels != -100
        missing = kept & ~is_label.any(dim=-1)
        if bool(missing.any()):
            row, position = (int(i) for i in missing.nonzero()[0])
            raise ValueError(f"`labels[{row}, {position}]` = {int(labels[row, position])} is not among that "
                             "position's `label_candidate_ids`")
        targets = torch.where(kept, is_label.float().argmax(dim=-1), torch.full_like(labels, -100))
        return logits, targets

    def _weighted_contrastive_loss(self, terms: dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        weights = {"contrastive_loss_ta": self.config.cl_weight_ta, "contrastive_loss_tv": self.config.cl_weight_tv,
                   "contrastive_loss_label": self.config.cl_label_weight}
        parts = [weights[name] * terms[name] for name in weights if name in terms and weights[name] > 0]
        return sum(parts[1:], parts[0]) if parts else None

    def _shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        shifted = labels.new_zeros(labels.shape)
        shifted[..., 1:] = labels[..., :-1].clone()
        shifted[..., 0] = self.config.decoder_start_token_id
        return shifted.masked_fill(shifted == -100, self.config.pad_token_id)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs for teacher forcing: labels shifted right behind the start token."""
        return self._shift_right(labels)

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        acoustic_features: Optional[torch.FloatTensor] = None,
        acoustic_attention_mask: Optional[torch.Tensor] = None,
        visual_features: Optional[torch.FloatTensor] = None,
        visual_attention_mask: Optional[torch.Tensor] = None,
        encoder_outputs: Optional[UniMSEEncoderOutput] = None,
        **kwargs,
    ):
        """`GenerationMixin.generate` with the modality inputs: the LSTMs and the fused encoder run once
        per call, and the utterance vectors travel (expanded for beams) inside `encoder_outputs`.

        Training-only batch entries (`labels`, `contrastive_label_ids`, `label_candidate_ids`) are ignored, so a
        training batch can be passed as it is.
        """
        for name in ("labels", "contrastive_label_ids", "label_candidate_ids", "num_items_in_batch"):
            kwargs.pop(name, None)
        encoder_outputs = self._resolve_encoder_outputs(
            encoder_outputs, input_ids, attention_mask, kwargs.pop("inputs_embeds", None),
            (acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask),
        )
        return super().generate(inputs=input_ids, attention_mask=attention_mask, encoder_outputs=encoder_outputs,
                                **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save like any model; `auto_map` names both `AutoModel` and `AutoModelForSeq2SeqLM` when registered."""
        if getattr(self, "_auto_class", None) is not None:
            module = self.__class__.__module__.split(".")[-1]
            target = f"{module}.{self.__class__.__name__}"
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.update({"AutoModel": target, "AutoModelForSeq2SeqLM": target})
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)


def _checkpoint_model_type(pretrained_model_name_or_path: Any, load_kwargs: dict[str, Any]) -> Optional[str]:
    """`model_type` of the checkpoint's own config.json (not of a `config=` the caller passed in)."""
    hub_kwargs = {name: load_kwargs[name] for name in ("revision", "cache_dir", "token", "local_files_only",
                                                       "subfolder", "proxies") if name in load_kwargs}
    config_dict, _ = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
    return config_dict.get("model_type")


def _encoder_side_vectors(acoustic: UniMSEModalityEncoding, visual: UniMSEModalityEncoding) -> UniMSEModalityVectors:
    """Per-token states where they were computed (token-level fusion), else the utterance vectors."""
    return UniMSEModalityVectors(
        acoustic=acoustic.vector if acoustic.token_states is None else acoustic.token_states,
        visual=visual.vector if visual.token_states is None else visual.token_states,
    )


__all__ = ["UniMSEPreTrainedModel", "UniMSEForConditionalGeneration", "UniMSEFusionAdapter", "UniMSEModalityVectors",
           "UniMSEModalityEncoder", "UniMSEContrastiveHead", "UniMSEEncoderOutput", "UniMSESeq2SeqLMOutput",
           "info_nce_loss", "supervised_contrastive_loss"]
