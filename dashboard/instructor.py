"""Class page (the instructor's view): every run on this server with its owner, speed and status,
and the controls of each. Enabled by the key in ENERGYLAB_INSTRUCTOR_KEY, entered here once per
browser session; without it the page says how to set it and lists nothing."""
import streamlit as st

from common import manager, session_token

st.title("Class · every run on this server")
m = manager()
if not m.has_instructor:
    st.info("The instructor's view is off. Start the server with an instructor key, e.g.\n\n"
            "`ENERGYLAB_INSTRUCTOR_KEY=choose-a-secret make dashboard`\n\n"
            "then enter that key here. Students never need it: each of them controls only their own runs.")
    st.stop()

key = st.session_state.get("instructor_key")
if not (key and m.is_instructor(key)):
    entered = st.text_input("instructor key", type="password", key="instructor.entry",
                            help="the value of ENERGYLAB_INSTRUCTOR_KEY on the server")
    if entered and m.is_instructor(entered):
        st.session_state["instructor_key"] = entered
        st.rerun()
    elif entered:
        st.error("That is not the instructor key of this server.")
    st.stop()

session_token()


def act(run, action):
    try:
        getattr(run, action)(token=st.session_state["instructor_key"])
    except (RuntimeError, ValueError, PermissionError) as exc:
        st.session_state["class.notice"] = str(exc)


@st.fragment(run_every=2.0)
def class_table():
    rows = m.list_runs(st.session_state["instructor_key"])
    live = [r for r in rows if r["live"] and r["status"] in ("starting", "running", "paused", "queued")]
    st.markdown(f"**{len(live)} active** ({sum(r['status'] == 'queued' for r in live)} queued) · "
                f"{len(rows)} run folders · at most {m.max_running} train at once (ENERGYLAB_MAX_RUNS)")
    if st.session_state.get("class.notice"):
        st.warning(st.session_state.pop("class.notice"))
    if not rows:
        st.caption("No runs yet.")
        return
    header = st.columns([2.2, 1.3, 1.2, 1, 1, 1, 0.8, 0.8, 0.8])
    for col, title in zip(header, ["run", "owner", "status", "step", "samples/s", "queue", "", "", ""]):
        col.markdown(f"**{title}**")
    for r in rows[:60]:
        cols = st.columns([2.2, 1.3, 1.2, 1, 1, 1, 0.8, 0.8, 0.8], vertical_alignment="center")
        cols[0].markdown(f"[`{r['id']}`](/?run={r['id']})" if r["live"] else f"`{r['id']}`")
        cols[1].write(r["owner_label"])
        cols[2].write(r["status"] + (f" ({r['error'][:40]}…)" if r.get("error") and r["status"] == "failed" else ""))
        cols[3].write(f"{r['step']:,}")
        cols[4].write(f"{r['samples_per_s']:,.0f}" if r["status"] == "running" else "-")
        cols[5].write(str(r["queue_position"] or "-"))
        run = m.get(r["id"]) if r["live"] else None
        if run is None:
            continue
        status = run.status
        cols[6].button("pause", key=f"class.pause.{r['id']}", on_click=act, args=(run, "pause"),
                       disabled=status != "running")
        cols[7].button("resume", key=f"class.resume.{r['id']}", on_click=act, args=(run, "resume"),
                       disabled=status != "paused")
        cols[8].button("stop", key=f"class.stop.{r['id']}", on_click=act, args=(run, "stop"),
                       disabled=not (run.active or run.waiting))


class_table()
st.caption("A run's link opens its live page; with the key entered here, its controls work for you too.")
