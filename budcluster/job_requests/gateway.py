"""Form of publish-gateway."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from budcluster.gateway import DEFAULT_NAMESPACE as DEFAULT_GATEWAY_NAMESPACE
from budcluster.gateway import DEFAULT_RELEASE as DEFAULT_GATEWAY_RELEASE
from budcluster.job_requests._common import _check_name, _Form
from budcluster.planning.image_refs import ImageReference
from budcluster.planning.limits import Seconds

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class PublishGatewayRequest(_Form):
    """Publish the LiteLLM gateway of one Kubernetes or OpenShift cluster: it routes every
    ready deployment of the cluster under its served model name."""

    cluster: str = Field(description="Name of a registered kubernetes or openshift cluster.")
    release: str = Field(
        DEFAULT_GATEWAY_RELEASE,
        description="Release name of the gateway; also its Deployment and Service name.",
    )
    namespace: str = Field(
        DEFAULT_GATEWAY_NAMESPACE, description="Namespace of the gateway (created if missing)."
    )
    master_key_secret: str | None = Field(
        None,
        description=(
            "Secret in the gateway's namespace whose key 'master-key' holds the proxy's master "
            "key; clients then send it as a bearer token. Empty: no key."
        ),
    )
    image: ImageReference | None = Field(
        None, description="LiteLLM proxy image; empty: the chart's pinned default."
    )
    ready_timeout_s: Seconds = Field(
        300, description="How long to wait for the gateway to route every model."
    )

    @field_validator("release")
    @classmethod
    def _release(cls, value: str) -> str:
        # Helm's limit: the release name prefixes object names and is a label value.
        if len(value) > 53:
            raise ValueError(f"release {value!r} is longer than 53 characters")
        return _check_name(value, "release")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _check_name(value, "namespace")

    @field_validator("master_key_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value and not (len(value) <= 253 and _SUBDOMAIN.match(value)):
            raise ValueError(
                f"master_key_secret {value!r} is not a Secret name: lowercase letters, digits, "
                "'-' and '.', starting and ending with a letter or digit"
            )
        return value or None
