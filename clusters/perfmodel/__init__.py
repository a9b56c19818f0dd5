"""Performance model: what heterogeneous, multi-site capacity is worth for synchronous training.

Standard library and numpy only (matplotlib only inside :func:`plot_sweep`); no Django import
anywhere in this package. See SCHEMA.md for the scenario and assessment documents and the API.
"""

from .assessment import (
    ASSESSMENT_SCHEMA,
    MODEL_VERSION,
    Assessment,
    BreakEven,
    PlacementFigures,
    assess,
)
from .catalog import CATALOG, Accelerator
from .cli import main
from .model import Inputs, Outputs, Topology, evaluate, evaluate_reference, inputs_of, topology_of
from .placement import Placement, candidate_placements
from .plot import plot_sweep
from .scenario import (
    SCENARIO_SCHEMA,
    Economics,
    Link,
    Pool,
    Scenario,
    ScenarioError,
    Workload,
)
from .sweep import SWEEP_FIELDS, SweepResult, parse_spec, sweep

__all__ = [
    "ASSESSMENT_SCHEMA",
    "CATALOG",
    "MODEL_VERSION",
    "SCENARIO_SCHEMA",
    "SWEEP_FIELDS",
    "Accelerator",
    "Assessment",
    "BreakEven",
    "Economics",
    "Inputs",
    "Link",
    "Outputs",
    "Placement",
    "PlacementFigures",
    "Pool",
    "Scenario",
    "ScenarioError",
    "SweepResult",
    "Topology",
    "Workload",
    "assess",
    "candidate_placements",
    "evaluate",
    "evaluate_reference",
    "inputs_of",
    "main",
    "parse_spec",
    "plot_sweep",
    "sweep",
    "topology_of",
]
