"""Planners: turn a request into plan steps (the caller's own steps; Claude Code later)."""
