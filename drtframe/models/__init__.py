"""Models: loading (local dirs, hub ids, GGUF files, aliases), the handle the rest of drtframe uses,
where each architecture keeps its decoder blocks (`architecture`), device-map placement
(`placement`), what a model is (`fingerprint`, every byte hashed) and which weights it has now
(`weights`, cheap enough for every scoring round)."""
