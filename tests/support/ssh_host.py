"""A real SSH host on this machine that shares nothing with the controller but the kernel.

Its root is a Debian rootfs made by ``mmdebstrap`` (:mod:`tests.support.debian_rootfs`),
extracted into a temporary directory; Debian's ``sshd`` runs chrooted into it, in its own
mount and PID namespaces (its own ``/proc``: processes started over SSH see only the host's),
and, where ``ip netns`` works, in its own network namespace joined to this one by a veth pair,
so the host has its own address and its own ports. Where network namespaces are refused it
listens on a loopback address of its own (``127.0.0.<n>``) instead; ``SshHost.network`` says
which. Login is by a fresh ed25519 key for a non-root user; the host key is fresh too, and
``known_hosts`` lists it.

Needs root, ``unshare`` and ``chroot`` (util-linux, coreutils), ``ssh-keygen`` (openssh-client)
and ``mmdebstrap``; ``ip`` (iproute2) for the network namespace.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.debian_rootfs import debian_rootfs_tarball

HOST_PACKAGES = ["openssh-server", "python3", "libgomp1"]
"""sshd; python3 for Ansible and the stdlib helpers; libgomp1, the one shared library
llama-server links beyond libc and libstdc++ (``ldd`` of the cached build)."""

USER = "bud"
START_TIMEOUT_S = 20.0

SSHD_CONFIG = """\
ListenAddress {address}
Port {port}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {user}
UsePAM no
StrictModes yes
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


@dataclass(frozen=True)
class SshHost:
    root: Path
    """The host's root directory, as the controller sees it."""
    address: str
    port: int
    user: str
    home: str
    """The user's home inside the host."""
    private_key: str
    known_hosts: str
    network: str
    """``netns`` (its own network namespace and address) or ``loopback`` (127.0.0.<n>)."""
    link: str | None = None
    """The controller's end of the veth pair to the host (``netns`` only)."""

    def path(self, inside: str) -> Path:
        """Where ``inside`` (an absolute path on the host) is on the controller."""
        return self.root / inside.lstrip("/")

    def processes(self) -> dict[int, list[str]]:
        """Every process whose root is this host's root: pid (as seen here) -> argv."""
        found: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if (entry / "root").readlink() == self.root:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    found[int(entry.name)] = [a.decode(errors="replace") for a in argv if a]
        return found

    def cut_network(self) -> None:
        """Make the host unreachable, as a lost link does: the controller's end of the
        veth pair goes down, its route goes with it, and packets to the host go nowhere
        (a new ssh connection times out). The host and every process on it run on.
        Needs the ``netns`` network."""
        if self.link is None:
            pytest.skip("cutting the SSH host's network needs its own network namespace")
        _run(["ip", "link", "set", self.link, "down"])

    def restore_network(self) -> None:
        """Bring the link back up (its address stays, and its route comes back with it)."""
        if self.link is not None:
            _run(["ip", "link", "set", self.link, "up"])

    def inventory(self, name: str = "sshhost") -> str:
        return (
            "all:\n  hosts:\n"
            f"    {name}:\n"
            f"      ansible_host: {self.address}\n"
            f"      ansible_port: {self.port}\n"
            f"      ansible_user: {self.user}\n"
            "      ansible_python_interpreter: /usr/bin/python3\n"
        )


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload, no-any-return]


