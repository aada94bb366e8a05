"""The model families: config and modeling pairs, self-contained (saved checkpoints ship them as remote code), so
they import nothing else of meli_hf."""
