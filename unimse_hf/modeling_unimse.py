# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""UniMSE: a T5 encoder-decoder with LSTM acoustic/visual encoders and PMF fusion adapters.

The T5 stacks are transformers' own `T5Stack`; nothing of T5 is forked. Each PMF adapter is attached
with a forward hook after the feed-forward sub-layer (`block.layer[-1]`) of the configured blocks, so
T5's module tree and state-dict keys stay those of a plain T5 checkpoint. The per-sample modality
vectors reach the hooks through a `UniMSEFusionContext` that the model sets before every encoder and
decoder call; `generate()` computes them once per call and carries them in the encoder outputs.
"""


import copy
import math
import threading
from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import T5Stack

from .configuration_unimse import UniMSEConfig

_ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}


def info_nce_loss(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch InfoNCE: row i of `query` should match row i of `key` among all rows of `key`.

    Both are L2-normalised; the loss is the mean cross-entropy of `query @ key.T / temperature`
    against the diagonal (one direction, text -> modality, as in the official code).
    """
    query = F.normalize(query, dim=-1)
    key = F.normalize(key, dim=-1)
    logits = query @ key.transpose(0, 1) / temperature
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device))


def masked_mean(states: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean over dim 1 of `states` (B, L, D) restricted to `mask` (B, L); all positions if `mask` is None."""
    if mask is None:
        return states.mean(dim=1)
    mask = mask.to(states.dtype).unsqueeze(-1)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class UniMSEFusionContext:
    """Per-call state read by the fusion adapters and the contrastive hooks. Not a module; never saved.

    The state is thread-local, so one model can serve concurrent requests from several threads. It is
    deliberately not cleared after a forward pass: gradient checkpointing recomputes blocks during
    backward (in the same thread) and needs the same vectors.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __deepcopy__(self, memo: dict) -> "UniMSEFusionContext":
        return UniMSEFusionContext()

    def __reduce__(self):
        return (UniMSEFusionContext, ())

    @property
    def block_inputs(self) -> dict[str, torch.Tensor]:
        """Hidden states captured at the contrastive blocks' inputs, by stack name."""
        if not hasattr(self._local, "block_inputs"):
            self._local.block_inputs = {}
        return self._local.block_inputs

    def set_vectors(self, acoustic: torch.Tensor, visual: torch.Tensor) -> None:
        """Store the (batch, modality_out) utterance vectors for the next encoder/decoder call in this thread."""
        self._local.acoustic, self._local.visual = acoustic, visual

    def vectors(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (visual, acoustic) for a batch; refuses a missing or mismatched context."""
        acoustic, visual = getattr(self._local, "acoustic", None), getattr(self._local, "visual", None)
        if acoustic is None or visual is None:
            raise RuntimeError("UniMSE fusion adapters ran without modality vectors; call the UniMSE model, "
                               "not its `encoder`/`decoder` stacks directly.")
        if acoustic.shape[0] != batch_size:
            raise RuntimeError(f"UniMSE fusion context holds {acoustic.shape[0]} samples but the block "
                               f"received {batch_size}; the stacks were called outside the UniMSE model.")
        return visual, acoustic


class UniMSEFusionAdapter(nn.Module):
    """The PMF adapter: z = [h; v; a], u = z + up(act(down(z))), output = out_proj(u) (replaces h)."""

    def __init__(self, config: UniMSEConfig):
        super().__init__()
        fused_dim = config.d_model + 2 * config.modality_out
        self.down_proj = nn.Linear(fused_dim, config.pmf_bottleneck)
        self.up_proj = nn.Linear(config.pmf_bottleneck, fused_dim)
        self.out_proj = nn.Linear(fused_dim, config.d_model)
        self.activation = _ACTIVATIONS[config.pmf_activation]
        self.down_proj._unimse_init = "pmf_bottleneck"
        self.up_proj._unimse_init = "pmf_up"
        self.out_proj._unimse_init = "pmf_out"
        self.fusion_context: Optional[UniMSEFusionContext] = None

    def forward(self, hidden_states: torch.Tensor, visual: torch.Tensor, acoustic: torch.Tensor) -> torch.Tensor:
        """Fuse (batch, length, d_model) states with (batch, modality_out) visual and acoustic vectors."""
        batch, length, _ = hidden_states.shape
        fused = torch.cat(
            [
                hidden_states,
                visual.to(hidden_states.dtype).unsqueeze(1).expand(batch, length, -1),
                acoustic.to(hidden_states.dtype).unsqueeze(1).expand(batch, length, -1),
            ],
            dim=-1,
        )
        fused = fused + self.up_proj(self.activation(self.down_proj(fused)))
        return self.out_proj(fused)

    def fuse_after_feed_forward(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook for a T5 feed-forward sub-layer: replace its output by the fused states."""
        visual, acoustic = self.fusion_context.vectors(output.shape[0])
        return self(output, visual, acoustic)


@dataclass
class UniMSEModalityEncoding:
    """What a modality encoder produces for a batch."""

    vector: torch.Tensor
    """(batch, modality_out) utterance vectors fed to the adapters."""
    pooled_sequence: Optional[torch.Tensor]
    """(batch, modality_hidden) mean of the LSTM's per-step outputs over valid frames (for contrastive keys)."""
    present: torch.Tensor
    """(batch,) bool: whether the sample had at least one valid frame."""


class UniMSEModalityEncoder(nn.Module):
    """A 1-layer LSTM over a frame sequence; its final hidden state -> dropout -> linear = utterance vector.

    Frames are packed by length (the fixed version of the official encoder, B1): valid frames are
    those where the mask is 1, taken in order, so right-padded and token-aligned layouts both work.
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

    def missing(self, batch_size: int) -> UniMSEModalityEncoding:
        """The encoding of a batch in which this modality is absent."""
        vector = self.missing_embedding.unsqueeze(0).expand(batch_size, -1)
        present = torch.zeros(batch_size, dtype=torch.bool, device=vector.device)
        return UniMSEModalityEncoding(vector=vector, pooled_sequence=None, present=present)

    def forward(self, features: torch.Tensor, mask: Optional[torch.Tensor]) -> UniMSEModalityEncoding:
        """Encode (batch, frames, input_dim) features with a (batch, frames) validity mask."""
        batch, frames, _ = features.shape
        if mask is None:
            mask = torch.ones(batch, frames, dtype=torch.bool, device=features.device)
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        prefix = torch.arange(frames, device=features.device).unsqueeze(0) < lengths.unsqueeze(1)
        if not torch.equal(mask, prefix):
            order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
            features = torch.gather(features, 1, order.unsqueeze(-1).expand_as(features))
        packed = pack_padded_sequence(features, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h_n, _) = self.rnn(packed)
        sequence, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=frames)
        present = lengths > 0
        vector = self.output_projection(self.dropout(h_n[-1]))
        vector = torch.where(present.unsqueeze(1), vector, self.missing_embedding.to(vector.dtype).unsqueeze(0))
        pooled_lengths = lengths
        if self.permute_sequences:
            # Official bug B1: row i receives the sequence of the sample ranked i-th by descending length.
            rank = torch.argsort(torch.argsort(-lengths, stable=True), stable=True)
            sequence, pooled_lengths = sequence[rank], lengths[rank]
        valid = torch.arange(frames, device=features.device).unsqueeze(0) < pooled_lengths.unsqueeze(1)
        return UniMSEModalityEncoding(vector=vector, pooled_sequence=masked_mean(sequence, valid), present=present)


class UniMSEContrastiveHead(nn.Module):
    """Projections for the text-modality InfoNCE, and a hook that captures a block's input states.

    One text projection (d_model -> cl_proj_dim) and one modality projection (modality_hidden ->
    cl_proj_dim) shared by acoustic and visual, as in the official code; both without bias.
    """

    def __init__(self, config: UniMSEConfig, stack_name: str):
        super().__init__()
        self.text_projection = nn.Linear(config.d_model, config.cl_proj_dim, bias=False)
        self.modality_projection = nn.Linear(config.modality_hidden, config.cl_proj_dim, bias=False)
        self.text_projection._unimse_init = "torch_default"
        self.modality_projection._unimse_init = "torch_default"
        self.stack_name = stack_name
        self.fusion_context: Optional[UniMSEFusionContext] = None

    def capture_block_input(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Forward pre-hook: remember the hidden states entering the chosen block."""
        hidden_states = args[0] if args else kwargs["hidden_states"]
        self.fusion_context.block_inputs[self.stack_name] = hidden_states


@dataclass
class UniMSEEncoderOutput(BaseModelOutput):
    r"""
    acoustic_vector (`torch.FloatTensor` of shape `(batch_size, modality_out)`):
        Acoustic utterance vectors fed to the PMF adapters.
    visual_vector (`torch.FloatTensor` of shape `(batch_size, modality_out)`):
        Visual utterance vectors fed to the PMF adapters.
    text_pooled (`torch.FloatTensor` of shape `(batch_size, d_model)`, *optional*):
        Pooled input states of the contrastive block (present when `cl_enabled`).
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
        The LM cross-entropy (mean over target tokens). The trainer adds the weighted contrastive terms.
    acoustic_vector / visual_vector (`torch.FloatTensor` of shape `(batch_size, modality_out)`):
        The utterance vectors fed to the PMF adapters.
    text_embeds / acoustic_embeds / visual_embeds (`torch.FloatTensor` of shape `(batch_size, cl_proj_dim)`, *optional*):
        Projected pooled text, acoustic and visual embeddings of the encoder-side contrastive head
        (returned with `labels`, i.e. when a training loss is computed).
    contrastive_loss_ta / contrastive_loss_tv (`torch.FloatTensor`, *optional*):
        InfoNCE text->acoustic and text->visual (summed over encoder and decoder with `cl_in_decoder`),
        over the samples that have the modality. `None` when the modality is absent or `cl_enabled` is off.
    """

    acoustic_vector: Optional[torch.FloatTensor] = None
    visual_vector: Optional[torch.FloatTensor] = None
    text_embeds: Optional[torch.FloatTensor] = None
    acoustic_embeds: Optional[torch.FloatTensor] = None
    visual_embeds: Optional[torch.FloatTensor] = None
    contrastive_loss_ta: Optional[torch.FloatTensor] = None
    contrastive_loss_tv: Optional[torch.FloatTensor] = None


class UniMSEPreTrainedModel(PreTrainedModel):
    """Base class: configuration, weight initialisation and loading rules shared by UniMSE heads."""

    config: UniMSEConfig
    base_model_prefix = "unimse"
    supports_gradient_checkpointing = True
    _no_split_modules = ["T5Block"]
    _keep_in_fp32_modules = ["wo"]
    _supports_sdpa = True
    # The LM loss is a per-batch mean that ignores `num_items_in_batch`; the Trainer must scale it.
    accepts_loss_kwargs = False

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, reading weights from safetensors only unless the caller passes
        `use_safetensors=False` (pickle-based `.bin` files can execute code when loaded)."""
        if kwargs.get("use_safetensors") is None:
            kwargs["use_safetensors"] = True
        return super().from_pretrained(*args, **kwargs)

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
        self.encoder_fusion = nn.ModuleList(UniMSEFusionAdapter(config) for _ in config.pmf_encoder_blocks)
        self.decoder_fusion = nn.ModuleList(UniMSEFusionAdapter(config) for _ in config.pmf_decoder_blocks)
        self.encoder_contrastive_head = UniMSEContrastiveHead(config, "encoder") if config.cl_enabled else None
        use_decoder_head = config.cl_enabled and config.cl_in_decoder
        self.decoder_contrastive_head = UniMSEContrastiveHead(config, "decoder") if use_decoder_head else None

        self.fusion_context = UniMSEFusionContext()
        self._attach_hooks()
        self.post_init()

    def _attach_hooks(self) -> None:
        for stack, blocks, adapters in (
            (self.encoder, self.config.pmf_encoder_blocks, self.encoder_fusion),
            (self.decoder, self.config.pmf_decoder_blocks, self.decoder_fusion),
        ):
            for index, adapter in zip(blocks, adapters):
                adapter.fusion_context = self.fusion_context
                stack.block[index].layer[-1].register_forward_hook(adapter.fuse_after_feed_forward)
        for stack, head, index in (
            (self.encoder, self.encoder_contrastive_head, self.config.cl_layer),
            (self.decoder, self.decoder_contrastive_head, -1),
        ):
            if head is not None:
                head.fusion_context = self.fusion_context
                stack.block[index].register_forward_pre_hook(head.capture_block_input, with_kwargs=True)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, new_embeddings: nn.Embedding) -> None:
        self.shared = new_embeddings
        self.encoder.set_input_embeddings(new_embeddings)
        self.decoder.set_input_embeddings(new_embeddings)

    # ------------------------------------------------------------------ parameter groups

    def fusion_parameter_names(self) -> list[str]:
        """Names of the parameters UniMSE adds to T5 (LSTMs, adapters, contrastive projections)."""
        prefixes = ("acoustic_encoder.", "visual_encoder.", "encoder_fusion.", "decoder_fusion.",
                    "encoder_contrastive_head.", "decoder_contrastive_head.")
        return [name for name, _ in self.named_parameters() if name.startswith(prefixes)]

    def trainable_t5_parameter_names(self) -> list[str]:
        """Names of the T5 parameters in `config.trainable_t5_blocks` of the encoder and decoder."""
        prefixes = tuple(f"{stack}.block.{i}." for stack in ("encoder", "decoder") for i in self.config.trainable_t5_blocks)
        return [name for name, _ in self.named_parameters() if name.startswith(prefixes)]

    def freeze_for_fine_tuning(self) -> None:
        """Train only the fusion modules and `trainable_t5_blocks`, freezing every other T5 weight.

        With `freeze_cl_projections` the contrastive projections stay frozen too (official B2).
        """
        trainable = set(self.fusion_parameter_names()) | set(self.trainable_t5_parameter_names())
        for name, parameter in self.named_parameters():
            frozen_projection = self.config.freeze_cl_projections and "contrastive_head." in name
            parameter.requires_grad_(name in trainable and not frozen_projection)

    # ------------------------------------------------------------------ encoding

    def _encode_modality(
        self, name: str, encoder: UniMSEModalityEncoder, features: Optional[torch.Tensor],
        mask: Optional[torch.Tensor], batch_size: int, expected_dim: int,
    ) -> UniMSEModalityEncoding:
        if features is None:
            if mask is not None:
                raise ValueError(f"`{name}_attention_mask` was given without `{name}_features`")
            return encoder.missing(batch_size)
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
        if not torch.isfinite(features).all():
            raise ValueError(f"`{name}_features` contains NaN or infinite values")
        return encoder(features.to(self.acoustic_encoder.rnn.weight_ih_l0.dtype), mask)

    def _encode_modalities(self, acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask,
                           batch_size: int) -> tuple[UniMSEModalityEncoding, UniMSEModalityEncoding]:
        acoustic = self._encode_modality("acoustic", self.acoustic_encoder, acoustic_features,
                                         acoustic_attention_mask, batch_size, self.config.acoustic_dim)
        visual = self._encode_modality("visual", self.visual_encoder, visual_features,
                                       visual_attention_mask, batch_size, self.config.visual_dim)
        return acoustic, visual

    def encode(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        acoustic_features: Optional[torch.FloatTensor] = None,
        acoustic_attention_mask: Optional[torch.Tensor] = None,
        visual_features: Optional[torch.FloatTensor] = None,
        visual_attention_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        **kwargs,
    ) -> UniMSEEncoderOutput:
        """Run the modality encoders and the fused T5 encoder once; the result feeds `forward`/`generate`."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Exactly one of `input_ids` and `inputs_embeds` must be given")
        text = input_ids if input_ids is not None else inputs_embeds
        batch_size = text.shape[0]
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(text.shape[:2]):
            raise ValueError(f"`attention_mask` must have shape {tuple(text.shape[:2])}, got {tuple(attention_mask.shape)}")
        acoustic, visual = self._encode_modalities(acoustic_features, acoustic_attention_mask, visual_features,
                                                   visual_attention_mask, batch_size)
        self.fusion_context.set_vectors(acoustic.vector, visual.vector)
        encoded = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        text_pooled = None
        if self.encoder_contrastive_head is not None:
            text_mask = attention_mask if self.config.cl_text_pooling == "masked_mean" else None
            text_pooled = masked_mean(self.fusion_context.block_inputs["encoder"], text_mask)
        return UniMSEEncoderOutput(
            last_hidden_state=encoded.last_hidden_state,
            hidden_states=encoded.hidden_states,
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
        encoder_outputs: Optional[Union[UniMSEEncoderOutput, tuple]] = None,
        cache=None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        decoder_inputs_embeds: Optional[torch.FloatTensor] = None,
        labels: Optional[torch.LongTensor] = None,
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
            Output of [`~UniMSEForConditionalGeneration.encode`]; carries the modality vectors for the decoder.
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Target token ids, -100 where ignored. Gives `loss` (the LM cross-entropy).

        Other arguments are those of `T5ForConditionalGeneration.forward`.
        """
        if "past_key_values" in kwargs:
            cache = kwargs.pop("past_key_values")
        if encoder_outputs is None:
            encoder_outputs = self.encode(
                input_ids=input_ids, attention_mask=attention_mask, acoustic_features=acoustic_features,
                acoustic_attention_mask=acoustic_attention_mask, visual_features=visual_features,
                visual_attention_mask=visual_attention_mask, inputs_embeds=inputs_embeds, **kwargs,
            )
        elif getattr(encoder_outputs, "acoustic_vector", None) is None:
            encoder_outputs = self._with_modality_vectors(
                encoder_outputs, acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask
            )
        hidden_states = encoder_outputs[0]

        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(labels)

        self.fusion_context.set_vectors(encoder_outputs.acoustic_vector, encoder_outputs.visual_vector)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            inputs_embeds=decoder_inputs_embeds,
            cache=cache,
            encoder_hidden_states=hidden_states,
            encoder_attention_mask=attention_mask,
            use_cache=use_cache,
            **kwargs,
        )
        sequence_output = decoder_outputs[0]
        if self.config.scale_decoder_outputs:
            sequence_output = sequence_output * (self.model_dim**-0.5)
        logits = self.lm_head(sequence_output)

        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.to(logits.device).view(-1), ignore_index=-100)

        contrastive = self._contrastive_terms(encoder_outputs, labels) if labels is not None else {}
        output = UniMSESeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
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

    def _with_modality_vectors(self, encoder_outputs, acoustic_features, acoustic_attention_mask,
                               visual_features, visual_attention_mask) -> UniMSEEncoderOutput:
        last_hidden_state = encoder_outputs[0]
        acoustic, visual = self._encode_modalities(acoustic_features, acoustic_attention_mask, visual_features,
                                                   visual_attention_mask, last_hidden_state.shape[0])
        return UniMSEEncoderOutput(
            last_hidden_state=last_hidden_state,
            acoustic_vector=acoustic.vector, visual_vector=visual.vector,
            acoustic_present=acoustic.present, visual_present=visual.present,
        )

    def _contrastive_terms(self, encoder_outputs: UniMSEEncoderOutput, labels: torch.Tensor) -> dict:
        head = self.encoder_contrastive_head
        text_pooled = getattr(encoder_outputs, "text_pooled", None)
        if head is None or text_pooled is None:
            return {}
        terms = {"text_embeds": head.text_projection(text_pooled)}
        decoder_text = None
        if self.decoder_contrastive_head is not None and "decoder" in self.fusion_context.block_inputs:
            states = self.fusion_context.block_inputs["decoder"]
            mask = None
            if self.config.cl_text_pooling == "masked_mean" and labels.shape[:2] == states.shape[:2]:
                mask = labels != -100
            decoder_text = masked_mean(states, mask)
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
            if decoder_text is not None and decoder_text.shape[0] == present.shape[0]:
                decoder_head = self.decoder_contrastive_head
                loss = loss + info_nce_loss(decoder_head.text_projection(decoder_text)[present],
                                            decoder_head.modality_projection(pooled)[present],
                                            self.config.cl_temperature)
            terms[f"contrastive_loss_{short}"] = loss
        return terms

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
        """
        kwargs.pop("labels", None)
        if encoder_outputs is None:
            encoder_outputs = self.encode(
                input_ids=input_ids, attention_mask=attention_mask, acoustic_features=acoustic_features,
                acoustic_attention_mask=acoustic_attention_mask, visual_features=visual_features,
                visual_attention_mask=visual_attention_mask, inputs_embeds=kwargs.pop("inputs_embeds", None),
            )
        elif getattr(encoder_outputs, "acoustic_vector", None) is None:
            encoder_outputs = self._with_modality_vectors(
                encoder_outputs, acoustic_features, acoustic_attention_mask, visual_features, visual_attention_mask
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


__all__ = ["UniMSEPreTrainedModel", "UniMSEForConditionalGeneration", "UniMSEFusionAdapter",
           "UniMSEModalityEncoder", "UniMSEContrastiveHead", "UniMSEEncoderOutput", "UniMSESeq2SeqLMOutput",
           "info_nce_loss"]
