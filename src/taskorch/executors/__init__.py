"""Executors: supervised runs of coding CLIs (Claude Code, custom command templates)."""
