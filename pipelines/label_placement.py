"""Point labels that neither overlap each other, nor cover a marker, nor leave the axes.

A greedy search in display space (no extra dependency): each label tries offsets around its point, nearest
first, and takes the first whose text box is inside the axes and clear of every marker and every label
placed before it; a label set away from its point gets a thin leader line. When nothing fits (a crowded
plot), the candidate with the least overlap is taken and the text is clipped to the axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

RADII = (7, 14, 24, 36, 52)  # offsets tried, in points, nearest first
DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
MARKER_HALF_SIZE = 7.0  # pixels: the box kept clear around every point
LEADER_FROM = 14  # offsets at least this far (points) get a leader line


def _alignment(dx: int, dy: int) -> tuple[str, str]:
    return ({1: "left", 0: "center", -1: "right"}[dx], {1: "bottom", 0: "center", -1: "top"}[dy])


def text_box(label: Annotation, renderer) -> Bbox:
    """The label's text alone (an annotation's own extent includes its leader line)."""
    label.update_positions(renderer)  # the text's place follows its offset only once updated
    return Text.get_window_extent(label, renderer)


def _overlap(box: Bbox, others: Sequence[Bbox]) -> float:
    total = 0.0
    for other in others:
        width = min(box.x1, other.x1) - max(box.x0, other.x0)
        height = min(box.y1, other.y1) - max(box.y0, other.y0)
        if width > 0 and height > 0:
            total += width * height
    return total


def _outside(box: Bbox, frame: Bbox) -> float:
    """The area of ``box`` beyond ``frame``."""
    inside_w = max(0.0, min(box.x1, frame.x1) - max(box.x0, frame.x0))
    inside_h = max(0.0, min(box.y1, frame.y1) - max(box.y0, frame.y0))
    return box.width * box.height - inside_w * inside_h


def place_labels(axes, anchors: Sequence[tuple[float, float]], texts: Sequence[str], colours: Sequence[str],
                 fontsize: float = 7, obstacles: Sequence[tuple[float, float]] = ()) -> list[Annotation]:
    """Annotate ``anchors`` (data coordinates) with ``texts``; ``obstacles`` are further points to keep
    clear (markers that carry no label). Call after the axes' limits are final."""
    figure = axes.figure
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    points = np.asarray([*anchors, *obstacles], dtype=float).reshape(-1, 2)
    pixels = axes.transData.transform(points) if len(points) else np.zeros((0, 2))
    taken = [Bbox.from_extents(x - MARKER_HALF_SIZE, y - MARKER_HALF_SIZE, x + MARKER_HALF_SIZE, y + MARKER_HALF_SIZE)
             for x, y in pixels]
    placed = []
    for anchor, text, colour in zip(anchors, texts, colours):
        best = None
        for radius in RADII:
            for dx, dy in DIRECTIONS:
                ha, va = _alignment(dx, dy)
                label = axes.annotate(text, anchor, textcoords="offset points", xytext=(dx * radius, dy * radius),
                                      ha=ha, va=va, fontsize=fontsize, color=colour)
                box = text_box(label, renderer)
                cost = _overlap(box, taken) + 10 * _outside(box, frame)
                label.remove()
                if best is None or cost < best[0]:
                    best = (cost, radius, dx, dy)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        cost, radius, dx, dy = best
        ha, va = _alignment(dx, dy)
        leader = dict(arrowstyle="-", color=colour, linewidth=0.5, shrinkA=0, shrinkB=2) if radius >= LEADER_FROM else None
        label = axes.annotate(text, anchor, textcoords="offset points", xytext=(dx * radius, dy * radius), ha=ha,
                              va=va, fontsize=fontsize, color=colour, arrowprops=leader, annotation_clip=True)
        label.set_clip_on(cost > 0)  # only a label that could not be placed clear is cut at the axes
        taken.append(text_box(label, renderer).padded(1))  # a pixel apart: touching reads as one label
        placed.append(label)
    return placed
