"""Runs a rendered pod's container as a local process, as the kubelet and the container runtime
would start it, as far as one host allows:

- volumes: ConfigMaps and Secrets of the render are written out in the kubelet's layout (the
  files under a timestamped `..<time>` directory, a `..data` link to it, one link per key), so
  a program reading a mounted directory sees the hidden entries it sees in a pod; emptyDirs are
  empty writable directories owned by the pod's fsGroup;
- the command, arguments and environment are the container's, the environment over the image's
  (Dockerfile `ENV`), with `valueFrom` resolved (the pod's name and namespace, the render's
  Secrets) and `$(VAR)` references expanded as the kubelet does;
- paths: the image's binary path runs the release binary; paths under a mount point of a
  ConfigMap or Secret are rewritten to where its files were written (one host cannot mount at
  /etc/threds/...);
- restarts: a workload's container that exits is started again after a back-off, as the kubelet
  does for `restartPolicy: Always` (shortened: 1, 2, 4 ... at most 8 seconds); `restarts` counts
  them, and a container that keeps exiting is reported (CrashLoopBackOff);
- security: as root, the process runs in a private mount namespace whose every filesystem is
  read-only except the emptyDirs (bound at their mount points, e.g. /tmp), as the pod's
  runAsUser/runAsGroup without capabilities (setpriv). Otherwise it runs as the current user
  and `sandboxed` is False.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .chart import Rendered

KUBELET_TIMESTAMP = "..2025_01_01_00_00_00.000000001"
VIRTUAL = ("/proc", "/sys", "/dev")


def sandbox_available() -> bool:
    """Root with unshare and setpriv: the read-only, non-root sandbox can be built."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -o remount,bind,ro / && true"],
        capture_output=True,
    )
    return probe.returncode == 0


