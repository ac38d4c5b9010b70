"""Markdown tables of a folder of evaluation documents (docs/results.md), and the bar's verdict.

    python scripts/results_tables.py results/published/dc-seed0 [--candidate pretrained]

Prints one table per scenario (every policy of the folder: cost, gap to SCED, energy not served,
overload branch-steps, survival) and, with `--candidate`, the bar's checks of that policy against
SCED and the heuristics (gridrl.evaluate.bar). Exits 1 if the candidate misses the bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gridrl.evaluate.bar import bar_checks

COLUMNS = (
    ("cost ($/h)", "operating_cost_per_hour", "{:,.0f}"),
    ("gap vs SCED", "cost_gap_vs_sced", "{:+.1%}"),
    ("ENS (MWh)", "energy_not_served_mwh", "{:,.1f}"),
    ("overload steps", "overload_steps", "{:.2f}"),
    ("survival", "survival_rate", "{:.0%}"),
    ("N-1 secure", "n1_secure_fraction", "{:.0%}"),
)


def _cell(value, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _with_gap(result: dict, sced: dict | None) -> dict:
    """The result with its cost gap to SCED's on the same episodes (for a document evaluated
    without the SCED reference, `--no-sced-reference`)."""
    if result.get("cost_gap_vs_sced") is not None or sced is None:
        return result
    gap = result["operating_cost_per_hour"] / sced["operating_cost_per_hour"] - 1.0
    return result | {"cost_gap_vs_sced": gap}


def scenario_tables(documents: dict[str, dict]) -> str:
    first = next(iter(documents.values()))
    sced = documents.get("sced")
    lines = []
    for scenario in first["scenarios"]:
        lines += [f"#### {scenario}", ""]
        lines.append("| policy | " + " | ".join(c[0] for c in COLUMNS) + " |")
        lines.append("| --- |" + " ---: |" * len(COLUMNS))
        for name, document in documents.items():
            result = document["scenarios"].get(scenario)
            if result is not None:
                result = _with_gap(result, sced and sced["scenarios"].get(scenario))
                cells = (_cell(result.get(key), fmt) for _, key, fmt in COLUMNS)
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def verdict_table(candidate: dict, baselines: dict[str, dict]) -> tuple[str, bool]:
    checks = bar_checks(candidate, baselines)
    lines = ["| scenario | check | passed | numbers |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {c.scenario} | {c.name} | {'yes' if c.passed else '**no**'} | {c.detail} |"
        for c in checks
    ]
    return "\n".join(lines), all(c.passed for c in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--candidate", help="the policy whose bar to check (its JSON's name)")
    args = parser.parse_args(argv)
    documents = {
        json.loads(p.read_text())["policy"]: json.loads(p.read_text())
        for p in sorted(args.folder.glob("*.json"))
    }
    if not documents:
        print(f"{args.folder}: no evaluation documents", file=sys.stderr)
        return 2
    first = next(iter(documents.values()))
    print(
        f"{first['episodes']} episodes per scenario, seed {first['seed']}, "
        f"{first['physics'].upper()} physics, {first['episode_steps']} steps\n"
    )
    print(scenario_tables(documents))
    if args.candidate:
        baselines = {n: d for n, d in documents.items() if n != args.candidate}
        table, passed = verdict_table(documents[args.candidate], baselines)
        print(table)
        print(f"\nthe bar: {'cleared' if passed else 'not cleared'}")
        return 0 if passed else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
