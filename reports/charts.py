"""Altair charts of the dashboard (Vega-Lite specs; no Streamlit, so tests can inspect them).

Every chart shows the 95% CIs the store holds as error bars (Altair's layered
``mark_errorbar``/``mark_rule`` pattern). The Pareto chart follows PEFT's
``method_comparison`` app: any two metrics, the non-dominated candidates highlighted and
joined by the frontier line. The sweep charts plot a metric against a swept option
(``--sweep``), one line per sweep, and two metrics along each sweep, after the reward/KL
frontier of Rafailov et al. (2023, DPO, figure 2).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

alt.data_transformers.disable_max_rows()  # the pages cap their own data (LIMIT)

CANDIDATE = alt.Color("candidate:N", title="candidate")


def _with_ci(frame: pd.DataFrame, low: str = "ci_low", high: str = "ci_high") -> pd.DataFrame:
    out = frame.copy()
    out[low] = out[low].fillna(out["value"])
    out[high] = out[high].fillna(out["value"])
    return out


def bars_with_ci(frame: pd.DataFrame, title: str, *, metric_color: bool = False) -> alt.Chart:
    """Horizontal bars of ``value`` per ``candidate`` with CI whiskers; with
    ``metric_color`` one bar per (candidate, ``name``), side by side."""
    data = _with_ci(frame)
    y = alt.Y("candidate:N", sort=None, title=None, axis=alt.Axis(labelLimit=320))
    base = alt.Chart(data).encode(y=y)
    color = (alt.Color("name:N", title="metric") if metric_color
             else alt.Color("candidate:N", legend=None))
    offset = {"yOffset": alt.YOffset("name:N")} if metric_color else {}
    tooltip = ["candidate:N", "name:N", alt.Tooltip("value:Q", format=".4g"),
               alt.Tooltip("ci_low:Q", format=".4g"), alt.Tooltip("ci_high:Q", format=".4g")]
    bars = base.mark_bar().encode(x=alt.X("value:Q", title=title), color=color,
                                  tooltip=tooltip, **offset)
    whiskers = base.mark_rule(color="black").encode(x="ci_low:Q", x2="ci_high:Q", **offset)
    return (bars + whiskers).properties(title=title)


def pareto_chart(table: pd.DataFrame, x: str, y: str, x_higher: bool,
                 y_higher: bool) -> alt.LayerChart:
    """Scatter of two metrics, frontier points highlighted and joined, CIs as error bars."""
    data = table.copy()
    for axis in ("x", "y"):
        data[f"{axis}_low"] = data[f"{axis}_low"].fillna(data[axis])
        data[f"{axis}_high"] = data[f"{axis}_high"].fillna(data[axis])
    data["on frontier"] = data["frontier"].map({True: "Pareto frontier", False: "dominated"})
    arrow = {True: "higher is better", False: "lower is better"}
    x_enc = alt.X("x:Q", title=f"{x} ({arrow[x_higher]})", scale=alt.Scale(zero=False))
    y_enc = alt.Y("y:Q", title=f"{y} ({arrow[y_higher]})", scale=alt.Scale(zero=False))
    base = alt.Chart(data).encode(x=x_enc, y=y_enc)
    points = base.mark_point(filled=True, size=120).encode(
        color=alt.Color("on frontier:N", scale=alt.Scale(
            domain=["Pareto frontier", "dominated"], range=["#d62728", "#9e9e9e"]),
            title=None),
        tooltip=["candidate:N", alt.Tooltip("x:Q", title=x, format=".4g"),
                 alt.Tooltip("y:Q", title=y, format=".4g"), "on frontier:N"])
    x_err = base.mark_rule(opacity=0.5).encode(x="x_low:Q", x2="x_high:Q")
    y_err = base.mark_rule(opacity=0.5).encode(y="y_low:Q", y2="y_high:Q")
    labels = base.mark_text(align="left", dx=8, dy=-8).encode(text="candidate:N")
    line = alt.Chart(data[data["frontier"]].sort_values("x")).mark_line(
        color="#d62728", strokeDash=[4, 3]).encode(x="x:Q", y="y:Q", order="x:Q")
    return alt.layer(line, x_err, y_err, points, labels).properties(
        title=f"{y} vs {x}", height=420)


def curves_chart(frame: pd.DataFrame, name: str) -> alt.Chart:
    """Training curves (``step`` vs ``value``) per candidate, solid train, dashed
    validation."""
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q"), y=alt.Y("value:Q", title=name, scale=alt.Scale(zero=False)),
        color=CANDIDATE, strokeDash=alt.StrokeDash("split:N", title="split"),
        tooltip=["candidate:N", "split:N", "step:Q", alt.Tooltip("value:Q", format=".4g")],
    ).properties(title=f"{name} per training step", height=380)


def _accuracy_curve(frame: pd.DataFrame, x: alt.X, x_tooltip: alt.Tooltip | str,
                    title: str) -> alt.LayerChart:
    """Accuracy against ``x``, one line per candidate, CIs as bands."""
    base = alt.Chart(_with_ci(frame)).encode(x=x, color=CANDIDATE)
    band = base.mark_area(opacity=0.15).encode(y="ci_low:Q", y2="ci_high:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="accuracy"),
        tooltip=["candidate:N", x_tooltip, alt.Tooltip("value:Q", format=".3f")])
    return alt.layer(band, line).properties(title=title, height=340)


def data_efficiency_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Accuracy against the number of training examples (log scale), CIs as bands."""
    x = alt.X("train_examples:Q", scale=alt.Scale(type="log", base=2, nice=False),
              title="training examples")
    return _accuracy_curve(frame, x, "train_examples:Q", "data efficiency")


