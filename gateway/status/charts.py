"""The status page's three charts, drawn on the server as inline SVG: no script, no CDN.

Each chart is a line over the timeline's minutes (oldest left, the current minute right), scaled
to its own maximum. A minute without carrier calls has no latency: the line breaks there rather
than drawing a misleading zero. The template adds a title, a description and a caption with the
latest values, so the numbers are readable without seeing the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.status.timeline import Minute

__all__ = ["HEIGHT", "WIDTH", "Chart", "charts"]

WIDTH, HEIGHT = 300, 80  # the SVG's viewBox; CSS scales it to the card
_TOP = 4  # room for the stroke at the maximum


@dataclass(frozen=True, slots=True)
class Chart:
    key: str  # the element id's suffix, for CSS and tests
    title: str
    description: str
    unit: str
    path: str  # the SVG path ("M x y L x y …"); empty when there is no value at all
    points: tuple[tuple[float, float], ...]  # one per minute that has a value
    peak: str  # the top of the scale, as text
    latest: str  # the current minute's value, as text
    total: str  # over the whole window, as text
    summary: str  # the description with the numbers: the SVG's <desc>, what a screen reader hears


def _line(values: Sequence[float | None], peak: float) -> tuple[str, tuple[tuple[float, float], ...]]:
    """SVG path and points; a ``None`` breaks the line (the next value starts a new segment)."""
    step = WIDTH / max(len(values) - 1, 1)
    scale = (HEIGHT - _TOP) / peak if peak else 0.0
    commands: list[str] = []
    points: list[tuple[float, float]] = []
    pen_down = False
    for index, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x, y = round(index * step, 1), round(HEIGHT - value * scale, 1)
        commands.append(f"{'L' if pen_down else 'M'}{x} {y}")
        points.append((x, y))
        pen_down = True
    return " ".join(commands), tuple(points)


def _chart(
    key: str, title: str, description: str, unit: str, values: Sequence[float | None], latest: str, total: str
) -> Chart:
    peak = max((value for value in values if value is not None), default=0.0)
    path, points = _line(values, peak)
    top = f"{peak:.1f}".removesuffix(".0")
    summary = f"{description};当前分钟 {latest},30 分钟合计/平均 {total},纵轴最大 {top} {unit}。"
    return Chart(key, title, description, unit, path, points, top, latest, total, summary)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def charts(minutes: Sequence[Minute]) -> list[Chart]:
    """Requests, server errors and average carrier latency per minute, oldest first."""
    now = minutes[-1]
    calls = sum(m.carrier_calls for m in minutes)
    average = sum((m.carrier_avg_ms or 0) * m.carrier_calls for m in minutes) / calls if calls else None
    span = f"最近 {len(minutes)} 分钟"
    return [
        _chart(
            "requests",
            "请求数",
            f"{span}每分钟处理的 HTTP 请求数",
            "次/分钟",
            [m.requests for m in minutes],
            f"{now.requests} 次",
            f"{sum(m.requests for m in minutes)} 次",
        ),
        _chart(
            "errors",
            "服务器错误",
            f"{span}每分钟以 5xx 应答的请求数",
            "次/分钟",
            [m.errors for m in minutes],
            f"{now.errors} 次",
            f"{sum(m.errors for m in minutes)} 次",
        ),
        _chart(
            "latency",
            "服务商延迟",
            f"{span}每分钟服务商调用的平均延迟(无调用的分钟留空)",
            "ms",
            [m.carrier_avg_ms for m in minutes],
            _ms(now.carrier_avg_ms),
            _ms(average),
        ),
    ]
