"""A private PulseAudio server with a null sink, for live-audio tests and benchmarks.

CI machines and containers have no sound card, but PortAudio's ALSA host API can reach a
PulseAudio server through the ALSA ``pulse`` plugin (Debian: pulseaudio, libasound2-plugins;
see packaging/apt-dev.txt). :class:`PulseServer` starts a daemon of our own, so a test never
touches (or depends on) a desktop's server:

* everything lives in a temporary directory: the native-protocol socket, the daemon's runtime
  and state directories, a ``HOME`` with an ``.asoundrc`` making ALSA's default PCM type pulse,
  and a client.conf that forbids autospawning another daemon;
* one null sink (``rate``, ``channels``, float32 samples so nothing is quantised on the way
  through) is the default sink, and its monitor is the default source: whatever is played into
  the sink (paplay, or an output stream on the ``pulse`` device) can be recorded from the
  ``pulse`` device;
* :attr:`PulseServer.env` is what a child process needs (``PULSE_SERVER``, ``HOME``,
  ``XDG_CONFIG_HOME``, ``PULSE_CLIENTCONFIG``). PortAudio reads the ALSA configuration when
  ``sounddevice`` is imported, so the live part must run in a child started with that env;
* on exit the daemon is stopped by its pid (SIGTERM, then SIGKILL) and the directory removed.

Running as root (containers): pulseaudio warns "not intended to be run as root" but runs in
per-user mode with ``--system=no``; the setrlimit(RLIMIT_NICE/RTPRIO) failures it logs are
harmless. ``-n`` skips /etc/pulse/default.pa (which would probe for hardware, D-Bus and X11),
and ``--exit-idle-time`` keeps the server up between clients (two minutes, so a test run
killed outright, whose ``__exit__`` never runs, leaves no daemon behind for long).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

SINK = "deepsampler_null"
IDLE_EXIT_S = 120  # the daemon exits this long after its last client has gone (a safety net)

# Where Debian, Fedora and Arch put ALSA's plugins; the pulse PCM plugin is one file.
ALSA_PLUGIN_GLOBS = (
    "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so",
    "/usr/lib/alsa-lib/libasound_module_pcm_pulse.so",
    "/usr/lib64/alsa-lib/libasound_module_pcm_pulse.so",
)


class PulseUnavailable(RuntimeError):
    """PulseAudio (or the ALSA plugin reaching it) is not installed, or the server did not
    start; the message says which and how to install it."""


def missing_reason() -> str | None:
    """Why a private PulseAudio server cannot run here, or None if it can."""
    if shutil.which("pulseaudio") is None:
        return "no pulseaudio binary (apt-get install pulseaudio; see packaging/apt-dev.txt)"
    if not any(glob.glob(pattern) for pattern in ALSA_PLUGIN_GLOBS):
        return "no ALSA pulse plugin (apt-get install libasound2-plugins)"
    return None


class PulseServer:
    """A private PulseAudio daemon with a null sink; a context manager.

    Args:
        rate: the null sink's sample rate (use the model's, so nothing is resampled).
        channels: the null sink's channel count.
        start_timeout: seconds to wait for the daemon to answer before giving up.

    Raises :class:`PulseUnavailable` on entering when the packages are missing or the daemon
    does not come up (its log is in the message).
    """

    def __init__(self, rate: int = 44100, channels: int = 2, start_timeout: float = 15.0) -> None:
        self.rate = rate
        self.channels = channels
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}

    # ---- paths ------------------------------------------------------------------------------
    @property
    def socket(self) -> Path:
        assert self.root is not None, "enter the context first"
        return self.root / "run" / "native"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "enter the context first"
        return self.root / "pulseaudio.log"

    def log(self) -> str:
        """The daemon's log so far (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> PulseServer:
        reason = missing_reason()
        if reason is not None:
            raise PulseUnavailable(reason)
        self.root = Path(tempfile.mkdtemp(prefix="deepsampler-pulse-"))
        try:
            self._write_config()
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def stop(self) -> None:
        """Stop our daemon by its pid: SIGTERM (it unloads its modules and removes the
        socket), SIGKILL if it has not exited within 5 s."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    # ---- internals --------------------------------------------------------------------------
    def _write_config(self) -> None:
        root = self.root
        assert root is not None
        home = root / "home"
        run = root / "run"
        for d in (home / ".config" / "alsa", run):
            d.mkdir(parents=True)
        # The server's only modules: the native protocol at our socket (anonymous auth, so no
        # cookie file is needed) and the null sink. float32: PortAudio asks the ALSA plugin for
        # float32, paplay sends a float file as float32, so no stage quantises to 16 bits.
        (root / "server.pa").write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name={SINK} rate={self.rate} "
            f"channels={self.channels} format=float32le "
            f"sink_properties=device.description=DeepSamplerNull\n"
            f"set-default-sink {SINK}\n"
            f"set-default-source {SINK}.monitor\n"
        )
        # Clients must never spawn a server of their own (which would use the real HOME).
        client_conf = root / "client.conf"
        client_conf.write_text(f"autospawn = no\ndefault-server = unix:{self.socket}\n")
        # ALSA reads ~/.asoundrc and $XDG_CONFIG_HOME/alsa/asoundrc: write both, so the
        # default PCM is pulse even where /etc/alsa/conf.d's hook (99-pulse.conf) is absent.
        asoundrc = (
            "pcm.!default { type pulse }\n"
            "ctl.!default { type pulse }\n"
            "pcm.pulse { type pulse }\n"
            "ctl.pulse { type pulse }\n"
        )
        (home / ".asoundrc").write_text(asoundrc)
        (home / ".config" / "alsa" / "asoundrc").write_text(asoundrc)
        self.env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": str(client_conf),
            "PULSE_RUNTIME_PATH": str(run / "pulse"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_RUNTIME_DIR": str(run),
        }

    def child_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) plus the server's variables."""
        env = dict(os.environ if base is None else base)
        env.update(self.env)
        return env

    def _start(self) -> None:
        root = self.root
        assert root is not None
        cmd = [
            "pulseaudio",
            "-n",  # no /etc/pulse/default.pa: only our script's modules
            "--daemonize=no",  # our child, so we hold its pid
            "--system=no",
            # Up between clients (a benchmark's children start seconds apart), yet gone two
            # minutes after the last one if whoever started it was killed outright and never
            # stopped it (a parent-death signal, PR_SET_PDEATHSIG, set before exec did not
            # reach it when tried here).
            f"--exit-idle-time={IDLE_EXIT_S}",
            "--disallow-exit",  # a client cannot stop it; we do, by pid
            "--disallow-module-loading",
            "--use-pid-file=no",  # the pid file would go to the runtime dir; we need none
            "--log-target=stderr",
            "-F",
            str(root / "server.pa"),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                cmd,
                cwd=root,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a test run goes to pytest, not the daemon
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PulseUnavailable(
                    f"pulseaudio exited with {self.process.returncode}:\n{self.log()}"
                )
            if self.socket.exists() and self._answers():
                return
            time.sleep(0.1)
        raise PulseUnavailable(
            f"pulseaudio did not answer within {self.start_timeout:g} s:\n{self.log()}"
        )

    def _answers(self) -> bool:
        """Whether the server answers a client: `pactl info` where pulseaudio-utils is
        installed, else the daemon's own log line."""
        if shutil.which("pactl") is not None:
            done = subprocess.run(
                ["pactl", "info"],
                env=self.child_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=5,
                check=False,
            )
            return done.returncode == 0
        return "Daemon startup complete" in self.log()


def pulse_server_or_skip(rate: int = 44100, channels: int = 2) -> PulseServer:
    """A :class:`PulseServer` whose entry calls ``pytest.skip`` (with the reason) when the
    packages are missing; a server that is installed but fails to start still fails."""
    import pytest

    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    return PulseServer(rate, channels)
