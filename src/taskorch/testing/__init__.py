"""Fakes and helpers for testing code that uses taskorch, held to the same contract suites as
the real parts they stand in for. Nothing here needs pytest. See docs/testing.md.
"""

from taskorch.testing.clock import FakeClock
from taskorch.testing.executor import FakeExecutor, Script, event
from taskorch.testing.gateway import FakeCall, FakeGateway, Gate, Handler, Outcome, echo
from taskorch.testing.orchestrator import InMemory, in_memory_orchestrator, orchestrator_for_tests
from taskorch.testing.peer import PeerProbe, build_peer, expand_markers, stdio_peer
from taskorch.testing.serving import free_port, serve_sse, serve_streamable_http

__all__ = [
    "FakeCall",
    "FakeClock",
    "FakeExecutor",
    "FakeGateway",
    "Gate",
    "Handler",
    "InMemory",
    "Outcome",
    "PeerProbe",
    "Script",
    "build_peer",
    "echo",
    "event",
    "expand_markers",
    "free_port",
    "in_memory_orchestrator",
    "orchestrator_for_tests",
    "serve_sse",
    "serve_streamable_http",
    "stdio_peer",
]
