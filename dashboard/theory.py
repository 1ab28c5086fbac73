"""About the theory: the few ideas the dashboard shows, with the notebooks that derive them."""
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
data (a growing gap means over-fitting). → notebook `04_measuring…`

The notebooks live in `notebooks/`; open them with `make lab`.
""")
