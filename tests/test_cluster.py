"""Child processes of the launchers and executors: pinned to their cores, stopped with
their parent, and set up by the child itself (no Python code between fork and exec)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from scaling import cluster
from tests.helpers import ROOT

# A child that adopts its settings, reports them, then waits to be stopped.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from scaling import cluster
    cluster.adopt_parent_settings()
    def stopped(signum, frame):
      open(sys.argv[1], "w").write("SIGTERM")
      sys.exit(0)
    signal.signal(signal.SIGTERM, stopped)
    print(sorted(os.sched_getaffinity(0)), "SCALING_PARENT_PID" in os.environ,
          "SCALING_CPU_CORES" in os.environ, flush=True)
    time.sleep(60)
""")


def test_child_runs_on_its_cores_and_passes_nothing_on(tmp_path):
  env = cluster.child_environment(os.environ, (0,))
  proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "stopped")], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, text=True)
  try:
    assert proc.stdout.readline().split() == ["[0]", "False", "False"]
  finally:
    proc.kill()
    proc.wait()


def test_child_is_stopped_when_its_parent_dies(tmp_path):
  marker = tmp_path / "stopped"
  # The parent starts the child and is then killed, so it cannot pass anything on.
  parent = textwrap.dedent(f"""
      import os, subprocess, sys, time
      from scaling import cluster
      child = subprocess.Popen([sys.executable, "-c", {CHILD!r}, {str(marker)!r}],
                               env=cluster.child_environment(os.environ),
                               stdout=subprocess.PIPE, text=True)
      print(child.stdout.readline(), end="", flush=True)
      time.sleep(60)
  """)
  proc = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True)
  assert proc.stdout.readline().split()[-2:] == ["False", "False"]  # the child is following
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  deadline = time.time() + 30
  while time.time() < deadline and not marker.exists():
    time.sleep(0.05)
  assert marker.read_text() == "SIGTERM"


def test_child_of_an_already_dead_parent_stops(tmp_path):
  env = {**cluster.child_environment(os.environ), "SCALING_PARENT_PID": "1"}
  result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "stopped")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
  assert result.returncode == -signal.SIGTERM and result.stdout == ""
