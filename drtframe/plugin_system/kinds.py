"""The kinds of thing a plugin registers and the hook that registers each (no imports: the CLI's
option choices read it at start-up)."""

KINDS = {
    "scorer": "drtframe_register_scorers",
    "schedule": "drtframe_register_schedules",
    "probe": "drtframe_register_probes",
    "benchmark": "drtframe_register_benchmarks",
    "architecture": "drtframe_register_architectures",
    "healer": "drtframe_register_healers",
}
