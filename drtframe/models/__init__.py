"""Model loading (local dirs, hub ids, GGUF files, aliases) and the handle the rest of drtframe uses."""