def noise_robustness_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Accuracy against the share of corrupted training answers (``label_noise``), one line
    per candidate, CIs as bands."""
    x = alt.X("label_noise:Q", axis=alt.Axis(format="%"), title="corrupted training answers")
    return _accuracy_curve(frame, x, alt.Tooltip("label_noise:Q", format=".0%"),
                           "label-noise robustness")


def latency_distribution_chart(samples: pd.DataFrame) -> alt.Chart:
    """Per-request latency distribution per candidate (box plot)."""
    return alt.Chart(samples).mark_boxplot(extent="min-max").encode(
        x=alt.X("latency_ms:Q", title="latency per request (ms)"),
        y=alt.Y("candidate:N", title=None), color=alt.Color("candidate:N", legend=None),
    ).properties(title="per-request latency", height=max(120, 40 * samples["candidate"]
                                                         .nunique()))


def stacked_phases_chart(frame: pd.DataFrame) -> alt.Chart:
    """Where a request's time goes (e.g. ``retrieval_ms`` then ``model_ms``), stacked."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("value:Q", title="ms per request", stack="zero"),
        y=alt.Y("candidate:N", title=None), color=alt.Color("name:N", title="phase"),
        tooltip=["candidate:N", "name:N", alt.Tooltip("value:Q", format=".4g")],
    ).properties(title="retrieval vs generation")


def _sweep_x(data: pd.DataFrame, field: str, log: bool) -> alt.X:
    """The swept value on a numeric axis (log scale on request), or in order as text when
    some value is not a number."""
    if data["swept"].notna().all():
        scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
        return alt.X("swept:Q", title=field, scale=scale)
    return alt.X("swept_text:O", title=field, sort=None)


def sweep_chart(means: pd.DataFrame, metric: str, field: str, *,
                log: bool = False) -> alt.LayerChart:
    """``metric`` against the swept ``field``: one line per ``series`` (an approach sweep, or
    one value of a second swept field), each point the mean over seeds, the 95% CI as a band
    and error bars. ``means`` has the columns of ``reports.sweep_data.sweep_means``."""
    data = _with_ci(means)
    base = alt.Chart(data).encode(x=_sweep_x(data, field, log),
                                  color=alt.Color("series:N", title="sweep"))
    band = base.mark_area(opacity=0.12).encode(y="ci_low:Q", y2="ci_high:Q")
    bars = base.mark_rule(opacity=0.6).encode(y="ci_low:Q", y2="ci_high:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        tooltip=["series:N", alt.Tooltip("swept_text:N", title=field),
                 alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("ci_low:Q", format=".4g"),
                 alt.Tooltip("ci_high:Q", format=".4g"), "seeds:Q"])
    return alt.layer(band, bars, line).properties(title=f"{metric} vs {field}", height=380)


def sweep_frontier_chart(lines: pd.DataFrame, singles: pd.DataFrame, x: str, y: str,
                         *, x_higher: bool | None = None,
                         y_higher: bool | None = None) -> alt.LayerChart:
    """Two metrics along each sweep: every ``series`` joined in the order of the swept value
    (``rank``), each point labelled with it (``swept_text``); the task's other runs
    (``singles``, labelled by ``candidate``) as black diamonds; 95% CIs as whiskers. Both
    frames hold ``x``, ``x_low``, ``x_high``, ``y``, ``y_low``, ``y_high``
    (``reports.sweep_data.metric_pairs``)."""
    arrow = {True: " (higher is better)", False: " (lower is better)", None: ""}
    x_enc = alt.X("x:Q", title=f"{x}{arrow[x_higher]}", scale=alt.Scale(zero=False))
    y_enc = alt.Y("y:Q", title=f"{y}{arrow[y_higher]}", scale=alt.Scale(zero=False))

    def filled(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for axis in ("x", "y"):
            out[f"{axis}_low"] = out[f"{axis}_low"].fillna(out[axis])
            out[f"{axis}_high"] = out[f"{axis}_high"].fillna(out[axis])
        return out

    color = alt.Color("series:N", title="sweep")
    tips = [alt.Tooltip("x:Q", title=x, format=".4g"), alt.Tooltip("y:Q", title=y, format=".4g")]
    swept = alt.Chart(filled(lines)).encode(x=x_enc, y=y_enc, color=color)
    layers: list[alt.Chart] = [
        swept.mark_rule(opacity=0.4).encode(x="x_low:Q", x2="x_high:Q"),
        swept.mark_rule(opacity=0.4).encode(y="y_low:Q", y2="y_high:Q"),
        swept.mark_line(point=alt.OverlayMarkDef(filled=True, size=80)).encode(
            order="rank:Q", tooltip=["series:N", "swept_text:N", *tips]),
        swept.mark_text(align="left", dx=7, dy=-7).encode(text="swept_text:N"),
    ]
    if not singles.empty:
        other = alt.Chart(filled(singles)).encode(x=x_enc, y=y_enc)
        layers += [
            other.mark_rule(color="black", opacity=0.5).encode(x="x_low:Q", x2="x_high:Q"),
            other.mark_rule(color="black", opacity=0.5).encode(y="y_low:Q", y2="y_high:Q"),
            other.mark_point(shape="diamond", filled=True, size=130, color="black").encode(
                tooltip=["candidate:N", *tips]),
            other.mark_text(align="left", dx=8, dy=8, fontWeight="bold").encode(
                text="candidate:N"),
        ]
    return alt.layer(*layers).properties(title=f"{y} vs {x} along each sweep", height=420)
