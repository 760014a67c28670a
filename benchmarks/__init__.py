"""The training-speed benchmark (``python -m benchmarks.bench --help``); see README.md here."""
