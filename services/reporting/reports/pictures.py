"""Pictures for the report page: matplotlib figures as SVG."""

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported where a picture is drawn, not by every process that imports this
    from matplotlib.figure import Figure


def svg_text(fig: "Figure") -> str:
    """The figure as SVG with its text kept as text (searchable, selectable, smaller than glyph outlines).

    Figures are made with `Figure(...)`, never through pyplot's global state, so they may be drawn in a worker
    thread off the event loop."""
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out, format="svg")
    return out.getvalue()
