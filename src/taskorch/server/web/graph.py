"""A plan's steps laid out as a graph for SVG: columns by depth, arrows along dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from taskorch.domain.plans import Plan

__all__ = ["Edge", "Graph", "Node", "plan_graph"]

NODE_W: Final = 168
NODE_H: Final = 46
GAP_X: Final = 64
GAP_Y: Final = 22
PAD: Final = 12


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    status: str
    kind: str
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    path: str  # SVG path data: numbers and commands only


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plan_graph(plan: Plan) -> Graph:
    """Depth of a step: 0 without dependencies, else one more than its deepest dependency."""
    by_id = {s.id: s for s in plan.steps}
    depth = {s.id: 0 for s in plan.steps}
    for _ in plan.steps:  # relax until stable: at most one pass per step (plans have no cycles)
        changed = False
        for step in plan.steps:
            deepest = max((depth[d] + 1 for d in step.depends_on if d in depth), default=0)
            if deepest != depth[step.id] and deepest < len(plan.steps):
                depth[step.id], changed = deepest, True
        if not changed:
            break
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for step in plan.steps:
        column = depth[step.id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        nodes[step.id] = Node(
            id=step.id,
            label=_short(step.id),
            status=step.status.value,
            kind=_short(step.target if step.kind.value == "mcp_tool" else "claude_code", 26),
            x=PAD + column * (NODE_W + GAP_X),
            y=PAD + row * (NODE_H + GAP_Y),
        )
    edges = []
    for step in plan.steps:
        for dep in step.depends_on:
            if dep not in nodes or dep not in by_id:
                continue
            a, b = nodes[dep], nodes[step.id]
            x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
            x2, y2 = b.x - 6, b.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(Edge(dep, step.id, f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    columns = max(depth.values(), default=0) + 1
    height_rows = max(rows.values(), default=1)
    return Graph(
        nodes=list(nodes.values()),
        edges=edges,
        width=2 * PAD + columns * NODE_W + (columns - 1) * GAP_X,
        height=2 * PAD + height_rows * NODE_H + (height_rows - 1) * GAP_Y,
    )
