"""The tunebench dashboard and static reports over a results database.

``reports.data`` loads (read-only SQLite, plain pandas), ``reports.analysis`` and
``reports.decision`` compute (pure functions), ``reports.charts`` draws (Altair), and
``reports.app`` with ``reports/app_pages/`` shows it all in Streamlit; ``reports.export``
writes the leaderboard and decision report as Markdown or HTML. See docs/dashboard.md.
"""
