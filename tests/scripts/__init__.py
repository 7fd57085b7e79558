"""Scripts that tests run in subprocesses (`python -m tests.scripts.NAME`); not collected."""
