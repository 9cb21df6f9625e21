"""`scaling launch`: one training run as N local processes, a SLURM job, a TPU slice or GKE.

Every mode starts (or prints) the same `scaling train` command on each process; the
processes find each other through JAX's multi-controller runtime (`scaling.distributed`).
The TPU and GKE modes only print what to run, since they need cloud credentials.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from scaling import cluster, exits
from scaling import config as config_lib
from scaling.cluster import child_environment, cli_command, free_port
from scaling.errors import UserError

_PORT = 8476  # coordinator port on clusters whose hosts we name (GKE)


def train_args(config: str, workdir: str, overrides: list[str], *, absolute: bool) -> list[str]:
  """The `scaling train` arguments every process gets; `absolute` for another working dir."""
  path, sep, arg = config.partition(":")
  if absolute:
    path, workdir = os.path.abspath(path), os.path.abspath(workdir)
  return [f"--config={path}{sep}{arg}", f"--workdir={workdir}",
          *(f"--config.{o}" for o in overrides)]


def default_workdir(config: str, overrides: list[str]) -> str:
  """As `scaling train` names it: runs/<name>-<config hash>."""
  cfg = config_lib.load(config)
  config_lib.apply_overrides(cfg, overrides)
  from scaling import families
  return os.path.join("runs", families.run_name(cfg))


def _with_device_count(flags: str, count: int) -> str:
  kept = [f for f in flags.split() if not f.startswith("--xla_force_host_platform_device_count")]
  return " ".join([*kept, f"--xla_force_host_platform_device_count={count}"])


def run_local(args: list[str], processes: int, *, devices_per_process: int | None = None,
              gpus_per_process: int | None = None, port: int | None = None,
              timeout_s: int = 300) -> int:
  """Runs `scaling train` as `processes` processes here; returns the run's exit code.

  Process 0's output passes through; the others' go to log files, shown only when a process
  ends differently from process 0. If one process fails, the rest are stopped (a group with
  a dead member would wait in its collectives forever). SIGTERM and Ctrl-C are passed on, so
  the run saves a checkpoint and exits preempted or interrupted (a second Ctrl-C, passed on
  too, ends every process at once).
  """
  if processes < 1:
    raise UserError(f"--local needs at least 1 process, got {processes}")
  coordinator = f"127.0.0.1:{port or free_port()}"
  logs = tempfile.mkdtemp(prefix="scaling-launch-")
  procs, files = [], []
  for i in range(processes):
    env = dict(os.environ)
    if devices_per_process:  # simulated CPU devices, for trying sharding without accelerators
      env["XLA_FLAGS"] = _with_device_count(env.get("XLA_FLAGS", ""), devices_per_process)
    if gpus_per_process:
      env["CUDA_VISIBLE_DEVICES"] = ",".join(
          str(g) for g in range(i * gpus_per_process, (i + 1) * gpus_per_process))
    cmd = cli_command("train", *args, f"--coordinator={coordinator}",
                      f"--num_processes={processes}", f"--process_id={i}",
                      f"--distributed_timeout={timeout_s}")
    out = None if i == 0 else open(os.path.join(logs, f"process_{i}.log"), "w")
    files.append(out)
    procs.append(subprocess.Popen(cmd, env=child_environment(env), stdout=out,
                                  stderr=subprocess.STDOUT if out else None,
                                  start_new_session=True))

  def forward(signum, frame):
    del frame
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    codes = _wait_group(procs)
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    for f in files:
      if f:
        f.close()
  lead = codes[0]
  odd = [i for i, c in enumerate(codes) if c != lead]
  for i in odd:
    print(f"process {i} exited with code {codes[i]}; its output: "
          f"{os.path.join(logs, f'process_{i}.log')}", file=sys.stderr)
  if not odd:
    for i in range(1, processes):
      os.remove(os.path.join(logs, f"process_{i}.log"))
    os.rmdir(logs)
  # A process killed by a signal counts as the shell would report it (128 + signal).
  return next((c if c > 0 else 128 - c for c in codes if c != 0), 0)


def _wait_group(procs: list[subprocess.Popen]) -> list[int]:
  """Waits for every process; once one fails, stops the others after a grace period."""
  deadline = None
  while any(p.poll() is None for p in procs):
    codes = [p.poll() for p in procs]
    failed = [c for c in codes if c not in (None, 0)]
    if failed and deadline is None:
      # Preempted and diverged runs end on every process together; errors may not.
      coordinated = failed[0] in (exits.PREEMPTED, exits.INTERRUPTED, exits.DIVERGED)
      deadline = time.monotonic() + (120 if coordinated else 10)
    if deadline is not None and time.monotonic() > deadline:
      for p in procs:
        if p.poll() is None:
          p.kill()
    time.sleep(0.2)
  return [p.returncode for p in procs]


def slurm_script(args: list[str], settings: dict, *, job_name: str, output: str) -> str:
  """A batch script: `srun` runs the trainer once per node; preempted (75) -> requeue."""
  distributed = ["--distributed"] if settings["nodes"] > 1 else []
  # Some SLURM versions do not pass the job's CPUs per task on to its steps.
  cpus = [f"--cpus-per-task={settings['cpus_per_task']}"] if settings["cpus_per_task"] else []
  train = shlex.join(["srun", "--kill-on-bad-exit=1", *cpus,
                      *cli_command("train", *args, *distributed)])
  return "\n".join([
      "#!/bin/bash",
      *cluster.sbatch_header(settings, job_name=job_name, output=output),
      "# Every node runs one trainer; JAX finds the others from SLURM's environment.",
      train,
      "code=$?",
      "# 75: preempted (SIGTERM before the time limit or preemption); a checkpoint was saved,",
      "# so go back into the queue and resume from it.",
      f'if [ "$code" -eq {exits.PREEMPTED} ]; then',
      '  scontrol requeue "$SLURM_JOB_ID" && exit 0',
      "fi",
      'exit "$code"', ""])


def submit_slurm(args: list[str], settings: dict, workdir: str, *, dry_run: bool) -> int:
  """Writes `<workdir>/slurm/train.sbatch` and submits it (or prints it, with dry_run)."""
  directory = os.path.join(os.path.abspath(workdir), "slurm")
  job_name = os.path.basename(os.path.normpath(workdir)) or "train"
  script = slurm_script(args, settings, job_name=job_name,
                        output=os.path.join(directory, "%x-%j.out"))
  if dry_run:
    print(script, end="")
    return 0
  cluster.tool("sbatch")  # a clear error before anything is written
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, "train.sbatch")
  with open(path, "w") as f:
    f.write(script)
  job = cluster.submit(path)
  print(f"submitted SLURM job {job}: {path}; its log: {directory}/{job_name}-{job}.out")
  return 0


def tpu_command(args: list[str], name: str, zone: str, project: str | None,
                remote_dir: str) -> str:
  """The gcloud command that starts the trainer on every worker of a TPU VM slice."""
  remote = f"cd {remote_dir} && " + shlex.join(["scaling", "train", *args, "--distributed"])
  cmd = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", name, "--zone", zone]
  if project:
    cmd += ["--project", project]
  return shlex.join([*cmd, "--worker=all", "--command", remote])


def gke_manifest(args: list[str], name: str, *, image: str, hosts: int,
                 remote_dir: str | None, grace_s: int, gpus_per_node: int,
                 tpu_type: str | None, tpu_topology: str | None,
                 tpu_chips_per_host: int) -> str:
  """A JobSet of `hosts` pods, one trainer each; process 0's pod is the coordinator."""
  coordinator = f"{name}-workers-0-0.{name}:{_PORT}"
  train = "exec " + shlex.join(["scaling", "train", *args, f"--coordinator={coordinator}",
                      f"--num_processes={hosts}"]) + ' --process_id="$JOB_COMPLETION_INDEX"'
  if tpu_type:
    selector = [f"cloud.google.com/gke-tpu-accelerator: {tpu_type}",
                f"cloud.google.com/gke-tpu-topology: {tpu_topology}"]
    limits = f"google.com/tpu: {tpu_chips_per_host}"
  else:
    selector = []
    limits = f"nvidia.com/gpu: {gpus_per_node or 1}"
  selector_lines = (["          nodeSelector:"] + [f"            {s}" for s in selector]
                    if selector else [])
  return "\n".join([
      "apiVersion: jobset.x-k8s.io/v1alpha2",
      "kind: JobSet",
      "metadata:",
      f"  name: {name}",
      "spec:",
      "  # A preempted or failed pod restarts all of them; training resumes from its checkpoint.",
      "  failurePolicy:",
      "    maxRestarts: 20",
      "  network:",
      "    enableDNSHostnames: true",
      "  replicatedJobs:",
      "  - name: workers",
      "    replicas: 1",
      "    template:",
      "      spec:",
      f"        parallelism: {hosts}",
      f"        completions: {hosts}",
      "        completionMode: Indexed",
      "        backoffLimit: 0",
      "        template:",
      "          spec:",
      "            restartPolicy: Never",
      "            # SIGTERM comes this long before the pod is killed: time to save a checkpoint.",
      f"            terminationGracePeriodSeconds: {grace_s}",
      *["  " + line for line in selector_lines],
      "            containers:",
      "            - name: train",
      f"              image: {image}",
      *([f"              workingDir: {remote_dir}"] if remote_dir else []),
      f"              command: [\"bash\", \"-c\", {_yaml_str(train)}]",
      "              resources:",
      "                limits:",
      f"                  {limits}",
      ""])


def _yaml_str(text: str) -> str:
  """A double-quoted YAML scalar (JSON strings are valid YAML)."""
  return json.dumps(text)
