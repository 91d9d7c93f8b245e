"""Load and validate config/ once, into frozen dataclasses; every error names file, line, key.

model.py holds the dataclasses, schema.py the one declaration of federation.yaml's keys, and
loader.py reads a config directory with them; the public names are re-exported here.
"""

from .loader import Checker, display_path, load_federation
from .model import (
    CHARTS_DIR,
    PACKAGE_CHART_PREFIX,
    ChartPin,
    CheckSettings,
    Cluster,
    Federation,
    Hook,
    Location,
    Member,
    RampState,
    RedirectorSettings,
    Release,
    TerraformStack,
    ValuesFile,
)
from .schema import (
    CLOUDS,
    EXACT_VERSION,
    FEDERATION_FILE,
    KUBERNETES_VERSION,
    LOAD_BALANCERS,
    NAME,
    RAMP_KEYS,
    TERRAFORM_VERSION,
    is_bool,
    is_nonneg,
    is_number,
    is_positive,
    is_str,
    url_problem,
)
from .values import ValuesLayer, locked_error, values_layers, values_patterns

__all__ = [
    "CHARTS_DIR",
    "CLOUDS",
    "EXACT_VERSION",
    "FEDERATION_FILE",
    "KUBERNETES_VERSION",
    "LOAD_BALANCERS",
    "NAME",
    "PACKAGE_CHART_PREFIX",
    "RAMP_KEYS",
    "TERRAFORM_VERSION",
    "ChartPin",
    "CheckSettings",
    "Checker",
    "Cluster",
    "Federation",
    "Hook",
    "Location",
    "Member",
    "RampState",
    "RedirectorSettings",
    "Release",
    "TerraformStack",
    "ValuesFile",
    "ValuesLayer",
    "display_path",
    "is_bool",
    "is_nonneg",
    "is_number",
    "is_positive",
    "is_str",
    "load_federation",
    "locked_error",
    "url_problem",
    "values_layers",
    "values_patterns",
]
