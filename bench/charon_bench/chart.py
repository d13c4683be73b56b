"""latest.svg: throughput relative to SET ... PX, as grouped horizontal bars,
one group per command and a bar per pipeline depth. Drawn by the pinned
matplotlib (installed on first use), with the text kept as SVG text and
nothing random or dated in the file, so that the same rows give the same
bytes."""

from __future__ import annotations

import io
import math
import re

from .dependencies import pins, require
from .errors import BenchError
from .report import Row
from .workload import CLIENTS

PIPELINES = (1, 32)
COLORS = {1: "#4c78a8", 32: "#f58518"}
BASELINE = "SET key v PX 60000"
# The layout, in pixels (at 100 dpi): the width; the title block above the
# bars, a group's height, the legend's band below them; the label column, the
# room right of the bars for their values, the title's margin.
WIDTH, TOP, GROUP, BOTTOM, LEFT, RIGHT, MARGIN = 900, 92, 50, 60, 200, 80, 16
BAR = 0.28  # a bar's height, in groups
LIGHT, DARK = "#444444", "#222222"


def axis(values) -> tuple[float, float]:
    """The x axis's end and its tick step: the largest value (1×, the
    baseline, at least) rounded up to a quarter; ticks every quarter, every
    half past 2×."""
    end = math.ceil(max([1.0, *values]) * 4) / 4
    return end, 0.25 if end <= 2 else 0.5


def bar_id(name: str, pipeline: int) -> str:
    """The SVG id of a bar, e.g. bar-charon-rate-allow-new-p32."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"bar-{slug}-p{pipeline}"


def svg_chart(meta: dict, rows: list[Row]) -> str:
    """The chart of `rows` (their vs_set), titled with the run's `meta`."""
    require()
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if matplotlib.__version__ != pins()["matplotlib"]:
        raise BenchError(f"matplotlib {matplotlib.__version__} was imported, not the pinned "
                         f"{pins()['matplotlib']}")
    names = list(dict.fromkeys(row.name for row in rows))
    ratio = {(row.name, row.pipeline): row.vs_set for row in rows}
    end, step = axis(ratio.values())
    height = TOP + GROUP * len(names) + BOTTOM
    style = {"svg.fonttype": "none", "svg.hashsalt": "charon-bench",
             "font.family": "sans-serif", "font.size": 9}
    with matplotlib.rc_context(style):
        figure = Figure(figsize=(WIDTH / 100, height / 100), dpi=100, facecolor="white")
        axes = figure.add_axes((LEFT / WIDTH, BOTTOM / height,
                                (WIDTH - LEFT - RIGHT) / WIDTH, GROUP * len(names) / height))
        for group, name in enumerate(names):
            for slot, pipeline in enumerate(PIPELINES):
                value = ratio.get((name, pipeline))
                if value is None:
                    continue
                y = group - BAR / 2 - 0.02 + slot * (BAR + 0.04)
                bars = axes.barh(y, value, height=BAR, color=COLORS[pipeline])
                bars.patches[0].set_gid(bar_id(name, pipeline))
                axes.text(value + end / 150, y, f"{value:.2f}×", va="center", color=DARK)
        axes.axvline(1.0, color=DARK, linestyle=(0, (4, 3)), linewidth=1)
        axes.set_xlim(0, end)
        ticks = [i * step for i in range(int(round(end / step)) + 1)]
        axes.set_xticks(ticks, [f"{tick:g}×" for tick in ticks], color=LIGHT)
        axes.set_ylim(len(names) - 0.5, -0.5)  # the first command at the top
        axes.set_yticks(range(len(names)), names)
        axes.tick_params(length=0)
        axes.grid(axis="x", color="#e0e0e0")
        axes.set_axisbelow(True)
        for side in axes.spines.values():
            side.set_visible(False)
        legend = [Patch(color=COLORS[p], label=f"pipeline {p} (-P {p})") for p in PIPELINES]
        legend.append(Line2D([], [], color=DARK, linestyle=(0, (4, 3)), linewidth=1,
                             label=f"{BASELINE} = 1×"))
        axes.legend(handles=legend, loc="upper left", ncols=3, frameon=False,
                    bbox_to_anchor=(0, -26 / (GROUP * len(names))), borderaxespad=0,
                    handlelength=1.2, columnspacing=2.5)
        x = MARGIN / WIDTH
        figure.text(x, 1 - 24 / height, f"Charon: throughput relative to {BASELINE}",
                    fontsize=13, fontweight="bold", va="baseline")
        figure.text(x, 1 - 44 / height, f"{meta['server']}; {CLIENTS} clients, median of "
                    f"{meta['rounds']} rounds; {meta['date']}", color=LIGHT, va="baseline")
        figure.text(x, 1 - 62 / height, meta["machine_line"], color=LIGHT, va="baseline")
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue().decode()
