"""Pictures for the report page: matplotlib figures as SVG."""

import io

import matplotlib
from matplotlib.figure import Figure


def svg_text(fig: Figure) -> str:
    """The figure as SVG with its text kept as text (searchable, selectable, smaller than glyph outlines).

    Figures are made with `Figure(...)`, never through pyplot's global state, so they may be drawn in a worker
    thread off the event loop."""
    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out, format="svg")
    return out.getvalue()
