"""The benchmark of issue 4: `uv run python -m tests.perf --help`.

Not a test suite (no file here starts with test_, so pytest collects nothing): it starts
todo-api, and optionally the FastAPI + SQLModel baseline, on one PostgreSQL, drives both with the
same HTTP load, and prints the ratios that issue 4 sets as targets.
"""
