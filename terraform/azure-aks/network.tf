locals {
  # coalesce skips the empty string: "" means "<cluster_name>-rg".
  resource_group_name = coalesce(var.resource_group_name, "${var.cluster_name}-rg")
  tags                = merge(var.tags, { "managed-by" = "bud-serve-cluster" })
}

resource "azurerm_resource_group" "this" {
  name     = local.resource_group_name
  location = var.location
  tags     = local.tags
}

resource "azurerm_virtual_network" "this" {
  name                = "${var.cluster_name}-vnet"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.vnet_cidr]
  tags                = local.tags
}

# Nodes and (Azure CNI) pods of every pool take their addresses from this subnet.
resource "azurerm_subnet" "nodes" {
  name                 = "${var.cluster_name}-nodes"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.subnet_cidr]
}
