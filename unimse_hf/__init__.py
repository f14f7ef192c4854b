# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""unimse-hf: UniMSE (Hu et al., EMNLP 2022) as a Hugging Face transformers model.

Importing the package registers UniMSE with the transformers Auto classes, and marks the classes so
that `save_pretrained`/`push_to_hub` write `auto_map` and copy the Hub modules for `trust_remote_code`.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForSeq2SeqLM, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_unimse import UniMSEConfig
from .feature_extraction_unimse import UniMSEFeatureExtractor
from .labels import ParsedLabel, UniversalLabel, format_universal_label, parse_universal_label
from .modeling_unimse import UniMSEForConditionalGeneration, UniMSEPreTrainedModel
from .pipeline_unimse import PIPELINE_TASK, UniMSEPipeline
from .processing_unimse import UniMSEProcessor

__version__ = "0.1.0"


def register_auto_classes() -> None:
    """Register UniMSE with the Auto classes (in this process) and for `auto_map` (in saved checkpoints).

    Called on import; safe to call again.
    """
    UniMSEConfig.register_for_auto_class()
    UniMSEForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")
    UniMSEFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    UniMSEProcessor.register_for_auto_class("AutoProcessor")
    AutoConfig.register(UniMSEConfig.model_type, UniMSEConfig, exist_ok=True)
    AutoModel.register(UniMSEConfig, UniMSEForConditionalGeneration, exist_ok=True)
    AutoModelForSeq2SeqLM.register(UniMSEConfig, UniMSEForConditionalGeneration, exist_ok=True)
    AutoFeatureExtractor.register(UniMSEConfig, UniMSEFeatureExtractor, exist_ok=True)
    AutoProcessor.register(UniMSEConfig, UniMSEProcessor, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=UniMSEPipeline, pt_model=AutoModelForSeq2SeqLM)


register_auto_classes()

__all__ = [
    "UniMSEConfig",
    "UniMSEFeatureExtractor",
    "UniMSEForConditionalGeneration",
    "UniMSEPreTrainedModel",
    "UniMSEProcessor",
    "UniMSEPipeline",
    "UniversalLabel",
    "ParsedLabel",
    "format_universal_label",
    "parse_universal_label",
    "register_auto_classes",
]
