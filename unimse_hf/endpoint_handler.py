# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Custom handler for Hugging Face Inference Endpoints (copied into checkpoints as `handler.py`).

Hosted widgets do not run custom code, so an Endpoint serves UniMSE through this handler. It takes the
widget's JSON payload `{"inputs": <input> | [<input>, ...], "parameters": {...}}`, where an input is a
transcript string or `{"text": ..., "acoustic": [[...]], "visual": [[...]], "word_timestamps": [...],
"audio": "<base64>", "video": "<base64>"}`, and returns a list with one prediction per input, in order;
a list of inputs runs in batches of `batch_size`. It imports only transformers and the standard library.

A client reaches nothing but the model:

- `audio` / `video` are the file's bytes as a base64 string (a `data:<type>;base64,` prefix is
  allowed). A path is refused, with one message whatever the path, unless the server lists folders in
  `media_folders`: then a path to a file inside one of them is read.
- Parameters other than `max_new_tokens`, `num_beams`, `structured`, `return_emotion_scores` and
  `return_modality_contributions` are refused, naming them.
- Limits, with these defaults, set in an optional `handler_config.json` next to the checkpoint (a JSON
  object with any of the names below) or as `EndpointHandler(path, **limits)` arguments, which win:

  | limit | default | refuses |
  | --- | --- | --- |
  | `max_payload_bytes` | 16 MiB | a payload whose JSON text is longer |
  | `max_inputs` | 64 | a request with more inputs |
  | `max_new_tokens` | 64 | a larger `max_new_tokens` parameter |
  | `max_num_beams` | 4 | a larger `num_beams` parameter |
  | `max_clip_seconds` | 60 | audio/video longer than this (from the container, before decoding) |
  | `batch_size` | 8 | (not a limit: inputs per batch) |
  | `media_folders` | none | (server-side folders whose files may be named by path) |

Every refusal is a `ValueError`/`TypeError` raised before the model runs; the handler keeps serving.
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from transformers import pipeline

HANDLER_CONFIG_FILE = "handler_config.json"
CLIENT_PARAMETERS = ("max_new_tokens", "num_beams", "structured", "return_emotion_scores",
                     "return_modality_contributions")
MEDIA_KEYS = ("audio", "video")
_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r")


@dataclass(frozen=True)
class HandlerLimits:
    """What one request may ask for; see the module docstring for the defaults."""

    max_payload_bytes: int = 16 * 1024 * 1024
    max_inputs: int = 64
    max_new_tokens: int = 64
    max_num_beams: int = 4
    max_clip_seconds: float = 60.0
    batch_size: int = 8
    media_folders: tuple = ()

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "media_folders":
                if not isinstance(value, (list, tuple)) or not all(isinstance(f, str) for f in value):
                    raise TypeError(f"`media_folders` must be a list of folder paths, got {value!r}")
                folders = tuple(os.path.realpath(folder) for folder in value)
                missing = [folder for folder in folders if not os.path.isdir(folder)]
                if missing:
                    raise ValueError(f"`media_folders` lists folders that do not exist: {missing}")
                object.__setattr__(self, "media_folders", folders)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or (
                    field.type is int and not isinstance(value, int)):
                raise ValueError(f"`{field.name}` must be a positive {field.type.__name__}, got {value!r}")

    @classmethod
    def from_checkpoint(cls, path: str, **overrides: Any) -> "HandlerLimits":
        """The defaults, updated from `path/handler_config.json` (if present), then from `overrides`."""
        known = {field.name for field in fields(cls)}
        values: dict[str, Any] = {}
        config_file = os.path.join(path, HANDLER_CONFIG_FILE)
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as handle:
                try:
                    values = json.load(handle)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{config_file} is not valid JSON: {error}") from None
            if not isinstance(values, dict) or set(values) - known:
                raise ValueError(f"{config_file} must be a JSON object with keys among {sorted(known)}; got "
                                 f"{sorted(set(values) - known) if isinstance(values, dict) else type(values).__name__}")
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown handler limits {sorted(unknown)}; known: {sorted(known)}")
        return replace(cls(), **{**values, **overrides})


