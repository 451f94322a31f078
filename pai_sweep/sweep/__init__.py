"""The sweep driver's parts: study (storage, resume, tags), loop (ask/launch/tell), evaluate
(result -> analysis -> values), feedback (rule and derived trials), summary. Entry point:
`pai_sweep.driver.run_sweep`."""
