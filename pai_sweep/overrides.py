"""Overrides as a Hydra user writes them: `hydra.run.dir=DIR` names the sweep folder, and an unknown key gets
"did you mean" from the config schema's own keys (difflib) instead of Hydra's advice to add it with '+'."""

from __future__ import annotations

import difflib
import re


def rewrite_overrides(overrides: list[str]) -> list[str]:
    """`hydra.run.dir=DIR` is the sweep folder (Hydra's own run folder is not used: the sweep writes to sweep.dir)."""
    from pai_sweep.errors import ConfigError

    out, run_dir = [], None
    for o in overrides:
        if o.startswith("hydra.run.dir="):
            run_dir = o.split("=", 1)[1]
        else:
            out.append(o)
    if run_dir is None:
        return out
    if any(o.startswith(("sweep.dir=", "++sweep.dir=")) for o in out):
        raise ConfigError(f"hydra.run.dir={run_dir} and sweep.dir both name the sweep folder; keep one (sweep.dir)")
    return [*out, f"sweep.dir={run_dir}"]


_UNKNOWN = re.compile(r"Could not override '([^']+)'")


def did_you_mean(text: str, overrides: list[str], valid: list[str]) -> str:
    """Hydra's "Could not override 'a.b'. To append to your config use +a.b=..." -> the closest of the `valid`
    keys (schema.valid_keys: every key of the config schema) instead."""
    m = _UNKNOWN.search(text)
    key = m.group(1) if m else None
    if key is None or "." not in key:
        return text
    if key in valid:
        return text
    value = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+~") == key), "...")
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}={value}?" if close else f"valid keys under {key.rsplit('.', 1)[0]}: " + ", ".join(
        k.rsplit(".", 1)[1] for k in valid if k.startswith(key.rsplit(".", 1)[0] + "."))[:400]
    return f"{key}={value}: the config has no key {key}; {hint} (+{key}=... adds a new key, which nothing reads)"
