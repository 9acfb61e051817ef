"""The tunebench dashboard: ``streamlit run reports/app.py -- --db results/tunebench.db``.

Entry file of a Streamlit multipage app built with ``st.navigation`` and ``st.Page``
(Streamlit's multipage docs, "Define multipage apps with st.Page and st.navigation"); the
pages live in ``reports/app_pages/`` (not ``pages/``, which Streamlit would pick up on its
own). The database is opened read-only; see docs/dashboard.md. Bind it to this machine with
``--server.address localhost`` (``make dashboard`` and ``python -m reports`` do).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only reports/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from reports.ui import db_path  # noqa: E402

PAGES = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="tunebench", layout="wide")
navigation = st.navigation({
    "Compare": [
        st.Page(PAGES / "leaderboard.py", title="Leaderboard", default=True),
        st.Page(PAGES / "pareto.py", title="Pareto"),
        st.Page(PAGES / "sweeps.py", title="Sweeps"),
        st.Page(PAGES / "decision.py", title="Decision report"),
    ],
    "Inspect": [
        st.Page(PAGES / "curves.py", title="Curves"),
        st.Page(PAGES / "forgetting.py", title="Forgetting"),
        st.Page(PAGES / "latency.py", title="Latency and memory"),
        st.Page(PAGES / "examples.py", title="Examples"),
        st.Page(PAGES / "provenance.py", title="Provenance"),
        st.Page(PAGES / "data_quality.py", title="Data check"),
    ],
})
st.sidebar.caption(f"results database (read-only): `{db_path()}`")
try:
    navigation.run()
except sqlite3.DatabaseError as error:  # a damaged file, or not tunebench's schema
    st.error(f"Could not read `{db_path()}`: {error}. Is it a tunebench results database "
             "(the schema of harness/runner/store.py)?")
