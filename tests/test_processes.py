"""launchers/processes.py: stopping a worker's process group (real processes, no training)."""

from __future__ import annotations

import signal
import subprocess
import sys

from pai_sweep.launchers.processes import pid_alive, stop_group, wait_gone

# A leader that dies on SIGTERM, with a child that ignores it (as a library's helper process might).
LEADER = r"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_child_that_ignores_sigterm_does_not_outlive_the_stop():
    leader = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child_pid = int(leader.stdout.readline())
    stop_group(leader, grace=5.0, kill_wait=5.0)
    assert leader.returncode is not None  # stop_group collected its exit status itself: no zombie is left behind
    assert leader.poll() is not None  # the leader ended on SIGTERM, well inside the grace
    assert leader.returncode == -signal.SIGTERM
    wait_gone([child_pid], 5.0)
    assert not pid_alive(child_pid)  # the child ignored SIGTERM: the group's SIGKILL took it
