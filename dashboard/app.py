"""energylab dashboard: `make dashboard` (streamlit run dashboard/app.py on 127.0.0.1).

Thin pages over the engine: Train (start, watch and retune runs), Explore (Gibbs
chains, inpainting, hidden units of a trained model), Compare (overlay saved
runs), Class (the instructor's view of every run), About the theory. A run trains in
the server (energylab.server.manager) and belongs to the browser session that started it.
"""
import streamlit as st
from streamlit import config

# Streamlit runs a full gc.collect(2) after every script run, fragment reruns included. With torch
# imported the heap is large: measured 0.1-0.4 s per collection, i.e. ~0.25 of a core for one tab
# refreshing every second, taken from the training process on a 2-core machine. Python's own
# generational collector still runs; only the forced full pass after each rerun is off.
config.set_option("runner.postScriptGC", False)

def icon():
    """The page icon, drawn here: a named icon would be fetched from a font server (no internet in class)."""
    from PIL import Image
    img = Image.new("RGB", (8, 8), (250, 250, 250))
    for x, y in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (1, 6), (6, 1), (2, 5), (5, 2)]:
        img.putpixel((x, y), (200, 30, 60))
    return img.resize((32, 32), Image.NEAREST)


st.set_page_config(page_title="energylab", page_icon=icon(), layout="wide")
page = st.navigation([
    st.Page("train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("explore.py", title="Explore", icon=":material/search:"),
    st.Page("compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("instructor.py", title="Class", icon=":material/groups:"),
    st.Page("theory.py", title="About the theory", icon=":material/menu_book:"),
])
page.run()
