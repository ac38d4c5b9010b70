"""Ablation: hmappo against hmappo-noattn, mappo and ppo at the same budget, several training seeds.

    python scripts/ablation.py --total-steps 150000 --seeds 101,102,103 --out runs/ablation \
        --results results/published/ablation

Each (algorithm, seed) trains the `quick` preset on the scenario mix from scratch (no warm start:
the comparison is of what each algorithm learns by itself) into OUT/<algorithm>-s<seed>; a run
already finished is skipped and an interrupted one resumed, so the script can be run again after
a stop. Then every final policy is evaluated on EPISODES held-out episodes of each scenario (seed
`--eval-seed`, never a training seed), and RESULTS gets `summary.json` (per algorithm: the mean,
min and max over seeds of each scenario's headline numbers, and the learning curves' points) and
`curves.png` (mean and range over seeds of the training reward, the energy not served and the
operating cost against env-steps) and `table.md` (the evaluation table of docs/results.md).
`--render-only` writes the figure and the table again from an existing `summary.json`.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from gridrl.evaluate.runner import evaluate, release_compiled
from gridrl.io import atomic_write_bytes, write_json
from gridrl.machine import use_compilation_cache
from gridrl.train import preset, train_run
from gridrl.train.config import ALGORITHMS
from gridrl.train.logging import read_metrics

CURVES = (  # metrics.jsonl column, title
    ("reward_mean", "training reward per agent-step"),
    ("energy_not_served_mw", "energy not served (MW, rollout mean)"),
    ("operating_cost", "operating cost ($/h, rollout mean)"),
)
HEADLINE = ("operating_cost_per_hour", "energy_not_served_mwh", "overload_steps", "survival_rate")
CELL_FORMATS = ("{:,.0f}", "{:,.1f}", "{:.2f}", "{:.0%}")  # per HEADLINE entry


def train_all(args) -> dict[str, list[Path]]:
    runs: dict[str, list[Path]] = {}
    for algorithm in args.algorithms:
        for seed in args.seeds:
            run_dir = args.out / f"{algorithm}-s{seed}"
            config = preset("quick").override(
                {
                    "algorithm": algorithm,
                    "scenario": "mix",
                    "seed": seed,
                    "total_steps": args.total_steps,
                    "eval_every": 0,
                }
            )
            finished = (run_dir / "checkpoints" / str(config.num_updates)).exists()
            if not finished:
                resume = (run_dir / "config.json").exists()
                print(f"training {run_dir} ({'resumed' if resume else 'new'})", flush=True)
                train_run(None if resume else config, run_dir, resume=resume)
                release_compiled()  # twelve runs' programs would exhaust the memory maps
            runs.setdefault(algorithm, []).append(run_dir)
    return runs


def curves(run_dirs: list[Path]) -> dict[str, dict[str, list[float]]]:
    """Per curve: env-steps, and the mean, min and max over the runs."""
    logs = [[r for r in read_metrics(d) if "reward_mean" in r] for d in run_dirs]
    steps = [row["step"] for row in logs[0]]
    out = {}
    for key, _ in CURVES:
        values = np.asarray([[row[key] for row in log[: len(steps)]] for log in logs], float)
        out[key] = {
            "step": steps,
            "mean": values.mean(0).tolist(),
            "min": values.min(0).tolist(),
            "max": values.max(0).tolist(),
        }
    return out


def evaluations(args, runs: dict[str, list[Path]]) -> dict[str, dict]:
    table = {}
    for algorithm, run_dirs in runs.items():
        documents = [
            evaluate(d, "all", episodes=args.episodes, seed=args.eval_seed, sced_reference=False)
            for d in run_dirs
        ]
        release_compiled()
        table[algorithm] = {
            scenario: {
                key: {
                    "mean": float(np.mean([doc["scenarios"][scenario][key] for doc in documents])),
                    "min": float(np.min([doc["scenarios"][scenario][key] for doc in documents])),
                    "max": float(np.max([doc["scenarios"][scenario][key] for doc in documents])),
                }
                for key in HEADLINE
            }
            for scenario in documents[0]["scenarios"]
        }
    return table


def curves_figure(summary: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4))
    axes = figure.subplots(1, len(CURVES))
    for ax, (key, title) in zip(axes, CURVES, strict=True):
        for algorithm, entry in summary["algorithms"].items():
            curve = entry["curves"][key]
            line = ax.plot(curve["step"], curve["mean"], label=algorithm)[0]
            ax.fill_between(curve["step"], curve["min"], curve["max"], alpha=0.2,
                            color=line.get_color())  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env-steps")
    axes[0].legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    atomic_write_bytes(path, buffer.getvalue())


def summary_table(summary: dict) -> str:
    """Markdown: per scenario and algorithm, each headline number's mean over the training
    seeds and its range."""
    header = "| scenario | algorithm | cost ($/h) | ENS (MWh) | overload steps | survival |"
    lines = [header, "|---|---|---:|---:|---:|---:|"]
    algorithms = summary["algorithms"]
    for scenario in next(iter(algorithms.values()))["evaluation"]:
        for algorithm, entry in algorithms.items():
            numbers = entry["evaluation"][scenario]
            cells = [
                f"{fmt.format(numbers[key]['mean'])} "
                f"({fmt.format(numbers[key]['min'])}–{fmt.format(numbers[key]['max'])})"
                for key, fmt in zip(HEADLINE, CELL_FORMATS, strict=True)
            ]
            lines.append(f"| {scenario} | {algorithm} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def render(summary: dict, results: Path) -> None:
    curves_figure(summary, results / "curves.png")
    atomic_write_bytes(results / "table.md", summary_table(summary).encode())
    print(f"written: {results / 'curves.png'}, {results / 'table.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=150_000)
    parser.add_argument("--seeds", default="101,102,103")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--eval-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--results", type=Path, default=Path("results/published/ablation"))
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    if args.render_only:
        render(json.loads((args.results / "summary.json").read_text()), args.results)
        return
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.algorithms = args.algorithms.split(",")
    if args.eval_seed in args.seeds:
        parser.error("the evaluation seed must not be a training seed")
    use_compilation_cache()  # the seeds of one algorithm share its compiled programs
    runs = train_all(args)
    table = evaluations(args, runs)
    summary = {
        "total_steps": args.total_steps,
        "training_seeds": args.seeds,
        "evaluation": {"episodes": args.episodes, "seed": args.eval_seed, "physics": "dc"},
        "algorithms": {
            a: {
                "runs": [str(d) for d in runs[a]],
                "curves": curves(runs[a]),
                "evaluation": table[a],
            }
            for a in runs
        },
    }
    write_json(args.results / "summary.json", summary)
    print(f"written: {args.results / 'summary.json'}")
    render(summary, args.results)


if __name__ == "__main__":
    main()
