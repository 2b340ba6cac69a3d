#!/usr/bin/env bash
# A long random run of the MCP fuzz suite (tests/server/test_fuzz_mcp.py): 20,000 calls by default,
# a new seed each run (printed by Hypothesis on failure). Extra arguments go to pytest, e.g.
#   scripts/fuzz_mcp.sh --hypothesis-seed=1234
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pytest tests/server/test_fuzz_mcp.py -q -p no:cacheprovider --hypothesis-profile long \
    --hypothesis-show-statistics "$@"
