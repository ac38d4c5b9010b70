"""The evaluation JSON's fixed names (docs/evaluation.md), shared by the runner that writes it and
the report that reads it; kept free of imports so reading a report never loads the environment."""

FORMAT = "gridrl-evaluation/1"
TRACE_SERIES = (  # per-step system series of the trace, in the schema's order
    "demand_mw",
    "wind_mw",
    "solar_mw",
    "renewable_available_mw",
    "generation_cost_per_hour",
    "energy_not_served_mw",
    "max_loading",
)
