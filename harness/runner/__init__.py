"""The experiment runner: the session (options, runs, recording), the pytest plugin that
drives it, the SQLite store, provenance and the terminal summary."""
