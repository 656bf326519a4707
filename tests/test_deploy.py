"""The deployment files, read as the tools that use them would: they cannot be built or run here (no docker,
no systemd), so these tests pin what they must agree on with the code: the settings, the packages, the command."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import tomllib
from pathlib import Path

import yaml
from dotenv import dotenv_values

from bot.config import Settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
TOKEN = "123:secret-token"
# Read by compose files, not by the bot.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "BASE_DATA_DIR"}


class Recording(dict):
    """An environment that remembers every variable asked for."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:
        self.asked.add(key)
        return super().get(key, default)


def settings_read() -> set[str]:
    env = Recording({"TELEGRAM_TOKEN": TOKEN, "CALLIGRAPHY_BASE_DATA": str(REPO), "BOT_RETRAIN_CRON": "0 3 * * 1"})
    Settings.from_env(env)
    return env.asked


def test_env_example_lists_every_setting_with_its_default():
    example = dotenv_values(DEPLOY / ".env.example")
    assert set(example) - COMPOSE_ONLY == settings_read()
    bot_values = {k: v for k, v in example.items() if k not in COMPOSE_ONLY}
    assert Settings.from_env(bot_values | {"TELEGRAM_TOKEN": TOKEN}) == Settings.from_env({"TELEGRAM_TOKEN": TOKEN})


def dockerfile_instructions(name: str) -> list[tuple[str, str]]:
    text = (DEPLOY / name).read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def packages() -> set[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["calligraphy"] == "calligraphy.cli:main"
    return {name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}


def test_bot_image_runs_calligraphy_bot_without_torch():
    instructions = dockerfile_instructions("Dockerfile.bot")
    values = dict(instructions)
    # The same console script and subcommand the process tests start (`python -m calligraphy bot`).
    assert json.loads(values["ENTRYPOINT"]) + json.loads(values["CMD"]) == ["calligraphy", "bot"]
    assert values["FROM"].startswith("python:3.11-slim")
    copied = {args.split()[0] for op, args in instructions if op == "COPY"}
    assert packages() <= copied
    installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert installs == [installs[0]] and 'pip install ".[bot]"' in installs[0]
    assert values["USER"] != "root" and json.loads(values["VOLUME"]) == ["/data"]


def test_trainer_image_has_cuda_and_the_train_extra():
    instructions = dockerfile_instructions("Dockerfile.trainer")
    values = dict(instructions)
    assert values["FROM"].startswith("nvidia/cuda:")
    assert packages() <= {args.split()[0] for op, args in instructions if op == "COPY"}
    assert any('pip install ".[train,bot]"' in args for op, args in instructions if op == "RUN")
    assert json.loads(values["ENTRYPOINT"]) == ["calligraphy"] and values["USER"] != "root"


def test_compose_runs_the_bot_with_postgresql_and_a_volume():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile.bot"} and bot["command"] == ["bot"]
    assert set(bot["environment"]) <= settings_read()
    assert bot["environment"]["CALLIGRAPHY_DB_URL"].startswith("postgresql+psycopg://")
    assert "data:/data" in bot["volumes"] and bot["env_file"] == ".env"
    assert db["image"].startswith("postgres:") and bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) == {"db", "data"}
    gpu = yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())["services"]["bot"]
    assert gpu["build"]["dockerfile"] == "deploy/Dockerfile.trainer"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_systemd_unit_runs_calligraphy_bot():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / "calligraphy-bot.service")
    service = unit["Service"]
    assert shlex.split(service["ExecStart"])[1:] == ["bot"]
    assert re.fullmatch(r"/\S+/bin/calligraphy", shlex.split(service["ExecStart"])[0])
    assert service["KillMode"] == "mixed" and service["RestartPreventExitStatus"] == "2"
    assert service["User"] != "root" and unit["Install"]["WantedBy"] == "multi-user.target"
