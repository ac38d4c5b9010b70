"""The network map of the evaluation report: buses placed by a deterministic graph layout,
coloured by region, and branches coloured by their loading at one moment."""

from __future__ import annotations

import matplotlib as mpl
import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap, LinearSegmentedColormap, Normalize

from gridrl.cases import Grid

# One scale for every map, so that maps compare: 0 to 120 % of the rating, light blue (idle) to red
# at the rating and dark red beyond it, never a colour that fades into the white page.
LOADING_NORM = Normalize(0.0, 1.2)
LOADING_COLORMAP: Colormap = LinearSegmentedColormap.from_list(
    "gridrl_loading",
    [(0.0, "#c6d6e6"), (0.5, "#6f94c0"), (0.67, "#f1a340"), (0.83, "#d7191c"), (1.0, "#5a0012")],
).with_extremes(bad="black")  # a loading the evaluation could not give (null)
OUT_OF_SERVICE_COLOR = "0.6"
REGION_COLORS = mpl.colormaps["Dark2"].colors


def network_layout(grid: Grid) -> np.ndarray:
    """[n_bus, 2] positions of the buses: the Kamada-Kawai layout of the case's in-service
    branches, which starts from networkx's circular layout, so a case always gets the same map;
    turned to lie along its longest extent, so that it fills a landscape panel."""
    graph = nx.Graph()
    graph.add_nodes_from(range(grid.n_bus))
    on = np.asarray(grid.branch_status, bool)
    graph.add_edges_from(
        zip(np.asarray(grid.f_bus)[on].tolist(), np.asarray(grid.t_bus)[on].tolist(), strict=True)
    )
    positions = nx.kamada_kawai_layout(graph)
    layout = np.array([positions[bus] for bus in range(grid.n_bus)], dtype=float)
    centred = layout - layout.mean(axis=0)
    axes = np.linalg.svd(centred, full_matrices=False)[2]
    turned = centred @ axes.T
    # An SVD axis has no set sign: fix it by the first bus, so the map never flips.
    return turned * np.where(turned[0] > 0, -1.0, 1.0)


def branch_labels(grid: Grid) -> list[str]:
    """ "from_bus-to_bus" per branch with the case's bus numbers (the evaluation JSON's labels)."""
    return [
        f"{grid.bus_ids[int(f)]}-{grid.bus_ids[int(t)]}"
        for f, t in zip(np.asarray(grid.f_bus), np.asarray(grid.t_bus), strict=True)
    ]


def draw_network_map(
    ax: Axes,
    grid: Grid,
    layout: np.ndarray,
    loading: np.ndarray,
    in_service: np.ndarray,
    labelled: int = 5,
) -> None:
    """Draw the grid on `ax`: in-service branches coloured by `loading` (|flow| / rating) on
    LOADING_NORM / LOADING_COLORMAP and drawn wider the more loaded they are, out-of-service
    branches grey and dashed, buses as dots coloured by region, and the `labelled` most loaded
    branches named."""
    loading = np.asarray(loading, float)
    in_service = np.asarray(in_service, bool)
    ends = np.stack([layout[np.asarray(grid.f_bus)], layout[np.asarray(grid.t_bus)]], axis=1)
    ax.add_collection(
        LineCollection(
            ends[~in_service], colors=OUT_OF_SERVICE_COLOR, linewidths=1.2, linestyles="--"
        )
    )
    # Draw the most loaded last, so that they stay visible where branches cross.
    known = np.nan_to_num(loading, nan=-1.0)
    order = np.flatnonzero(in_service)[np.argsort(known[in_service], kind="stable")]
    ax.add_collection(
        LineCollection(
            ends[order],
            colors=LOADING_COLORMAP(LOADING_NORM(loading[order])),
            linewidths=0.8 + 2.2 * np.clip(known[order], 0.0, 1.2),
        )
    )
    region = np.asarray(grid.region)
    ax.scatter(
        layout[:, 0],
        layout[:, 1],
        s=14,
        c=[REGION_COLORS[r % len(REGION_COLORS)] for r in region],
        edgecolors="black",
        linewidths=0.4,
        zorder=3,
    )
    labels = branch_labels(grid)
    for k in order[::-1][:labelled]:
        if known[k] < 0:
            break
        x, y = ends[k].mean(axis=0)
        ax.annotate(
            f"{labels[k]}\n{100 * loading[k]:.0f} %",
            (x, y),
            fontsize=7,
            ha="center",
            va="center",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.5", "alpha": 0.85},
        )
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_axis_off()
