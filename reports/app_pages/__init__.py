"""Pages of the dashboard, each run by ``st.navigation`` from ``reports/app.py``."""
