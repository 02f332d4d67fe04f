"""A throw-away single-node Slurm cluster for tests: munged, slurmctld and slurmd under one temp dir.

Nothing outside the temp dir is touched: the daemons use their own munge key and socket, their own
ports, state, spool and log dirs, and no cgroups (``proctrack/linuxproc``, ``task/none``). The node is
this machine, under its real hostname, with its CPU count and memory; it declares one placeholder ``gpu``
(``/dev/null`` as its device file), so GPU presets (``gpus_per_node: 1``) can be scheduled on a CPU box.

Every Slurm client (sbatch, squeue, submitit) must see ``SLURM_CONF``: use :attr:`SlurmCluster.env`.

As a script (needs root: munged runs as user munge, the daemons as root)::

    python tests/slurm/cluster.py --install -- llem run study.yaml hydra/launcher=slurm_gpu
    python tests/slurm/cluster.py            # start, print SLURM_CONF, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "slurmctld", "slurmd", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel")

SLURM_CONF = """\
ClusterName=llemtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
InactiveLimit=0
KillWait=2
MinJobAge=600
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""

GRES_CONF = "NodeName={host} Name=gpu File=/dev/null\n"  # a placeholder device: gres/gpu needs a File


def missing_programs() -> list[str]:
    """Daemons and clients not on PATH."""
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name) is None]


def install() -> None:
    """``apt-get install`` Debian's Slurm and munge packages (root, non-interactive)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-o", "Dpkg::Use-Pty=0"]
    subprocess.run([*apt, "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*apt, "install", "-y", "--no-install-recommends", *PACKAGES], check=True, env=env, stdout=subprocess.DEVNULL
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    """Total memory in MB as slurmd counts it (``MemTotal``), less a margin so the node is never drained."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(1, int(line.split()[1]) // 1024 - 256)
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """One node, one partition (``debug``); start() returns once the node is idle."""

    def __init__(self, root: Path | None = None) -> None:
        self.own_root = root is None  # a temp dir of its own is removed by stop()
        self.root = Path(root or tempfile.mkdtemp(prefix="llem-slurm-"))
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        """The environment every Slurm client needs (os.environ plus ``SLURM_CONF``)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        self.root.chmod(0o755)  # munged, running as munge, must reach its own dir below
        for name in ("state", "spool", "log"):
            (self.root / name).mkdir(exist_ok=True)
        munge = self.root / "munge"
        munge.mkdir(mode=0o755, exist_ok=True)  # munged wants its socket dir searchable by all
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in (munge, key):
            shutil.chown(path, "munge", "munge")
        values = {
            "host": self.host,
            "root": self.root,
            "cpus": os.cpu_count() or 1,
            "memory_mb": _memory_mb(),
            "ctld_port": _free_port(),
            "slurmd_port": _free_port(),
        }
        self.conf.write_text(SLURM_CONF.format(**values))
        (self.root / "gres.conf").write_text(GRES_CONF.format(**values))

    def _spawn(self, name: str, argv: list[str], user: str | None = None) -> None:
        with open(self.root / "log" / f"{name}.out", "wb") as log:
            self.processes[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, user=user, group=user, extra_groups=[]
            )

    def start(self, timeout_s: float = 30.0) -> None:
        """Write the config, start the three daemons and wait until ``sinfo`` shows the node idle."""
        self.write_config()
        munge = self.root / "munge"
        self._spawn(
            "munged",
            [
                "munged", "--foreground", "--force", f"--socket={munge}/munge.socket",
                f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid",
                f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed",
            ],
            user="munge",
        )  # fmt: skip
        self._wait(lambda: (munge / "munge.socket").exists(), timeout_s, "munged did not create its socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.host, "-f", str(self.conf)])
        self._wait(self.idle, timeout_s, "the node did not become idle")

    def idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, env=self.env)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            dead = [name for name, proc in self.processes.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.stop(remove=False)
                raise RuntimeError(f"{what} (exited: {dead or 'none'}); logs in {self.root / 'log'}:\n{self.logs()}")
            time.sleep(0.1)

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")) + [self.root / "munge" / "munged.log"]:
            if path.is_file():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def stop(self, remove: bool | None = None) -> None:
        """Stop the daemons by PID: slurmd, slurmctld, then munged (SIGTERM, then SIGKILL after 10 s);
        remove the temp dir if it made its own (``remove`` decides otherwise). Jobs still running on
        the cluster are cancelled first, so that none outlives it."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--partition=debug"], env=self.env, capture_output=True, timeout=30)
            self._drain(timeout_s=15)
        for name in reversed(DAEMONS):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.own_root if remove is None else remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def _drain(self, timeout_s: float) -> None:
        """Wait until squeue lists no job (cancelled ones take KillWait seconds to go)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=self.env)
            if out.returncode != 0 or not out.stdout.strip():
                return
            time.sleep(0.5)

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true", help="apt-get install Slurm and munge when missing")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="run this with SLURM_CONF set, then stop")
    args = parser.parse_args(argv)
    if missing_programs() and args.install:
        install()
    if missing_programs():
        parser.error(f"not on PATH: {', '.join(missing_programs())} (use --install, as root)")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill PID` stops the daemons too
    started = time.monotonic()
    with SlurmCluster() as cluster:
        print(f"slurm up in {time.monotonic() - started:.1f} s: export SLURM_CONF={cluster.conf}", file=sys.stderr)
        if command:
            return subprocess.run(command, env=cluster.env).returncode
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
