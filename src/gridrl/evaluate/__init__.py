"""Evaluation of policies over the scenario suite, and the HTML report of the results."""

from gridrl.evaluate.report import ReportError, read_evaluation, read_training_log, write_report
from gridrl.evaluate.runner import BASELINES, EvaluationError, evaluate, write_json

__all__ = [
    "BASELINES",
    "EvaluationError",
    "ReportError",
    "evaluate",
    "read_evaluation",
    "read_training_log",
    "write_json",
    "write_report",
]
