"""Root conftest: loads the tunebench experiment runner (options, fixtures, summary)."""

pytest_plugins = ["harness.runner.pytest_plugin"]
