"""pai-sweep: run the PerforatedAI loop (train, analyse, change the knobs, train again) as an Optuna sweep."""

__version__ = "0.1.0"
