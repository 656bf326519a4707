"""Load on the running bot: N users send a photo at the same moment, through the fake Bot API server.

    .venv/bin/python benchmarks/bot_load.py [--users 20] [--rounds 5] [--model DIR] [--images DIR]

Starts `calligraphy bot` as its own process (as in production) against sandbox/telegram_api.py, then runs
`--rounds` bursts of `--users` simultaneous photos. Prints photos/s, p50/p95/max reply latency (photo
injected → reply received by the server), the bot's peak RSS (VmHWM) and whether torch was ever mapped
into the bot process. `--model` is a trainer version directory (added to a scratch store and promoted);
without it the store serves the packaged default model, or, when there is none, the tests' tiny model,
which measures the bot rather than inference. `--images` samples real photos from a folder-per-class tree;
without it each user sends a synthetic 1280×960 JPEG.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' tiny model (model_factory)

from model_store.store import ModelStore, default_model_path  # noqa: E402
from sandbox.telegram_api import TelegramServer as FakeTelegram  # noqa: E402


def synthetic_photo(seed: int) -> bytes:
    """A 1280×960 JPEG with random ink strokes on paper: the size Telegram delivers photos at."""
    rng = random.Random(seed)
    img = Image.new("RGB", (1280, 960), (235, 225, 200))
    draw = ImageDraw.Draw(img)
    for _ in range(120):
        x, y = rng.randrange(1280), rng.randrange(960)
        draw.line((x, y, x + rng.randint(-120, 120), y + rng.randint(-120, 120)), fill=(20, 20, 20), width=9)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=88)
    return out.getvalue()


def real_photos(root: Path, n: int) -> list[bytes]:
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not files:
        raise SystemExit(f"no images under {root}/<class>/")
    return [p.read_bytes() for p in random.Random(0).sample(files, min(n, len(files)))]


def prepare_home(home: Path, model: Path | None) -> str:
    """Put the model to serve in a scratch store; return a description of it."""
    store = ModelStore(home / "models")
    if model is not None:
        store.promote(store.add(model))
        return str(model)
    if (default_model_path() / "model.onnx").is_file():
        return "packaged default model"
    from model_factory import make_model_dir

    store.promote(store.add(make_model_dir(home / "tiny-model")))
    return "tests' tiny channel-mean model (no default model packaged yet): measures the bot, not inference"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def burst(fake: FakeTelegram, users: list, photos: list[bytes]) -> tuple[list[float], float]:
    """Every user sends a photo at once; latency of each reply, and the wall time of the whole burst."""

    async def one(chat, data: bytes) -> float:
        started = time.monotonic()
        chat.send_photo(data)
        reply = await chat.next_message(timeout=120)
        if "#" not in reply["text"]:
            raise RuntimeError(f"not a prediction: {reply['text']!r}")
        return time.monotonic() - started

    started = time.monotonic()
    latencies = await asyncio.gather(*(one(c, photos[i % len(photos)]) for i, c in enumerate(users)))
    return list(latencies), time.monotonic() - started


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        serving = prepare_home(home, args.model)
        photos = real_photos(args.images, 64) if args.images else [synthetic_photo(i) for i in range(16)]
        async with FakeTelegram() as fake:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_", "CALLIGRAPHY_"))}
            env |= {
                "TELEGRAM_TOKEN": fake.token,
                "TELEGRAM_API_BASE": fake.api_base,
                "TELEGRAM_FILE_API_BASE": fake.file_api_base,
                "CALLIGRAPHY_HOME": str(home),
                # Every simulated user sends one photo per round: keep the per-user limit out of the way.
                "BOT_PHOTOS_PER_MINUTE": str(max(20, 2 * args.rounds)),
                "NO_PROXY": "127.0.0.1,localhost",
                "PYTHONPATH": str(REPO),
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "calligraphy", "bot", cwd=scratch, env=env, stderr=asyncio.subprocess.DEVNULL
            )
            try:
                await fake.wait_until(lambda: fake.calls_of("getUpdates"), 60, "the bot to start polling")
                users = [fake.private_chat(10_000 + i) for i in range(args.users)]
                await burst(fake, users[:2], photos)  # warm-up: first session runs, connections
                cpu_before, own_before = cpu_seconds(process.pid), time.process_time()
                latencies, walls = [], []
                for _ in range(args.rounds):
                    lat, wall = await burst(fake, users, photos)
                    latencies += lat
                    walls.append(wall)
                bot_cpu, own_cpu = cpu_seconds(process.pid) - cpu_before, time.process_time() - own_before
                rss = peak_rss_mb(process.pid)
                torch = "/torch/" in Path(f"/proc/{process.pid}/maps").read_text()
            finally:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
    photos_total = args.users * args.rounds
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"model: {serving}")
    print(f"images: {args.images or 'synthetic 1280x960 JPEG'} ({statistics.mean(map(len, photos)) / 1e3:.0f} kB avg)")
    print(f"{args.users} users at once x {args.rounds} rounds = {photos_total} photos")
    print(f"throughput: {photos_total / sum(walls):.1f} photos/s")
    print(
        f"reply latency: p50 {statistics.median(latencies) * 1e3:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms"
    )
    print(
        f"CPU per photo: bot {bot_cpu / photos_total * 1e3:.0f} ms, "
        f"fake server and load driver {own_cpu / photos_total * 1e3:.0f} ms (same {os.cpu_count()} CPUs)"
    )
    print(f"bot peak RSS: {rss:.0f} MB; torch mapped into the bot: {'YES' if torch else 'no'}")
    print(f"exit status after SIGTERM: {process.returncode}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, help="a trainer version directory to serve")
    parser.add_argument("--images", type=Path, help="folder-per-class tree of real photos")
    asyncio.run(main(parser.parse_args()))
