locals {
  gpu_pools = { for p in var.gpu_node_pools : p.name => p }
  # Set last, so a pool's own labels cannot override them.
  gpu_fixed_labels = {
    "budcluster.io/pool"     = "gpu"
    "nvidia.com/gpu.present" = "true"
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "gpu" {
  for_each = local.gpu_pools

  name                  = each.key
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  mode                  = "User"
  vm_size               = each.value.vm_size
  os_disk_size_gb       = each.value.os_disk_size_gb
  vnet_subnet_id        = azurerm_subnet.nodes.id
  orchestrator_version  = var.kubernetes_version

  auto_scaling_enabled = true
  min_count            = each.value.min_count
  max_count            = each.value.max_count
  node_count           = each.value.min_count

  # Only pods that tolerate the GPU taint (GPU workloads) land on these nodes.
  node_taints = ["nvidia.com/gpu=present:NoSchedule"]
  node_labels = merge(each.value.labels, local.gpu_fixed_labels)

  upgrade_settings {
    max_surge = "10%"
  }

  tags = local.tags

  lifecycle {
    # The cluster autoscaler owns the node count after creation.
    ignore_changes = [node_count]
  }
}
