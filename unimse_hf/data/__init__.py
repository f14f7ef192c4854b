# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Converters from the MOSI, MOSEI, MELD and IEMOCAP sources into one ``datasets`` schema."""
