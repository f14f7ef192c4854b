# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Fill the model-card template (`model_card.md`) from a config and measured evaluation results."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .configuration_unimse import UniMSEConfig

TEMPLATE_PATH = Path(__file__).resolve().parent / "model_card_template.md"
DATASET_NAMES = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI", "meld": "MELD", "iemocap": "IEMOCAP"}
METRIC_NAMES = {
    "mae": "MAE", "corr": "Pearson correlation", "acc7": "Acc-7", "acc5": "Acc-5",
    "acc2_non0": "Acc-2 (non0)", "weighted_f1_non0": "Weighted F1 (non0)", "acc2_has0": "Acc-2 (has0)",
    "weighted_f1_has0": "Weighted F1 (has0)", "accuracy": "Accuracy", "weighted_f1": "Weighted F1",
    "parse_failure_rate": "Parse-failure rate",
}


def eval_results_from_metrics(metrics: Mapping[str, float], split: str = "test") -> list[EvalResult]:
    """Turn `{<prefix>_<dataset>_<metric>: value}` metrics (as the trainer logs them) into `EvalResult`s.

    Only keys naming a known dataset and metric are used; nothing is invented.
    """
    results = []
    for key, value in sorted(metrics.items()):
        parts = key.split("_")
        for start, part in enumerate(parts):
            if part in DATASET_NAMES:
                metric = "_".join(parts[start + 1:])
                if metric in METRIC_NAMES:
                    task = "text-classification"
                    results.append(EvalResult(
                        task_type=task, task_name="Multimodal sentiment analysis and emotion recognition",
                        dataset_type=part, dataset_name=DATASET_NAMES[part], dataset_split=split,
                        metric_type=metric, metric_name=METRIC_NAMES[metric], metric_value=float(value),
                    ))
                break
    return results


def build_model_card(
    config: UniMSEConfig,
    model_name: str,
    repo_id: str,
    eval_metrics: Optional[Mapping[str, float]] = None,
    datasets: Sequence[str] = (),
    base_model: Optional[str] = None,
    training: str = "Not described.",
    acoustic_kind: str = "unspecified",
    visual_kind: str = "unspecified",
    widget_examples: Sequence[str] = ("it was really good", "I can't believe you did that!"),
    split: str = "test",
    task_prefix: str = "",
    decoding: str = "constrained to the label grammar, as the pipeline decodes",
) -> ModelCard:
    """Fill `model_card.md` with the config, the measured metrics (as `model-index`, on `split`) and a usage snippet.

    `task_prefix` is the processor's (`UniMSEProcessor.task_prefix`), the one prefix the model is fed;
    `decoding` says how the measured generations were decoded.
    """
    eval_results = eval_results_from_metrics(eval_metrics or {}, split=split)
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["custom_code", "unimse", "multimodal", "multimodal-sentiment-analysis", "emotion-recognition",
              "t5"],
        datasets=[DATASET_NAMES.get(d, d) for d in datasets] or None,
        base_model=base_model,
        license="apache-2.0",
        model_name=model_name,
        eval_results=eval_results or None,
        widget=[{"text": text} for text in widget_examples],
    )
    rows = ["| dataset | metric | value |", "| --- | --- | --- |"]
    rows += [f"| {r.dataset_name} | {r.metric_name} | {r.metric_value:.4f} |" for r in eval_results]
    usage = (
        "from transformers import pipeline\n"
        f"classifier = pipeline(model={repo_id!r}, trust_remote_code=True)\n"
        f"print(classifier({widget_examples[0]!r}))"
    )
    values = {
        "card_data": card_data.to_yaml(),
        "model_name": model_name,
        "usage": usage,
        "d_model": config.d_model,
        "num_layers": config.num_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "pmf_encoder_blocks": config.pmf_encoder_blocks,
        "pmf_decoder_blocks": config.pmf_decoder_blocks,
        "acoustic_dim": config.acoustic_dim,
        "visual_dim": config.visual_dim,
        "acoustic_kind": acoustic_kind,
        "visual_kind": visual_kind,
        "contrastive": (f"InfoNCE text-acoustic ×{config.cl_weight_ta}, text-visual ×{config.cl_weight_tv}, "
                        f"τ {config.cl_temperature}" if config.cl_enabled else "off"),
        "task_prefix": task_prefix,
        "decoding": decoding,
        "results_table": "\n".join(rows) if eval_results else "No evaluation results were recorded for this checkpoint.",
        "training": training,
    }
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", str(value))
    card = ModelCard(text)
    yaml.safe_load(card.content.split("---")[1])  # the metadata block must be valid YAML
    return card


def usage_snippet(card: ModelCard) -> str:
    """The Python code of the card's usage section (tests execute it)."""
    return card.text.split("```python\n", 1)[1].split("```", 1)[0]


__all__ = ["build_model_card", "eval_results_from_metrics", "usage_snippet"]