def _prepare_root(root: Path, workdir: Path, address: str, port: int) -> tuple[str, str]:
    """Extract the rootfs, add the user, fresh keys and sshd's config; return the client's
    private key and the known_hosts line."""
    tarball = debian_rootfs_tarball(HOST_PACKAGES)
    root.mkdir(parents=True)
    _run(["tar", "-xf", str(tarball), "-C", str(root), "--numeric-owner"])
    _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/sh", USER])
    # sshd refuses a locked account ("!" in shadow) without PAM; "*" has no password either.
    _run(["chroot", str(root), "usermod", "--password", "*", USER])
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()  # the cached tarball's keys would be the same on every run
    host_key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", str(host_key)])
    client_key = workdir / "id_ed25519"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "controller", "-f", str(client_key)])
    ssh_dir = root / "home" / USER / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)
    _run(["chroot", str(root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh"])
    (root / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    (root / "etc" / "ssh" / "sshd_config").write_text(
        SSHD_CONFIG.format(address=address, port=port, user=USER)
    )
    host_public = host_key.with_suffix(".pub").read_text().split()
    where = address if port == 22 else f"[{address}]:{port}"
    known_hosts = f"{where} {host_public[0]} {host_public[1]}\n"
    private_key = client_key.read_text()
    client_key.unlink()
    return private_key, known_hosts


def _netns_works(name: str) -> bool:
    if shutil.which("ip") is None:
        return False
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    return True


def _wait_for_port(address: str, port: int, sshd: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            raise RuntimeError(f"sshd exited {sshd.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on {address}:{port}: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def ssh_host(workdir: Path) -> Iterator[SshHost]:
    """Start the host; on exit stop sshd and everything started through it, remove its
    network namespace and its root."""
    if os.geteuid() != 0:
        pytest.skip("the SSH test host needs root (chroot, namespaces)")
    for tool in ("unshare", "chroot", "ssh-keygen", "ssh"):
        if shutil.which(tool) is None:
            pytest.skip(f"the SSH test host needs {tool}")
    tag = f"{os.getpid() % 100000}"
    netns = f"bsc-ssh-{tag}"
    veth = f"bscv{tag}"
    octet = 2 + os.getpid() % 250
    use_netns = _netns_works(netns)
    if use_netns:
        address, port, network = f"10.231.{octet}.2", 22, "netns"
    else:
        address, port, network = f"127.0.{octet}.1", 2222, "loopback"
    root = workdir / "host-root"
    private_key, known_hosts = _prepare_root(root, workdir, address, port)
    created_netns = False
    sshd: subprocess.Popen[bytes] | None = None
    log = workdir / "sshd.log"
    try:
        prefix: list[str] = []
        if use_netns:
            _run(["ip", "netns", "add", netns])
            created_netns = True
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p"])
            _run(["ip", "link", "set", f"{veth}p", "netns", netns])
            _run(["ip", "addr", "add", f"10.231.{octet}.1/30", "dev", veth])
            _run(["ip", "link", "set", veth, "up"])
            inside = ["ip", "netns", "exec", netns]
            _run([*inside, "ip", "addr", "add", f"{address}/30", "dev", f"{veth}p"])
            _run([*inside, "ip", "link", "set", f"{veth}p", "up"])
            _run([*inside, "ip", "link", "set", "lo", "up"])
            prefix = inside
        # A devpts of its own for ptys (Ansible asks for one), mounted in the host's
        # private mount namespace like its /proc: neither shows on the controller.
        pts = root / "dev" / "pts"
        ptmx = root / "dev" / "ptmx"
        ptmx.unlink()
        ptmx.symlink_to("pts/ptmx")
        start = (
            f"mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts {shlex.quote(str(pts))}"
            f" && exec chroot {shlex.quote(str(root))} /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config"
        )
        argv = [
            *prefix,
            "unshare", "--mount", "--pid", "--fork", "--kill-child",
            f"--mount-proc={root / 'proc'}",
            "sh", "-c", start,
        ]  # fmt: skip
        with log.open("wb") as out:
            sshd = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _wait_for_port(address, port, sshd, log)
        yield SshHost(
            root=root,
            address=address,
            port=port,
            user=USER,
            home=f"/home/{USER}",
            private_key=private_key,
            known_hosts=known_hosts,
            network=network,
            link=veth if use_netns else None,
        )
    finally:
        if sshd is not None and sshd.poll() is None:
            # unshare --kill-child: pid 1 of the host's namespace dies, and with it every
            # process started over SSH.
            sshd.send_signal(signal.SIGTERM)
            try:
                sshd.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sshd.kill()
                sshd.wait(timeout=15)
        if created_netns:
            subprocess.run(["ip", "link", "del", veth], capture_output=True, timeout=30)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
