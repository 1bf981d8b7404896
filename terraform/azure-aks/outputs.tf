locals {
  # The azurerm provider marks the whole kube_config block sensitive because
  # on clusters with local accounts it carries a client key or token. This
  # cluster has local_account_disabled = true, so the block holds no
  # credential; of it only the API server URL and the cluster CA certificate
  # (public data every client needs) are used, and only those two are
  # unmarked with nonsensitive().
  endpoint                   = nonsensitive(azurerm_kubernetes_cluster.this.kube_config[0].host)
  certificate_authority_data = nonsensitive(azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)

  # AKS's Entra ID server application: the audience of tokens for every AKS cluster.
  aks_aad_server_app_id = "6dae42f8-4368-4678-94ff-3960e28e3630"
}

output "cluster_name" {
  description = "Name of the AKS cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "location" {
  description = "Azure region of the cluster."
  value       = azurerm_kubernetes_cluster.this.location
}

output "resource_group_name" {
  description = "Resource group holding the cluster and its network."
  value       = azurerm_resource_group.this.name
}

output "endpoint" {
  description = "Kubernetes API server URL."
  value       = local.endpoint
}

output "certificate_authority_data" {
  description = "Base64-encoded PEM CA certificate of the API server."
  value       = local.certificate_authority_data
}

output "node_pool_names" {
  description = "Names of all node pools: the system (CPU) pool first, then the GPU pools."
  value = concat(
    [azurerm_kubernetes_cluster.this.default_node_pool[0].name],
    [for p in azurerm_kubernetes_cluster_node_pool.gpu : p.name],
  )
}

output "kubeconfig" {
  description = "kubeconfig (YAML) with no credential in it: kubelogin gets an Entra ID token for a service principal from AZURE_CLIENT_ID/AZURE_CLIENT_SECRET (or AAD_SERVICE_PRINCIPAL_CLIENT_ID/AAD_SERVICE_PRINCIPAL_CLIENT_SECRET) in the environment."
  value = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    preferences     = {}
    current-context = azurerm_kubernetes_cluster.this.name
    clusters = [{
      name = azurerm_kubernetes_cluster.this.name
      cluster = {
        server                     = local.endpoint
        certificate-authority-data = local.certificate_authority_data
      }
    }]
    contexts = [{
      name = azurerm_kubernetes_cluster.this.name
      context = {
        cluster = azurerm_kubernetes_cluster.this.name
        user    = azurerm_kubernetes_cluster.this.name
      }
    }]
    users = [{
      name = azurerm_kubernetes_cluster.this.name
      user = {
        exec = {
          apiVersion = "client.authentication.k8s.io/v1beta1"
          command    = "kubelogin"
          args = [
            "get-token",
            "--login", "spn",
            "--server-id", local.aks_aad_server_app_id,
            "--environment", "AzurePublicCloud",
            "--tenant-id", var.tenant_id,
          ]
          interactiveMode = "Never"
          installHint     = "kubelogin is required for this Entra ID cluster: https://azure.github.io/kubelogin/install.html"
        }
      }
    }]
  })
}
