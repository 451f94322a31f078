"""The Hydra side of the throughput benchmark: a Hydra app that runs one pai-sweep worker per job."""
