"""Worked examples shipped with pai-sweep, importable by `_target_` (docs/custom_loop.md)."""
