"""taskorch: a task orchestration server for AI coding work, spoken to over MCP."""

__version__ = "0.1.0"

__all__ = ["__version__"]
