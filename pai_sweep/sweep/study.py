"""The study on disk: create or load it, check a resumed folder fits the config, tags and counts.

Every trial carries user attrs; `origin` says where it came from:
sampler | rule:<rule_id> | derived | baseline. Trials a dead or stopped driver left running are
marked FAIL with a restart reason, and their params are enqueued again, so the sweep ends with
the configured number of trials that really ran.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import optuna
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from pai_sweep.errors import SweepError
from pai_sweep.search_space import SearchSpace
from pai_sweep.trial_files import atomic_write_text

SAMPLER, BASELINE, DERIVED, RULE = "sampler", "baseline", "derived", "rule:"
STALE_REASON = "driver stopped while running"
STOPPED_REASON = "cancelled: the sweep stopped"
RESTART_REASONS = (STALE_REASON, STOPPED_REASON)  # such trials are re-run and do not count
REQUEUED = "requeued"  # user attr: a trial the driver, a stop or the disk ended, whose params were queued to run again
FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)

CONFIG_FILE = "config.yaml"
HASH_FILE = "config.hash"
# A resumed sweep must search the same thing; budget, launcher and tracking may change.
COMPAT_KEYS = ("sweep.space", "sweep.storage", "objective", "model", "downsize", "dendrites", "data", "train")


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[optuna.study.StudyDirection]) -> bool:
    """a is at least as good as b in every value (ties count: a repeat of a known point moves nothing)."""
    sign = [1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0 for d in directions]
    return all(s * x >= s * y for s, x, y in zip(sign, a, b))


def origin(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("origin", SAMPLER))


def queued_again(trial: FrozenTrial) -> bool:
    """Ended by the driver or the disk, not by itself: its params run again in a new trial (which counts instead).
    The reasons: studies written before every such trial was marked REQUEUED."""
    return bool(trial.user_attrs.get(REQUEUED)) or trial.user_attrs.get("reason") in RESTART_REASONS


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Sampler and rule trials that really ran; derived, baseline and restarted ones do not count."""
    o = origin(trial)
    return (o == SAMPLER or o.startswith(RULE)) and trial.state in FINISHED and not queued_again(trial)


def is_real_failure(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and origin(trial) != DERIVED and not queued_again(trial)


def _compat(config: dict) -> dict:
    out = {}
    for key in COMPAT_KEYS:
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[key] = node
    return out


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: value}


