"""drtframe's built-in plugins, installed as `drtframe_plugins` and found through entry points."""
