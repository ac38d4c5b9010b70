"""Evaluation of policies over the scenario suite, and the HTML report of the results.

The runner's names load on first use: writing a report from JSON files never imports the
environment (seconds of JAX start-up).
"""

from importlib import import_module

from gridrl.evaluate.report import read_training_log, write_report
from gridrl.evaluate.schema import ReportError, read_evaluation

_RUNNER_NAMES = ("BASELINES", "EvaluationError", "evaluate", "write_json")

__all__ = [*_RUNNER_NAMES, "ReportError", "read_evaluation", "read_training_log", "write_report"]


def __getattr__(name: str):
    if name in _RUNNER_NAMES:
        return getattr(import_module("gridrl.evaluate.runner"), name)
    raise AttributeError(f"module 'gridrl.evaluate' has no attribute {name!r}")
