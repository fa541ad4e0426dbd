"""Model loading (local dirs, hub ids, GGUF files, aliases), the handle the rest of drtframe uses,
and where each architecture keeps its decoder blocks (`architecture`)."""