def _digest(compat: dict) -> str:
    return hashlib.sha256(json.dumps(compat, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_and_save_config(cfg: Any, sweep_dir: Path) -> bool:
    """Save config.yaml + config.hash; on resume, fail naming the keys that changed. True when resuming."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    new = OmegaConf.to_container(cfg, resolve=True)
    new_compat = _compat(new)
    path, hash_path = sweep_dir / CONFIG_FILE, sweep_dir / HASH_FILE
    resuming = path.exists()
    # Until a trial has run (e.g. the check stopped the first start), the config may still change.
    started = (sweep_dir / "trials").is_dir() and any((sweep_dir / "trials").iterdir())
    if started and hash_path.exists() and hash_path.read_text().strip() != _digest(new_compat):
        old_compat = _compat(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
        old_flat, new_flat = _flatten(old_compat, ""), _flatten(new_compat, "")
        changed = sorted(k for k in set(old_flat) | set(new_flat) if old_flat.get(k, "<absent>") != new_flat.get(k, "<absent>"))
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        raise SweepError(
            f"{sweep_dir} holds sweep '{cfg.sweep.name}' run with a different config ({shown or 'config'} changed); "
            "use a new sweep.name (or sweep.dir), or delete the folder to start over"
        )
    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(new)))
    atomic_write_text(hash_path, _digest(new_compat) + "\n")
    return resuming


def storage_url(cfg: Any, sweep_dir: Path) -> str:
    return cfg.sweep.storage or f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


# What SQLite says when the disk under study.db refuses a commit, as the errno the rest of the sweep reports.
_SQLITE_REFUSALS = {"database or disk is full": errno.ENOSPC, "attempt to write a readonly database": errno.EROFS,
                    "disk i/o error": errno.EIO}


def study_store_refused(exc: BaseException, cfg: Any, sweep_dir: Path) -> OSError | None:
    """The study's SQLite file could not be written (disk full, read-only) as an OSError naming it, else None."""
    seen = 0
    while exc is not None and seen < 8:  # optuna's StorageInternalError <- sqlalchemy <- sqlite3
        text = str(exc).lower()
        for message, code in _SQLITE_REFUSALS.items():
            if message in text and type(exc).__name__ == "OperationalError":
                url = storage_url(cfg, sweep_dir)
                path = url.split(":///", 1)[1] if url.startswith("sqlite:///") else url
                return OSError(code, os.strerror(code), path)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: a commit appends to the log instead of rewriting pages and syncing twice; synchronous=NORMAL
    # syncs at checkpoints only. A crashed driver (any process death) loses nothing committed; only an
    # OS crash or power loss can drop the last commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's storage; a sqlite file opens in WAL mode with synchronous=NORMAL (PRAGMAs on every connect)."""
    import sqlalchemy

    storage = optuna.storages.RDBStorage(url)
    if storage.engine.dialect.name == "sqlite" and storage.engine.url.database not in (None, "", ":memory:"):
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections pooled while optuna made its tables get the PRAGMAs too
    return storage


def set_user_attrs(study: optuna.Study, trial: optuna.trial.Trial, attrs: dict[str, Any]) -> None:
    """All of a running trial's user attrs in one transaction (optuna commits each set_user_attr alone).

    Uses RDBStorage's own per-attr write (private in optuna 5.0) inside one session; any other storage,
    or an optuna without it, gets one set_user_attr per attr.
    """
    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # create_study wraps an RDBStorage in a _CachedStorage
    write = getattr(backend, "_set_trial_attr_without_commit", None)
    if not isinstance(backend, optuna.storages.RDBStorage) or write is None or not attrs:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in attrs.items():
            write(session, models.TrialUserAttributeModel, trial._trial_id, key, value)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler calls study.stop() once the grid is done, which raises outside study.optimize;
    the driver tells trials itself (the trial is stored before that call) and stops on its own budget."""

    def after_trial(self, study, trial, state, values) -> None:
        try:
            super().after_trial(study, trial, state, values)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise


def make_sampler(sweep_cfg: Any, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    name = sweep_cfg.sampler
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "grid":
        return _GridSampler(_grid(space), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # multivariate+group: conditional keys (`when`) are modelled jointly with their parents.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=startup_trials(sweep_cfg))


def startup_trials(sweep_cfg: Any) -> int:
    """Trials the TPE sampler draws at random before it models the space (rule trials wait for them)."""
    return max(2, min(10, int(sweep_cfg.n_trials) // 2))


def _grid(space: SearchSpace) -> dict[str, list]:
    grid = {}
    for p in space:
        d = p.distribution
        if p.when:
            raise SweepError(f"sweep.sampler=grid cannot search the conditional key {p.key}; drop its 'when' or use tpe")
        if isinstance(d, CategoricalDistribution):
            grid[p.key] = list(d.choices)
        elif isinstance(d, IntDistribution) and not d.log:
            grid[p.key] = list(range(d.low, d.high + 1, d.step))
        elif getattr(d, "step", None):
            n = int(round((d.high - d.low) / d.step))
            grid[p.key] = [d.low + i * d.step for i in range(n + 1)]
        else:
            raise SweepError(f"sweep.sampler=grid needs a step or choices for {p.key}; add step: or use tpe")
    return grid


def make_pruner(sweep_cfg: Any, n_objectives: int) -> optuna.pruners.BasePruner:
    if sweep_cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    if sweep_cfg.pruner != "median":
        raise SweepError(f"sweep.pruner={sweep_cfg.pruner!r} is not known; valid values: none, median")
    if n_objectives > 1:
        raise SweepError("sweep.pruner=median needs a single-value objective (Optuna cannot prune multi-objective trials); use sweep.pruner=none")
    # n_min_trials: derived trials count as complete but have no intermediate values to compare with.
    startup = int(sweep_cfg.pruner_startup)
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=sweep_cfg.pruner_warmup, n_min_trials=max(1, startup))


def open_study(cfg: Any, sweep_dir: Path, space: SearchSpace, directions: list[str]) -> optuna.Study:
    url = storage_url(cfg, sweep_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = make_pruner(cfg.sweep, len(directions))
    try:
        storage = open_storage(url)  # one storage for both calls: each one made costs its tables' and version checks
    except Exception as exc:  # noqa: BLE001 - storage errors come in many types
        raise SweepError(f"cannot open the study at {url}: {exc}; check sweep.storage") from exc
    # A seed offset by the trials already stored: a resumed sampler does not replay old suggestions.
    try:
        existing = optuna.load_study(study_name=cfg.sweep.name, storage=storage)
        offset = len(existing.trials)
    except KeyError:
        existing, offset = None, 0
    if existing is not None:
        _check_stored_choices(existing, space, cfg.sweep.name)
    sampler = make_sampler(cfg.sweep, space, int(cfg.sweep.seed) + offset)
    try:
        study = optuna.create_study(
            storage=storage, study_name=cfg.sweep.name, directions=directions, sampler=sampler, pruner=pruner, load_if_exists=True
        )
    except Exception as exc:  # noqa: BLE001 - storage errors come in many types
        raise SweepError(f"cannot open the study at {url}: {exc}; check sweep.storage") from exc
    if [d.name.lower() for d in study.directions] != directions:
        raise SweepError(
            f"study '{cfg.sweep.name}' at {url} optimises {[d.name.lower() for d in study.directions]}, the config asks for {directions}; "
            "use a new sweep.name or delete the study"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metric_names(cfg, len(directions)))  # optuna-dashboard's axes, not "Objective 0"
    study.set_user_attr("config", config_summary(cfg, space))
    return study


def _check_stored_choices(study: optuna.Study, space: SearchSpace, name: str) -> None:
    """A study stored by a version that kept a float beside JSON strings in one categorical cannot take new trials."""
    for t in study.get_trials(deepcopy=False):
        for key, dist in t.distributions.items():
            p = space.by_key.get(key)
            if p is not None and p.encoded and isinstance(dist, CategoricalDistribution) and dist != p.distribution:
                raise SweepError(
                    f"study '{name}' stores {key} with choices {list(dist.choices)}, an older encoding than {list(p.distribution.choices)}; "
                    "resume it with the pai-sweep version that made it, or start a new sweep.name"
                )


def metric_names(cfg: Any, n_objectives: int) -> list[str]:
    """What each value told to Optuna is, e.g. ["val accuracy", "parameters"] for objective=efficiency."""
    from pai_sweep.task import score_label

    score = score_label(cfg).replace(" (%)", "")
    if str(cfg.objective.name) == "scalar":
        score += " - parameter cost"
    return [score, "parameters"][:n_objectives] + [f"value {i}" for i in range(2, n_objectives)]


def config_summary(cfg: Any, space: SearchSpace) -> dict[str, Any]:
    """The study's `config` user attr: what a reader of the study (optuna-dashboard, the CLI) needs to know."""
    return {
        "sweep": str(cfg.sweep.name), "model": str(cfg.model.get("name")), "data": str(cfg.data.get("name")),
        "objective": str(cfg.objective.name), "metric": str(cfg.objective.metric), "sampler": str(cfg.sweep.sampler),
        "pruner": str(cfg.sweep.pruner), "n_trials": int(cfg.sweep.n_trials), "searched": list(space.keys),
        "sweep_dir": str(Path(cfg.sweep.dir).resolve()),
    }


def report_epoch(study: optuna.Study, trial: optuna.trial.Trial, value: float, step: int) -> None:
    """An intermediate value (one epoch's score) on a running trial. Optuna's trial.report refuses
    multi-objective studies (only its pruners need that check); the storage takes the value either way,
    so optuna-dashboard's Intermediate Values panel shows every trained trial. A step already recorded is left as
    it is (a driver that follows a trial again after a restart or a stop reads its metrics.jsonl from the start;
    trial.report would print a warning per epoch on stderr)."""
    known = trial._cached_frozen_trial.intermediate_values  # what trial.report checks too: no storage read per epoch
    if step in known:
        return
    if len(study.directions) == 1:
        trial.report(value, step=step)
    else:
        study._storage.set_trial_intermediate_value(trial._trial_id, step, value)
        known[step] = value


def set_baseline(study: optuna.Study, number: int, score: float, params: Any) -> None:
    """The baseline trial's result as a study user attr (the reference every later trial is compared with)."""
    study.set_user_attr("baseline", {"trial": number, "score": score, "params": params})


def trial_by_number(study: optuna.Study, number: int) -> optuna.trial.Trial:
    """A live handle on a stored trial (to report, set attrs and constraints on it)."""
    frozen = study.trials[number] if study.trials[number].number == number else next(t for t in study.trials if t.number == number)
    return optuna.trial.Trial(study, frozen._trial_id)
