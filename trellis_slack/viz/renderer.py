"""The visualization surface the bot imports: ``Renderer`` (the chart workers) and what it returns.

The pure part (validating a payload into a chart to draw, a table or a note) is ``viz.render``;
the values it returns are in ``viz.rendered``; the worker processes are ``viz.pool``.
"""

from __future__ import annotations

from trellis_slack.viz.native import CHARTS_MODES, ChartsMode
from trellis_slack.viz.pool import IDLE_EXIT, Renderer
from trellis_slack.viz.render import draw_png, prepare, render_sync
from trellis_slack.viz.rendered import (
    ChartImage,
    ChartJob,
    NativeChart,
    Rendered,
    TableMessage,
    VisualizationNote,
)

__all__ = [
    "CHARTS_MODES",
    "IDLE_EXIT",
    "ChartImage",
    "ChartJob",
    "ChartsMode",
    "NativeChart",
    "Rendered",
    "Renderer",
    "TableMessage",
    "VisualizationNote",
    "draw_png",
    "prepare",
    "render_sync",
]
