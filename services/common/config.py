"""The one configuration of every process: `config.yaml` with environment overrides.

nameko reads the same file (`nameko run --config config.yaml ...`); tools and tests
that run outside nameko call `load_config()` so both see identical values.
"""
import os
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.yaml"

setup_yaml_parser()


def load_config(path=None):
    """Config dict with every `${VAR:default}` resolved against the environment now."""
    path = Path(path or os.environ.get("PORTAL_CONFIG") or DEFAULT_CONFIG_PATH)
    with path.open() as handle:
        return yaml.safe_load(handle)


def setting_is_on(value):
    """A yes/no setting as written in config.yaml or the environment."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")
