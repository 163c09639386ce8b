"""The documentation as tests: every python block of README.md and docs/*.md runs (test_docs.py),
and docs/errors.md's exception table is checked row by row (test_errors_table.py)."""
