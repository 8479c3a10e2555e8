"""The calibration map: signal features → P(sufficient), as `guard.calibration` stores it. Pure.

A calibration is a logistic regression of the label on the signals' features (log-odds of the
probabilities, the raw similarity or logprob otherwise): with the verdict alone it is Platt scaling, with
more signals it is their combination. Fitting one lives in `rag_guard.evaluation.calibration_maths`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag_guard.judging.signals import SignalName, sigmoid

Features = Mapping[str, float]


class Calibration(BaseModel):
    """A logistic map from signal features to P(sufficient); stored under `guard.calibration`."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[SignalName, float] = Field(min_length=1)
    """One weight per signal; the guard measures exactly these signals."""
    bias: float = Field(allow_inf_nan=False)
    fitted_on: str | None = None
    """Which labelled set, for the record."""
    n: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _platt_pair(cls, data: Any) -> Any:
        """Read the earlier `{a, b}` form (Platt scaling of the verdict) as weights."""
        if isinstance(data, Mapping) and "a" in data and "weights" not in data:
            rest = {key: value for key, value in data.items() if key not in ("a", "b")}
            return {"weights": {"verdict": data["a"]}, "bias": data.get("b", 0.0), **rest}
        return data

    @property
    def signals(self) -> set[str]:
        return set(self.weights)

    def apply(self, features: Features) -> float:
        missing = self.signals - set(features)
        if missing:
            raise ValueError(f"the calibration needs the signal(s) {sorted(missing)}, which were not measured")
        return sigmoid(self.bias + sum(w * features[name] for name, w in self.weights.items()))
