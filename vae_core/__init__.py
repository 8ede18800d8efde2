"""vae_core: the models, data, objectives, metrics and checkpoints behind the latent-space explorer.

No UI lives here: the app and the command-line tools call these functions.
"""
