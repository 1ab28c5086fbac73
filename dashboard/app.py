"""energylab dashboard: `make dashboard` (streamlit run dashboard/app.py on 127.0.0.1).

Thin pages over the engine: Train (start, watch and retune runs), Explore (Gibbs
chains, inpainting, hidden units of a trained model), Compare (overlay saved
runs), About the theory. Runs belong to the server (energylab.runmanager), not
to a browser tab.
"""
import streamlit as st

st.set_page_config(page_title="energylab", page_icon=":material/bolt:", layout="wide")
page = st.navigation([
    st.Page("train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("explore.py", title="Explore", icon=":material/search:"),
    st.Page("compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("theory.py", title="About the theory", icon=":material/menu_book:"),
])
page.run()
