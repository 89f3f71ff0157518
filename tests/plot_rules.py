"""Legibility rules for the figures seqops logs: draw a figure as MLflow saves it and list what is wrong.

``violations(figure)`` draws the figure with the Agg renderer, records every piece of text actually
drawn (tick labels of ticks outside the view are never drawn, so they are never judged) and checks:

1. every visible, non-empty text lies entirely inside the figure (nothing is cut off in the PNG);
2. every text has a WCAG contrast ratio of at least 4.5 against what lies under its centre: the
   colour an image (``imshow``) or mesh (``pcolormesh``) gives that point through its colour map and
   norm, otherwise the axes' or the figure's face colour;
3. no two texts overlap (tick labels of one axis among them), judged on their rotated boxes;
4. every font is at least 6 pt.

Each violation is one human-readable line naming the text, so a failed assertion says what is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text
MIN_POINTS = 6.0
TOLERANCE_PX = 1.0  # anti-aliasing and rounding: a pixel of slack on every geometric rule


def violations(figure: Figure) -> list[str]:
    """Every legibility rule the figure breaks, one line each (empty when it reads well).

    Args:
        figure: A matplotlib figure as a task's ``diagnostics`` hook returns it.

    Returns:
        Human-readable violations, e.g. ``text '12' (axes 'true x predicted'): contrast 1.0 < 4.5``.
    """
    texts, renderer = drawn_texts(figure)
    boxes = {text: text.get_window_extent(renderer) for text in texts}
    known = roles(figure)
    role = {text: known.get(id(text), ("text", text.axes)) for text in texts}
    found = []
    for text in texts:
        name = describe(text, role[text])
        box = boxes[text]
        page = figure.bbox.padded(TOLERANCE_PX)
        if box.x0 < page.x0 or box.y0 < page.y0 or box.x1 > page.x1 or box.y1 > page.y1:
            found.append(
                f"{name}: leaves the figure (text box {fmt(box.extents)}, figure {fmt(figure.bbox.extents)})"
            )
        if text.get_fontsize() < MIN_POINTS:
            found.append(f"{name}: font {text.get_fontsize():.1f} pt < {MIN_POINTS} pt")
        ratio = contrast(
            rgba_over_white(text.get_color(), text.get_alpha()), background(text, role[text][1], box)
        )
        if ratio < MIN_CONTRAST:
            found.append(f"{name}: contrast {ratio:.2f} < {MIN_CONTRAST} against its background")
    corners = {text: rotated_corners(text, boxes[text], renderer) for text in texts}
    for index, first in enumerate(texts):
        for second in texts[index + 1 :]:
            if polygons_overlap(corners[first], corners[second]):
                found.append(f"{describe(first, role[first])} overlaps {describe(second, role[second])}")
    return found


def drawn_texts(figure: Figure) -> tuple[list[Text], Any]:
    """Draw the figure with Agg and return the visible, non-empty texts in drawing order, and the renderer."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    drawn: dict[int, Text] = {}
    original = renderer.draw_text

    def record(
        gc: Any, x: float, y: float, s: str, prop: Any, angle: float, *args: Any, **kwargs: Any
    ) -> Any:
        text = kwargs.get("mtext")
        if isinstance(text, Text) and s.strip():
            drawn.setdefault(id(text), text)
        return original(gc, x, y, s, prop, angle, *args, **kwargs)

    renderer.draw_text = record
    try:
        figure.draw(renderer)
    finally:
        del renderer.draw_text  # the instance attribute shadowed the class's method
    return [t for t in drawn.values() if t.get_visible() and t.get_text().strip()], renderer


def roles(figure: Figure) -> dict[int, tuple[str, Axes | None]]:
    """What each text of the figure's axes is (``x tick label``, ``axes title``...) and its axes, by id."""
    found: dict[int, tuple[str, Axes | None]] = {}
    for axes in figure.axes:
        for text in axes.texts:
            found[id(text)] = ("annotation", axes)
        for name, axis in (("x", axes.xaxis), ("y", axes.yaxis)):
            for text in axis.get_ticklabels() + axis.get_ticklabels(minor=True):
                found[id(text)] = (f"{name} tick label", axes)
            found[id(axis.label)] = (f"{name} axis label", axes)
        for text in (axes.title, getattr(axes, "_left_title", None), getattr(axes, "_right_title", None)):
            found[id(text)] = ("axes title", axes)
    return found


def describe(text: Text, role: tuple[str, Axes | None]) -> str:
    """``x tick label 'All clear' (axes 'confusion')``: what the text is and where it sits."""
    kind, axes = role
    name = (axes.get_title() or axes.get_label()) if axes is not None else ""
    where = f" (axes {name!r})" if name else ""
    return f"{kind} {text.get_text()!r}{where}"


