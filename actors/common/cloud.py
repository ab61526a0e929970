"""openstacksdk connections for monitors: a named cloud from clouds.yaml, short timeouts,
no silent retries, and errors that say what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openstack
import openstack.config
import openstack.exceptions
from keystoneauth1 import exceptions as ksa_exc

from osha.errors import PluginError

__all__ = ["API_ERRORS", "CloudError", "connect", "describe_api_error"]

#: What an API call can raise when the cloud misbehaves (not a bug in osha).
API_ERRORS: tuple[type[BaseException], ...] = (
    openstack.exceptions.SDKException,
    ksa_exc.ClientException,
    OSError,
)


class CloudError(PluginError):
    """A cloud cannot be used: unknown name, bad clouds.yaml, bad credentials."""


def _config(clouds_yaml: str) -> openstack.config.OpenStackConfig:
    if clouds_yaml:
        path = Path(clouds_yaml)
        if not path.is_absolute():
            raise CloudError(
                f"clouds_yaml = {clouds_yaml!r} is a relative path",
                hint="give an absolute path (a campaign resolves relative paths for you)",
            )
        if not path.is_file():
            raise CloudError(
                f"clouds_yaml {clouds_yaml} does not exist",
                hint="point clouds_yaml at the clouds.yaml that holds the cloud",
            )
        return openstack.config.OpenStackConfig(config_files=[str(path)], load_envvars=False)
    return openstack.config.OpenStackConfig(load_envvars=False)


def connect(cloud: str, *, clouds_yaml: str = "", region: str = "", timeout_s: float = 3.0) -> Any:
    """An ``openstack.connection.Connection`` for a named cloud; nothing is sent yet."""
    if not cloud:
        raise CloudError("no cloud given", hint='set cloud = "<name in clouds.yaml>"')
    config = _config(clouds_yaml)
    options: dict[str, Any] = {"api_timeout": timeout_s, "connect_retries": 0}
    if region:
        options["region_name"] = region
    try:
        region_config = config.get_one(cloud=cloud, **options)
    except openstack.exceptions.ConfigException as exc:
        known = sorted(config.get_cloud_names())
        where = clouds_yaml or os.environ.get("OS_CLIENT_CONFIG_FILE") or "the default clouds.yaml"
        raise CloudError(
            f"cloud {cloud!r} is not in {where}: {exc}",
            hint=f"known clouds: {', '.join(known) or 'none'}; set cloud = one of them, or "
            "clouds_yaml = the file that has it",
        ) from None
    return openstack.connection.Connection(config=region_config)


def describe_api_error(exc: BaseException) -> str:
    """One line for evidence: the class and the first line of the message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
