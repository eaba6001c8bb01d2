"""Tests of issue 11: Markdown plans, provenance, CI examples, pre-commit hook, status page."""
