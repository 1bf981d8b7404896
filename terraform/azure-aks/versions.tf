terraform {
  # >= 1.10: input validations below refer to other variables (1.9+), and the
  # azurerm backend's blob-lease locking is the one documented for this line.
  required_version = ">= 1.10"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }

  # Partial configuration: nothing is written here. Fill it at init time, e.g.
  #   terraform init \
  #     -backend-config="resource_group_name=<state rg>" \
  #     -backend-config="storage_account_name=<state account>" \
  #     -backend-config="container_name=tfstate" \
  #     -backend-config="key=aks/<cluster_name>.tfstate"
  # The azurerm backend locks the state with a lease on the state blob.
  backend "azurerm" {}
}

# Credentials come only from the environment (ARM_TENANT_ID, ARM_CLIENT_ID,
# ARM_CLIENT_SECRET or another ARM_* method); nothing secret is configured here.
provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
}
