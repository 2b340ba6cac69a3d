"""Planners: turn a request into plan steps (the caller's own steps, or Claude Code's)."""
