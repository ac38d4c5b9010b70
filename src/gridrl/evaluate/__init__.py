"""Evaluation of policies over the scenario suite, and the HTML report of the results."""

from gridrl.evaluate.report import ReportError, read_evaluation, read_training_log, write_report

__all__ = ["ReportError", "read_evaluation", "read_training_log", "write_report"]
