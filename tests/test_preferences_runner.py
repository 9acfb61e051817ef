"""The preference suite through the experiment runner, on the built-in prefs task."""

import sqlite3

import pytest

from tests.conftest import run_suites

pytestmark = pytest.mark.slow  # the runner end to end in subprocesses


def test_preference_suite_records_accuracy_win_rate_and_divergence(tiny_model_dir, tmp_path):
    result = run_suites([
        "--task=prefs", "--approach=zero-shot,dpo", "--budget=smoke", f"--model={tiny_model_dir}",
        "--results=r.db", "-k", "preferences", "--set", "dpo.max_length=512",
    ], tmp_path, env={"TUNEBENCH_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    db = sqlite3.connect(tmp_path / "r.db")
    metrics = {
        (approach, name): (value, low, high, n)
        for approach, name, value, low, high, n in db.execute(
            "SELECT r.approach, m.name, m.value, m.ci_low, m.ci_high, m.n FROM metrics m "
            "JOIN runs r ON r.id = m.run_id WHERE m.suite = 'preferences'")
    }
    for approach in ("zero-shot", "dpo"):
        for name in ("preference_accuracy", "implicit_reward_accuracy", "win_rate_vs_base",
                     "judge_reward", "kl_to_base"):
            value, low, high, n = metrics[(approach, name)]
            assert low <= value <= high and n > 0, (approach, name)
    # The base model against itself: every pair a tie, no divergence.
    assert metrics[("zero-shot", "win_rate_vs_base")][0] == 0.5
    assert metrics[("zero-shot", "implicit_reward_accuracy")][0] == 0.5
    assert abs(metrics[("zero-shot", "kl_to_base")][0]) < 1e-3
    flaws = {name for _, name in metrics if name.startswith("preference_accuracy[")}
    assert len(flaws) >= 3, flaws
    parts = dict(db.execute("SELECT suite, COUNT(*) FROM examples GROUP BY suite"))
    eval_items = metrics[("dpo", "preference_accuracy")][3]
    assert parts["preferences.pairs"] == parts["preferences.versus_base"] == 2 * eval_items
    assert "reward_model_accuracy" not in {name for _, name in metrics}  # no rlhf run here
