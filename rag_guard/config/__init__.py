"""Typed configuration: `schema` (every key and its rules), `loading` (config.yaml, environment overrides,
where a bad value came from) and `writing` (calibrate's write-back, comments kept)."""

from rag_guard.config.loading import CONFIG_ENV_VAR, DEFAULT_CONFIG_NAME, ENV_PREFIX, find_config, load_config
from rag_guard.config.schema import (
    DemoSettings,
    GuardSettings,
    ModelSettings,
    ServeSettings,
    Settings,
)
from rag_guard.config.writing import write_guard_calibration

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_NAME",
    "ENV_PREFIX",
    "DemoSettings",
    "GuardSettings",
    "ModelSettings",
    "ServeSettings",
    "Settings",
    "find_config",
    "load_config",
    "write_guard_calibration",
]
