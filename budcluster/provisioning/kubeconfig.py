"""The kubeconfig a provisioned cluster is registered with.

The modules output a kubeconfig whose user is an exec plugin (``aws eks get-token`` or
``kubelogin get-token``), as the clouds recommend: no long-lived token exists to leak. The
plugin still needs the cloud credentials, and the worker that later reaches the cluster
has none of its own, so the credentials of the provisioning run are added to the plugin's
``env``. The whole kubeconfig is then sealed into a credentials block like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from budcluster.errors import ConfigurationError
from budcluster.provisioning.forms import Cloud

# Which credential variables the exec plugin reads, from the Terraform run's variables.
_PLUGIN_ENV = {
    Cloud.EKS: {
        "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN",
        "AWS_REGION": "AWS_REGION",
    },
    # kubelogin's service-principal login reads the AZURE_* names.
    Cloud.AKS: {
        "AZURE_CLIENT_ID": "ARM_CLIENT_ID",
        "AZURE_CLIENT_SECRET": "ARM_CLIENT_SECRET",
        "AZURE_TENANT_ID": "ARM_TENANT_ID",
    },
}
EXEC_COMMANDS = {Cloud.EKS: "aws", Cloud.AKS: "kubelogin"}


def registration_kubeconfig(
    cloud: Cloud, outputs: Mapping[str, Any], credentials_env: Mapping[str, str]
) -> tuple[str, str]:
    """(kubeconfig YAML, context name) for registering the cluster from its module outputs."""
    text = outputs.get("kubeconfig")
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("the Terraform module produced no 'kubeconfig' output")
    config = yaml.safe_load(text)
    if not isinstance(config, dict) or not config.get("users") or not config.get("contexts"):
        raise ConfigurationError("the module's 'kubeconfig' output is not a kubeconfig")
    plugin_env = [
        {"name": name, "value": credentials_env[source]}
        for name, source in _PLUGIN_ENV[cloud].items()
        if credentials_env.get(source)
    ]
    for user in config["users"]:
        exec_config = (user.get("user") or {}).get("exec")
        if not isinstance(exec_config, dict) or exec_config.get("command") != EXEC_COMMANDS[cloud]:
            raise ConfigurationError(
                f"the module's kubeconfig user {user.get('name')!r} is not the expected "
                f"{EXEC_COMMANDS[cloud]!r} exec plugin"
            )
        exec_config["env"] = plugin_env
    context = str(config.get("current-context") or config["contexts"][0]["name"])
    return yaml.safe_dump(config, sort_keys=False), context
