"""`calligraphy sandbox` as a real process for the tests: a free port, the tests' tiny model, SIGTERM to stop."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from model_factory import make_model_dir
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# Two Python processes start (the sandbox, then the bot with PTB and ONNX Runtime): slow on a loaded machine.
START_TIMEOUT = 90
STOP_TIMEOUT = 30
URL_LINE = re.compile(r"chat with the bot at (http://\S+)")


def png(color: tuple[int, int, int], size: tuple[int, int] = (120, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@dataclass
class Sandbox:
    process: subprocess.Popen
    home: Path
    lines: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, as a service manager or Ctrl-C would; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@contextmanager
def running_sandbox(root: Path, *options: str) -> Iterator[Sandbox]:
    """Start the sandbox in `root` (its working directory) and wait until it prints the page's address."""
    model = make_model_dir(root / "model")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_", "CALLIGRAPHY_"))}
    env.update(PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost")
    command = [sys.executable, "-m", "calligraphy", "sandbox", "--port", "0", "--no-browser"]
    command += ["--home", str(root / "home"), "--model", str(model), *options]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sandbox = Sandbox(process, root / "home")
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            sandbox.lines.append(line)
            match = URL_LINE.search(line)
            if match:
                sandbox.url = match.group(1)
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(START_TIMEOUT)
        assert sandbox.url, f"the sandbox did not start:\n{sandbox.output}"
        yield sandbox
    finally:
        if process.poll() is None:
            sandbox.stop()
        reader.join(5)
