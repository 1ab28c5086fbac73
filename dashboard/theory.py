"""About the theory: the few ideas the dashboard shows, with the notebooks that derive them."""
from pathlib import Path

import streamlit as st

st.title("About the theory")
st.markdown(r"""
**Energy.** A restricted Boltzmann machine gives every joint state of visible units $v$ and hidden
units $h$ an energy $E(v,h) = -a^\top v - b^\top h - v^\top W h$ and a probability
$p(v,h) = e^{-E(v,h)}/Z$. Summing out $h$ gives the *free energy* $F(v)$ with $p(v) = e^{-F(v)}/Z$:
low free energy means probable. → notebook `01_energy…`

**Sampling.** Given $v$ the hidden units are independent (and vice versa), so block Gibbs sampling
alternates $h \sim p(h\mid v)$ and $v \sim p(v\mid h)$. The **Samples** panel shows such chains.
→ notebook `02_sampling…`

**Learning.** The log-likelihood gradient is a *positive phase* (statistics on data) minus a
*negative phase* (statistics under the model). Contrastive divergence (CD-k) estimates the negative
phase with k Gibbs steps started at the data; persistent CD keeps its chains between updates.
Press **Pause**, then **Step** on the Train page to see one update: the batch, the particles and ΔW.
→ notebook `03_learning…`

**Measuring.** $Z$ is a sum over every state, so the likelihood is exact only for tiny models
(the bars-and-stripes panel enumerates all $2^9$ images). Otherwise we watch the
pseudo-likelihood, the reconstruction error and the free-energy gap between training and held-out
data (a growing gap means over-fitting). AIS estimates $\log Z$ for large models.
→ notebooks `04_measuring_progress`, `11_partition_functions`

**Real-valued data.** Gaussian visible units turn the RBM into a mixture of Gaussians whose free
energy you can draw over the plane: the **Explore** page shows it for 2-D data and a Gaussian model.
→ notebook `05_real_valued_data`

**Regularisation.** Weight decay, sparsity, Dropout (test time uses $pW$), DropConnect and
energy-based dropout; their sliders change the running training. → notebook `06_regularisation`

**Classification.** A discriminative RBM computes $p(y\mid x)$ exactly; the hybrid adds
$\alpha$ times the generative likelihood of $(x, y)$. → notebook `07_classification`

**Convolutions, stacks and mean field.** Convolutional RBMs share filters across positions;
DBNs train one RBM at a time on the features of the one below; deep Boltzmann machines are
trained jointly with mean-field and persistent chains; the TAP free energy trains without sampling.
→ notebooks `08_convolutional_rbms`, `09_deep_models`, `10_mean_field_and_tap`
""")

st.subheader("The notebooks")
st.markdown("Open them with `make lab` (JupyterLab on `notebooks/`, with this project's environment as the "
            "`python3` kernel). Each ends with exercises and points back to the page of this dashboard "
            "that shows the same idea live.")
_NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
st.table({"notebook": [nb.name for nb in _NOTEBOOKS],
          "topic": [nb.stem[3:].replace("_", " ") for nb in _NOTEBOOKS]})
