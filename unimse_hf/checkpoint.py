# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Write a complete, loadable UniMSE checkpoint folder: weights, code, processor, pipeline, card."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from transformers import PretrainedConfig
from transformers.dynamic_module_utils import custom_object_save

from .modeling_unimse import UniMSEForConditionalGeneration
from .pipeline_unimse import PIPELINE_TASK, UniMSEPipeline
from .processing_unimse import UniMSEProcessor

HUB_MODULES = (
    "configuration_unimse.py",
    "modeling_unimse.py",
    "feature_extraction_unimse.py",
    "processing_unimse.py",
    "labels.py",
    "label_grammar.py",
    "pipeline_unimse.py",
)
"""The flat modules a checkpoint needs for `trust_remote_code` loading."""


def declare_custom_pipeline(config: PretrainedConfig) -> None:
    """Record the `multimodal-sentiment-analysis` pipeline in `config.custom_pipelines` (saved in config.json)."""
    module = UniMSEPipeline.__module__.split(".")[-1]
    pipelines = dict(getattr(config, "custom_pipelines", None) or {})
    pipelines[PIPELINE_TASK] = {"impl": f"{module}.{UniMSEPipeline.__name__}", "pt": ["AutoModelForSeq2SeqLM"]}
    config.custom_pipelines = pipelines


def write_pipeline_files(directory: str | os.PathLike) -> None:
    """Copy the pipeline module (with its relative imports) and `handler.py` for Inference Endpoints."""
    directory = Path(directory)
    custom_object_save(UniMSEPipeline, str(directory))
    shutil.copyfile(Path(__file__).with_name("endpoint_handler.py"), directory / "handler.py")


def save_checkpoint(
    model: UniMSEForConditionalGeneration,
    processor: UniMSEProcessor,
    directory: str | os.PathLike,
    model_card: Optional[str] = None,
) -> Path:
    """Save everything a Hub repo needs so `AutoModel`, `AutoProcessor` and `pipeline(..., trust_remote_code=True)`
    load it with nothing but transformers installed: weights (safetensors), config with `auto_map` and
    `custom_pipelines`, every Hub module, the processor files, the generation config, `handler.py` for
    Inference Endpoints and the card (README.md).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    declare_custom_pipeline(model.config)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    write_pipeline_files(directory)
    missing = [name for name in HUB_MODULES if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"checkpoint in {directory} lacks Hub modules {missing}; was `unimse_hf` imported?")
    if model_card is not None:
        (directory / "README.md").write_text(model_card, encoding="utf-8")
    return directory


__all__ = ["save_checkpoint", "declare_custom_pipeline", "write_pipeline_files", "HUB_MODULES"]
