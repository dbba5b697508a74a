"""Shared pytest setup: never reach the model hub from tests."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
