"""A member's traffic ramp: plan (pure), state in federation.yaml, and the engine that runs it.

Importing the package loads the planning API only (no HTTP client, no adapters); the engine
is `federation_deploy.traffic.ramp.engine`.
"""

from __future__ import annotations

from federation_deploy.traffic.ramp.plan import (
    DEFAULT_HOLD,
    DEFAULT_STEPS,
    RampPlan,
    RampStep,
    check_rampable,
    check_steps,
    describe_ramp_policy,
    parse_steps,
    plan_ramp,
    resolve_plan,
)

__all__ = [
    "DEFAULT_HOLD",
    "DEFAULT_STEPS",
    "RampPlan",
    "RampStep",
    "check_rampable",
    "check_steps",
    "describe_ramp_policy",
    "parse_steps",
    "plan_ramp",
    "resolve_plan",
]
