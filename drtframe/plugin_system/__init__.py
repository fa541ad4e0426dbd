"""The plugin system: the hooks plugins implement, the manager that finds them, and the checks around
their code. Nothing here imports torch, so the CLI's light commands stay light.

hookspecs  the `drtframe_register_*` hooks and `hookimpl`
kinds      the kinds of thing a plugin registers, and the hook of each
manager    the pluggy manager and the registry of named methods it builds
base       what every registered class has in common (name, options)
options    per-class option schemas that reject unknown keys
checks     plugin calls wrapped so a faulty plugin fails with one line naming itself
faults     that one line, pointing into the plugin's own file
suggest    "did you mean ..." for unknown names
"""
