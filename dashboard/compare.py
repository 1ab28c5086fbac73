"""Compare page: overlay the curves of saved runs (the runs folder) to compare methods or settings.

Runs of the dashboard and of the command line alike (their config.json is one run record,
`energylab.store.runrecord`); a folder that cannot be read is named with its reason, never a traceback."""
import plotly.graph_objects as go
import streamlit as st

from common import manager, unreadable_folders
from energylab import viz
from energylab.store.runfolder import RunFolder


def describe(path) -> str:
    """One line about a run from its record, or why the record cannot be read."""
    try:
        cfg = RunFolder(path).read_record()
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    return (f"{cfg.variant} on {cfg.dataset.name} ({cfg.source} run), model {cfg.model}, "
            f"training {cfg.training}")


def history_of(path):
    try:
        return RunFolder(path).read_history()
    except (OSError, ValueError):          # being rewritten, or damaged: shown as "no metrics"
        return None


st.title("Compare runs")
runs = [r for r in manager().list_runs() if (RunFolder(r["path"]).file("history.json")).is_file()]
unreadable_folders()
if not runs:
    st.info("No saved runs yet. Train one on the **Train** page; every run is saved under "
            f"`{manager().root}` (the command line `energylab train` writes there too).")
    st.stop()

labels = {r["id"]: f"{r['id']} ({r['status']}, step {r['step']})" for r in runs}
# Default: the newest run and the newest one like it (same variant and dataset), so the first view compares alike
like = [r["id"] for r in runs if (r["variant"], r["dataset"]) == (runs[0]["variant"], runs[0]["dataset"])]
chosen = st.multiselect("runs to overlay", list(labels), default=like[:2], format_func=labels.get,
                        key="compare.runs", help="histories are re-read from disk, so live runs update on rerun")
histories = {run_id: history_of(next(r["path"] for r in runs if r["id"] == run_id)) for run_id in chosen}
broken = [run_id for run_id, h in histories.items() if h is None]
histories = {run_id: h for run_id, h in histories.items() if h is not None}
metrics = sorted({n for h in histories.values() for n in h.names() if n not in ("epoch", "time")})
if not metrics:
    st.info("The chosen runs have no metrics logged yet.")
    st.stop()
default = "pseudo_log_likelihood" if "pseudo_log_likelihood" in metrics else metrics[0]
metric = st.selectbox("metric", metrics, index=metrics.index(default), format_func=viz.label, key="compare.metric")
fig = go.Figure()
missing = []
for run_id, history in histories.items():
    steps, values = history.series(metric)
    if not steps:
        missing.append(run_id)
        continue
    fig.add_trace(go.Scatter(x=steps, y=values, name=run_id, mode="lines+markers" if len(steps) <= 50 else "lines"))
# showlegend: with a single line plotly would hide the legend and the line would have no name
fig.update_layout(template="plotly_white", xaxis_title="training step", yaxis_title=viz.label(metric),
                  showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.2), height=450,
                  margin=dict(t=30))
st.plotly_chart(fig, key="compare.chart")
if missing:
    st.caption(f"No {viz.label(metric)} logged in: {', '.join(f'`{m}`' for m in missing)}")
if broken:
    st.caption(f"History unreadable (being written, or damaged): {', '.join(f'`{m}`' for m in broken)}")
for run_id in chosen:
    st.caption(f"`{run_id}`: {describe(next(r['path'] for r in runs if r['id'] == run_id))}")