class EndpointHandler:
    """Loads the checkpoint's `multimodal-sentiment-analysis` pipeline once and answers requests."""

    def __init__(self, path: str = "", **limits: Any) -> None:
        self.limits = HandlerLimits.from_checkpoint(path or ".", **limits)
        self.pipeline = pipeline(model=path or ".", trust_remote_code=True)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Predict for `data["inputs"]` (one input or a list) with optional `data["parameters"]`."""
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError("`data` must be a JSON object with an 'inputs' field")
        unknown = set(data) - {"inputs", "parameters"}
        if unknown:
            raise ValueError(f"`data` has unknown fields {sorted(unknown)}; expected 'inputs' and 'parameters'")
        self._check_payload_size(data)
        parameters = self._checked_parameters(data.get("parameters"))
        inputs = data["inputs"]
        items = inputs if isinstance(inputs, list) else [inputs]
        if not items:
            raise ValueError("`inputs` is empty")
        if len(items) > self.limits.max_inputs:
            raise ValueError(f"`inputs` has {len(items)} inputs; the limit is {self.limits.max_inputs}")
        items = [self._checked_input(item, f"inputs[{i}]" if isinstance(inputs, list) else "inputs")
                 for i, item in enumerate(items)]
        for item in items:
            self.pipeline.check_input(item, max_clip_seconds=self.limits.max_clip_seconds)
        results = self.pipeline(items, batch_size=min(self.limits.batch_size, len(items)),
                                max_clip_seconds=self.limits.max_clip_seconds, **parameters)
        return list(results)

    def _check_payload_size(self, data: dict) -> None:
        try:
            size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
        except (TypeError, ValueError) as error:
            raise TypeError(f"`data` must be a JSON payload: {error}") from None
        if size > self.limits.max_payload_bytes:
            raise ValueError(f"the payload is {size} bytes; the limit is {self.limits.max_payload_bytes} bytes")

    def _checked_parameters(self, parameters: Optional[dict]) -> dict:
        parameters = {} if parameters is None else parameters
        if not isinstance(parameters, dict):
            raise ValueError("`parameters` must be a JSON object")
        unknown = set(parameters) - set(CLIENT_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; allowed: {list(CLIENT_PARAMETERS)}")
        for name, limit in (("max_new_tokens", self.limits.max_new_tokens), ("num_beams", self.limits.max_num_beams)):
            value = parameters.get(name)
            if value is not None and isinstance(value, int) and not isinstance(value, bool) and value > limit:
                raise ValueError(f"`parameters.{name}` is {value}; this endpoint allows at most {limit}")
        return parameters

    def _checked_input(self, item: Any, name: str) -> Any:
        if not isinstance(item, dict):
            return item
        item = dict(item)
        for key in MEDIA_KEYS:
            if item.get(key) is not None:
                item[key] = self._media(item[key], f"{name}.{key}")
        return item

    def _media(self, value: Any, name: str) -> Any:
        """Base64 file bytes, or a path inside `media_folders`; anything else gets one and the same message."""
        refusal = (f"`{name}` must be the file's bytes as a base64 string"
                   + ("; paths are accepted only inside the server's media folders" if self.limits.media_folders
                      else "; file paths are not accepted"))
        if not isinstance(value, str):
            raise TypeError(refusal)
        if self.limits.media_folders:
            real = os.path.realpath(value)
            if any(os.path.commonpath([real, folder]) == folder for folder in self.limits.media_folders) \
                    and os.path.isfile(real):
                return real
        encoded = value.split(",", 1)[1] if value.startswith("data:") and ";base64," in value[:100] else value
        if not encoded or not set(encoded) <= _BASE64_ALPHABET:
            raise ValueError(refusal)
        try:
            decoded = base64.b64decode(encoded, validate=False)
        except (binascii.Error, ValueError):
            raise ValueError(refusal) from None
        if not decoded:
            raise ValueError(refusal)
        return decoded
