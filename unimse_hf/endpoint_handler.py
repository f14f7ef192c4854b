# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Custom handler for Hugging Face Inference Endpoints (copied into checkpoints as `handler.py`).

Hosted widgets do not run custom code, so an Endpoint serves UniMSE through this handler. It takes the
widget's JSON payload `{"inputs": "<transcript>" | {"text": ..., "acoustic": [[...]], ...}, "parameters": {...}}`
and returns a list with one prediction dict per input. It imports only transformers.
"""

from typing import Any

from transformers import pipeline


class EndpointHandler:
    """Loads the checkpoint's `multimodal-sentiment-analysis` pipeline once and answers requests."""

    def __init__(self, path: str = "") -> None:
        self.pipeline = pipeline(model=path or ".", trust_remote_code=True)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Predict for `data["inputs"]` (one input or a list) with optional `data["parameters"]`."""
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError("`data` must be a JSON object with an 'inputs' field")
        inputs = data["inputs"]
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError("`parameters` must be a JSON object")
        items = inputs if isinstance(inputs, list) else [inputs]
        if not items:
            raise ValueError("`inputs` is empty")
        return [self.pipeline(item, **parameters) for item in items]
