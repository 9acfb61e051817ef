"""Measurement: what the suites compute (scoring, estimates with intervals, paired
comparisons, latency, overfitting rules, the lm-eval bridge) and the metric catalogue."""
