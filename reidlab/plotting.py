"""The figures the library returns: matplotlib figures that show themselves wherever a notebook displays them.

reidlab builds figures with matplotlib's object API (no global pyplot state) and returns them. A bare
``matplotlib.figure.Figure`` only renders in a notebook once pyplot's inline backend has registered its
display formatter, which happens when a cell first draws with pyplot: before that, a cell ending in a
library figure showed only ``<Figure size 960x720 with 24 Axes>``. :class:`Figure` renders itself as a PNG
(IPython's ``_repr_png_`` protocol), so it shows in any cell order and any front end, with or without pyplot.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure as _MatplotlibFigure

__all__ = ["Figure", "figure_png"]


def figure_png(fig: _MatplotlibFigure, *, dpi: int = 80, tight: bool = False) -> bytes:
    """``fig`` rendered as PNG bytes (widgets: ``ipywidgets.Image.value``, an output's ``image/png``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    return buffer.getvalue()


class Figure(_MatplotlibFigure):
    """A ``matplotlib.figure.Figure`` that IPython displays as a PNG image.

    Use it as matplotlib's (``Figure(figsize=..., layout="constrained")``, ``fig.add_subplot``...). Where
    pyplot's inline backend is active, its own formatter (registered for every matplotlib figure) draws it;
    elsewhere :meth:`_repr_png_` does.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self, dpi=100, tight=True)
