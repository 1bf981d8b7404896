locals {
  cpu_pool_name = "cpu"
  # dns_prefix: 1-54 characters, starting and ending with a letter or digit.
  dns_prefix = replace(substr(var.cluster_name, 0, 54), "/-+$/", "")
  # Kubernetes service range; vnet_cidr is validated not to overlap it.
  service_cidr   = "10.0.0.0/16"
  dns_service_ip = "10.0.0.10"
}

# The identity Terraform runs as (from the ARM_* environment variables).
data "azurerm_client_config" "current" {}

resource "azurerm_kubernetes_cluster" "this" {
  name                = var.cluster_name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  dns_prefix          = local.dns_prefix
  kubernetes_version  = var.kubernetes_version

  # No local accounts: there is no admin kubeconfig, no client certificate/key
  # and no static token, so neither the state nor the outputs hold one. Access
  # is only through Entra ID tokens (kubelogin), authorised by Azure RBAC.
  local_account_disabled            = true
  role_based_access_control_enabled = true
  oidc_issuer_enabled               = true

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
    tenant_id          = var.tenant_id
  }

  identity {
    type = "SystemAssigned"
  }

  default_node_pool {
    name                        = local.cpu_pool_name
    temporary_name_for_rotation = "cpurotate"
    vm_size                     = var.cpu_node_pool.vm_size
    os_disk_size_gb             = var.cpu_node_pool.os_disk_size_gb
    vnet_subnet_id              = azurerm_subnet.nodes.id
    orchestrator_version        = var.kubernetes_version

    auto_scaling_enabled = true
    min_count            = var.cpu_node_pool.min_count
    max_count            = var.cpu_node_pool.max_count
    node_count           = var.cpu_node_pool.min_count

    node_labels = {
      "budcluster.io/pool" = "cpu"
    }

    # AKS's default; set so that plans do not show it changing every run.
    upgrade_settings {
      max_surge = "10%"
    }

    tags = local.tags
  }

  network_profile {
    network_plugin    = "azure"
    load_balancer_sku = "standard"
    outbound_type     = "loadBalancer"
    service_cidr      = local.service_cidr
    dns_service_ip    = local.dns_service_ip
  }

  tags = local.tags

  lifecycle {
    # The cluster autoscaler owns the node count after creation.
    ignore_changes = [default_node_pool[0].node_count]
  }
}

# With Azure RBAC for Kubernetes and no local accounts, nobody can use the
# cluster's API until granted a role: give the principal that created it (the
# one whose credentials kubelogin will use) cluster-admin rights on it.
# Creating role assignments needs Microsoft.Authorization/roleAssignments/write
# (Owner, User Access Administrator or Role Based Access Control Administrator).
resource "azurerm_role_assignment" "deployer_cluster_admin" {
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = data.azurerm_client_config.current.object_id
}

# Azure CNI on a subnet the cluster does not own: the cluster identity needs
# Network Contributor on it (e.g. for load balancers and IPs in the subnet).
resource "azurerm_role_assignment" "cluster_subnet_network_contributor" {
  scope                            = azurerm_subnet.nodes.id
  role_definition_name             = "Network Contributor"
  principal_id                     = azurerm_kubernetes_cluster.this.identity[0].principal_id
  skip_service_principal_aad_check = true
}
