"""energylab dashboard: `make dashboard` (streamlit run dashboard/app.py on 127.0.0.1).

Thin pages over the engine: Train (start, watch and retune runs), Explore (Gibbs
chains, inpainting, hidden units of a trained model), Compare (overlay saved
runs), About the theory. Runs belong to the server (energylab.runmanager), not
to a browser tab.
"""
import streamlit as st
from streamlit import config

# Streamlit runs a full gc.collect(2) after every script run, fragment reruns included. With torch
# imported the heap is large: measured 0.1-0.4 s per collection, i.e. ~0.25 of a core for one tab
# refreshing every second, taken from the training process on a 2-core machine. Python's own
# generational collector still runs; only the forced full pass after each rerun is off.
config.set_option("runner.postScriptGC", False)

st.set_page_config(page_title="energylab", page_icon=":material/bolt:", layout="wide")
page = st.navigation([
    st.Page("train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("explore.py", title="Explore", icon=":material/search:"),
    st.Page("compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("theory.py", title="About the theory", icon=":material/menu_book:"),
])
page.run()