def fmt(values: Any) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in values) + ")"


def rgba_over_white(colour: Any, alpha: float | None = None) -> np.ndarray:
    """The opaque RGB a colour shows on a white page (MLflow's PNGs are viewed on white)."""
    rgba = np.array(to_rgba(colour, alpha))
    return rgba[:3] * rgba[3] + (1 - rgba[3])


def luminance(rgb: np.ndarray) -> float:
    """WCAG relative luminance of an sRGB colour in [0, 1]."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def contrast(first: np.ndarray, second: np.ndarray) -> float:
    """WCAG contrast ratio of two opaque colours, 1 (none) to 21 (black on white)."""
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def background(text: Text, axes: Axes | None, box: Any) -> np.ndarray:
    """The colour under the text's centre: an image or mesh cell, else the axes' or figure's face."""
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    figure_face = rgba_over_white(text.figure.get_facecolor())
    own = [axes] if axes is not None else []
    for candidate in own + list(reversed(text.figure.axes)):  # its own axes first, then the topmost
        if not candidate.get_visible() or not candidate.bbox.contains(*centre):
            continue
        colour = mapped_colour(candidate, centre)
        if colour is not None:
            return colour
        face = np.array(to_rgba(candidate.get_facecolor()))
        return face[:3] * face[3] + figure_face * (1 - face[3])
    return figure_face


def mapped_colour(axes: Axes, centre: np.ndarray) -> np.ndarray | None:
    """The colour an image or mesh of ``axes`` gives the display point ``centre``, if one covers it."""
    x, y = axes.transData.inverted().transform(centre)
    for image in reversed(axes.images):
        data = np.ma.asarray(image.get_array())
        left, right, bottom, top = image.get_extent()
        if image.origin == "upper":
            bottom, top = top, bottom  # row 0 at the top edge
        column = int(np.floor((x - left) / (right - left) * data.shape[1]))
        row = int(np.floor((y - bottom) / (top - bottom) * data.shape[0]))
        if 0 <= row < data.shape[0] and 0 <= column < data.shape[1]:
            value = data[row, column]
            rgba = image.to_rgba(value) if data.ndim == 2 else to_rgba(value)
            return rgba_over_white(rgba, image.get_alpha())
    for mesh in (c for c in reversed(axes.collections) if isinstance(c, QuadMesh)):
        coordinates = mesh.get_coordinates()
        columns, rows = coordinates[0, :, 0], coordinates[:, 0, 1]
        column, row = cell_index(columns, x), cell_index(rows, y)
        if column is not None and row is not None:
            values = np.ma.asarray(mesh.get_array()).reshape(len(rows) - 1, len(columns) - 1)
            return rgba_over_white(mesh.to_rgba(values[row, column]), mesh.get_alpha())
    return None


def cell_index(edges: np.ndarray, value: float) -> int | None:
    """The cell of monotonic ``edges`` that holds ``value``, or None outside them."""
    ascending = edges if edges[0] <= edges[-1] else edges[::-1]
    index = int(np.searchsorted(ascending, value, side="right")) - 1
    if not 0 <= index < len(edges) - 1:
        return None
    return index if edges[0] <= edges[-1] else len(edges) - 2 - index


def rotated_corners(text: Text, box: Any, renderer: Any) -> np.ndarray:
    """The four corners of the text's own (rotated) box, shrunk by the tolerance, in display pixels.

    A rotated text's window extent is the axis-aligned box around it, far larger than the text; the
    rotated box has the unrotated size and the same centre.
    """
    angle = text.get_rotation()
    if angle % 90 == 0:
        width, height = (box.width, box.height) if angle % 180 == 0 else (box.height, box.width)
    else:
        text.set_rotation(0)
        flat = text.get_window_extent(renderer)
        text.set_rotation(angle)
        width, height = flat.width, flat.height
    half = np.array([max(width / 2 - TOLERANCE_PX, 0), max(height / 2 - TOLERANCE_PX, 0)])
    unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    radians = np.deg2rad(angle)
    rotation = np.array([[np.cos(radians), -np.sin(radians)], [np.sin(radians), np.cos(radians)]])
    return unit @ rotation.T + np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])


def polygons_overlap(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two convex polygons intersect (separating-axis test on both polygons' edge normals)."""
    for polygon in (first, second):
        edges = np.roll(polygon, -1, axis=0) - polygon
        for normal in np.stack([-edges[:, 1], edges[:, 0]], axis=1):
            if not normal.any():
                continue
            a, b = first @ normal, second @ normal
            if a.max() <= b.min() or b.max() <= a.min():
                return False
    return True
