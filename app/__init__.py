"""The Streamlit app of the latent-space explorer: a router, thin pages, and the helpers they share."""