def expand(value: str, defined: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion: defined names are replaced, `$$` escapes, others stay."""

    def one(m: re.Match) -> str:
        if m.group(0).startswith("$$"):
            return m.group(0)[1:]
        name = m.group(1)
        return defined[name] if name in defined else m.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", lambda m: "$" if m.group(0) == "$$" else one(m), value)


def write_atomic_layout(target: Path, files: dict[str, bytes], mode: int = 0o644) -> None:
    """Writes `files` (relative path -> content) into `target` as the kubelet does for a
    ConfigMap or Secret volume."""
    data = target / KUBELET_TIMESTAMP
    data.mkdir(parents=True)
    os.chmod(target, 0o755)
    os.chmod(data, 0o755)
    for rel, content in files.items():
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    (target / "..data").symlink_to(KUBELET_TIMESTAMP)
    for top in sorted({rel.split("/")[0] for rel in files}):
        (target / top).symlink_to(f"..data/{top}")


@dataclass
class PodFacts:
    """How the pod was laid out locally."""

    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath -> host directory
    empty_dirs: dict[str, Path] = field(default_factory=dict)  # mountPath -> host directory
    files: dict[str, Path] = field(default_factory=dict)  # mountPath -> host directory, read-only


class LocalPod:
    """One pod of a rendered workload or Job, run locally (see the module's description)."""

    def __init__(
        self,
        rendered: Rendered,
        pod_template: dict,
        *,
        pod_name: str,
        namespace: str,
        workdir: Path,
        image,
        binary: Path,
        sandbox: bool,
    ):
        self.spec = pod_template["spec"]
        self.container = self.spec["containers"][0]
        self.rendered = rendered
        self.pod_name = pod_name
        self.namespace = namespace
        self.dir = workdir
        self.image = image
        self.binary = binary
        self.sandbox = sandbox
        self.facts = PodFacts()
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.stopping = False
        self.supervisor: threading.Thread | None = None
        self.log_path = workdir / "container.log"
        security = self.spec.get("securityContext", {})
        self.uid = security.get("runAsUser", image.user[0])
        self.gid = security.get("runAsGroup", image.user[1])
        self.fs_group = security.get("fsGroup")
        workdir.mkdir(parents=True)
        os.chmod(workdir, 0o755)
        self._lay_out_volumes()

    # -- volumes ---------------------------------------------------------------------------

    def _source_files(self, volume: dict) -> dict[str, bytes] | None:
        """The files of a ConfigMap or Secret volume, or None for an emptyDir."""
        if "configMap" in volume:
            source = volume["configMap"]
            obj = self.rendered.get("ConfigMap", source["name"])
            data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        elif "secret" in volume:
            source = volume["secret"]
            obj = self.rendered.get("Secret", source["secretName"])
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        elif "emptyDir" in volume:
            return None
        else:
            raise NotImplementedError(f"volume {volume['name']}: only configMap, secret and emptyDir are run locally")
        if source.get("items"):
            return {item["path"]: data[item["key"]] for item in source["items"]}
        return data

    def _lay_out_volumes(self) -> None:
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            host = self.dir / "volumes" / mount["name"]
            files = self._source_files(volume)
            if files is None:
                host.mkdir(parents=True)
                owner = self.fs_group if self.fs_group is not None else self.gid
                if os.geteuid() == 0:
                    os.chown(host, self.uid, owner)
                os.chmod(host, 0o2775)
                self.facts.empty_dirs[mount["mountPath"]] = host
            else:
                write_atomic_layout(host, files)
                self.facts.files[mount["mountPath"]] = host
            self.facts.mounts[mount["mountPath"]] = host

    # -- command and environment -----------------------------------------------------------

    def host_path(self, value: str) -> str:
        """`value` with a leading mount point of a ConfigMap/Secret (or, outside the sandbox, an
        emptyDir) replaced by its host directory."""
        mapped = dict(self.facts.files)
        if not self.sandbox:
            mapped.update(self.facts.empty_dirs)
        for mount_path in sorted(mapped, key=len, reverse=True):
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(mapped[mount_path]) + value[len(mount_path) :]
        return value

    def environment(self) -> dict[str, str]:
        """The container's environment as the process gets it."""
        env = dict(self.image.env)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env["HOSTNAME"] = self.pod_name
        for var in self.container.get("env", []):
            name = var["name"]
            if "value" in var:
                value = expand(str(var["value"]), env)
            else:
                value = self._value_from(var["valueFrom"])
            env[name] = value
        return {k: self.host_path(v) for k, v in env.items()}

    def _value_from(self, source: dict) -> str:
        if "fieldRef" in source:
            field_path = source["fieldRef"]["fieldPath"]
            return {
                "metadata.name": self.pod_name,
                "metadata.namespace": self.namespace,
                "spec.nodeName": os.uname().nodename,
            }[field_path]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            return self.rendered.secret_value(ref["name"], ref["key"])
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return self.rendered.get("ConfigMap", ref["name"])["data"][ref["key"]]
        raise NotImplementedError(f"valueFrom {source}")

    def argv(self) -> list[str]:
        command = self.container.get("command") or self.image.entrypoint
        args = self.container.get("args") or []
        env = self.environment()
        image_binary = self.image.entrypoint[0]
        if command[0] != image_binary:
            raise AssertionError(f"the container runs {command[0]}, but the image's binary is {image_binary}")
        argv = [str(self.binary)] + [expand(a, env) for a in command[1:] + args]
        return [argv[0]] + [self.host_path(a) for a in argv[1:]]

    def sandboxed_argv(self) -> list[str]:
        """argv inside the read-only mount namespace, as the pod's user (see the module doc)."""
        script = ["set -e"]
        for target in read_write_mounts():
            script.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
        for mount_path, host in self.facts.empty_dirs.items():
            script.append(f"mount --bind {shlex.quote(str(host))} {shlex.quote(mount_path)}")
            script.append(f"mount -o remount,bind,rw {shlex.quote(mount_path)}")
        groups = f"--groups={self.fs_group}" if self.fs_group is not None else "--clear-groups"
        script.append(
            f'exec setpriv --reuid={self.uid} --regid={self.gid} {groups} --inh-caps=-all --bounding-set=-all '
            '--no-new-privs -- "$@"'
        )
        return [
            "unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", "\n".join(script), "pod",
        ] + self.argv()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> subprocess.Popen:
        for mount_path in self.facts.empty_dirs:
            if self.sandbox and not Path(mount_path).is_dir():
                raise AssertionError(f"emptyDir mount point {mount_path} does not exist on this host")
        argv = self.sandboxed_argv() if self.sandbox else self.argv()
        # The image's working directory does not exist here: an empty, read-only directory.
        cwd = self.dir / "workdir"
        cwd.mkdir(exist_ok=True)
        os.chmod(cwd, 0o555)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, env=self.environment(), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        return self.process

    def keep_running(self) -> None:
        """Starts the container and restarts it whenever it exits until `stop` (restartPolicy: Always)."""
        self.start()

        def supervise():
            backoff = 1.0
            while True:
                assert self.process is not None
                code = self.process.wait()
                if self.stopping:
                    return
                with open(self.log_path, "ab") as log:
                    log.write(f"--- container exited with {code}; restarting in {backoff:.0f} s\n".encode())
                time.sleep(backoff)
                if self.stopping:
                    return
                self.restarts += 1
                backoff = min(backoff * 2, 8.0)
                self.start()

        self.supervisor = threading.Thread(target=supervise, name=f"kubelet-{self.pod_name}", daemon=True)
        self.supervisor.start()

    def crash_looping(self, limit: int = 4) -> bool:
        return self.restarts >= limit

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` (the grace period); the exit code."""
        self.stopping = True
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        if self.supervisor:
            self.supervisor.join(timeout)
        return self.process.returncode

    def run(self, timeout: float) -> subprocess.CompletedProcess:
        """Runs to completion (a Job's pod): exit code and output."""
        self.start()
        assert self.process is not None
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.pod_name} did not finish within {timeout} s:\n{self.log()}")
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, self.log(), "")

    def log(self, tail: int = 60) -> str:
        if not self.log_path.exists():
            return "(no output)"
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def port(self, name: str) -> int:
        for p in self.container.get("ports", []):
            if p.get("name") == name:
                return int(p["containerPort"])
        raise KeyError(f"container has no port named {name}")

    def probe_url(self, probe: str) -> str:
        """The URL of the container's `probe` (readinessProbe, livenessProbe, startupProbe)."""
        get = self.container[probe]["httpGet"]
        port = get["port"]
        if isinstance(port, str):
            port = self.port(port)
        return f"http://127.0.0.1:{port}{get['path']}"


def read_write_mounts() -> list[str]:
    """Mount points of this host that are writable and not virtual (/proc, /sys, /dev)."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            target = fields[4].replace("\\040", " ")
            options = fields[5].split(",")
            if any(target == v or target.startswith(v + "/") for v in VIRTUAL):
                continue
            if "rw" in options and target not in out:
                out.append(target)
    return out
