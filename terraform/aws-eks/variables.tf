variable "cluster_name" {
  description = "Name of the EKS cluster; also used in the names and tags of the resources around it."
  type        = string
  nullable    = false

  validation {
    condition     = length(var.cluster_name) >= 1 && length(var.cluster_name) <= 100
    error_message = "The cluster_name variable must be 1 to 100 characters long (the EKS limit)."
  }

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]*$", var.cluster_name))
    error_message = "The cluster_name variable must start with a letter or digit and contain only letters, digits, hyphens and underscores."
  }
}

variable "region" {
  description = "AWS region to create the cluster in, for example us-east-1."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "The region variable must be an AWS region code such as us-east-1 or eu-central-1."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the managed node groups, for example 1.31."
  type        = string
  default     = "1.31"
  nullable    = false

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version variable must be a Kubernetes minor version such as \"1.31\" (no patch number)."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC; it is split into one public subnet per availability zone."
  type        = string
  default     = "10.42.0.0/16"
  nullable    = false

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "The vpc_cidr variable must be a CIDR block such as 10.42.0.0/16."
  }

  validation {
    # A VPC takes /16 to /28; past /24 the subnets (a sixteenth each) are too small
    # for a node group's ENIs and pod IPs.
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/(1[6-9]|2[0-4])$", var.vpc_cidr))
    error_message = "The vpc_cidr variable must be an IPv4 block with a prefix length from /16 to /24."
  }
}

variable "availability_zone_count" {
  description = "How many availability zones to spread the subnets over (EKS needs subnets in at least 2)."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 6 && floor(var.availability_zone_count) == var.availability_zone_count
    error_message = "The availability_zone_count variable must be a whole number from 2 to 6 (EKS needs subnets in at least two zones)."
  }
}

variable "endpoint_public_access_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the public Kubernetes API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = length(var.endpoint_public_access_cidrs) >= 1
    error_message = "The endpoint_public_access_cidrs variable must list at least one CIDR block."
  }

  validation {
    condition     = alltrue([for c in var.endpoint_public_access_cidrs : can(cidrhost(c, 0))])
    error_message = "Every entry of the endpoint_public_access_cidrs variable must be a CIDR block such as 203.0.113.0/24."
  }
}

variable "cpu_node_group" {
  description = "The managed node group for system and CPU workloads (labelled budcluster.io/pool=cpu)."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gb   = optional(number, 50)
  })
  default = {
    instance_types = ["m6i.xlarge"]
    min_size       = 1
    max_size       = 3
    desired_size   = 1
  }
  nullable = false

  validation {
    condition     = length(var.cpu_node_group.instance_types) >= 1
    error_message = "The cpu_node_group variable must list at least one instance type in instance_types."
  }

  validation {
    condition = (
      var.cpu_node_group.min_size >= 0 &&
      var.cpu_node_group.max_size >= 1 &&
      var.cpu_node_group.min_size <= var.cpu_node_group.desired_size &&
      var.cpu_node_group.desired_size <= var.cpu_node_group.max_size
    )
    error_message = "The cpu_node_group variable must have 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = var.cpu_node_group.disk_size_gb >= 20
    error_message = "The cpu_node_group variable's disk_size_gb must be at least 20."
  }
}

variable "gpu_node_groups" {
  description = "Managed GPU node groups, tainted nvidia.com/gpu=present:NoSchedule and labelled budcluster.io/pool=gpu. Each one is named gpu-<name> in the cluster."
  type = list(object({
    name           = string
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    ami_type       = optional(string, "AL2_x86_64_GPU")
    disk_size_gb   = optional(number, 200)
    labels         = optional(map(string), {})
  }))
  default  = []
  nullable = false

  validation {
    condition     = length(distinct([for g in var.gpu_node_groups : g.name])) == length(var.gpu_node_groups)
    error_message = "The gpu_node_groups variable must not contain two entries with the same name."
  }

  validation {
    # The node group is named gpu-<name>; EKS allows 63 characters.
    condition     = alltrue([for g in var.gpu_node_groups : can(regex("^[a-z0-9]([-a-z0-9]{0,57}[a-z0-9])?$", g.name))])
    error_message = "Every name in the gpu_node_groups variable must be 1 to 59 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
  }

  validation {
    condition     = alltrue([for g in var.gpu_node_groups : length(g.instance_types) >= 1])
    error_message = "Every entry of the gpu_node_groups variable must list at least one instance type in instance_types."
  }

  validation {
    condition = alltrue([
      for g in var.gpu_node_groups :
      g.min_size >= 0 && g.max_size >= 1 && g.min_size <= g.desired_size && g.desired_size <= g.max_size
    ])
    error_message = "Every entry of the gpu_node_groups variable must have 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = alltrue([for g in var.gpu_node_groups : g.disk_size_gb >= 20])
    error_message = "Every entry of the gpu_node_groups variable must have disk_size_gb of at least 20."
  }

  validation {
    condition = alltrue([
      for g in var.gpu_node_groups : contains([
        "AL2_x86_64_GPU",
        "AL2023_x86_64_NVIDIA",
        "AL2023_ARM_64_NVIDIA",
        "BOTTLEROCKET_x86_64_NVIDIA",
        "BOTTLEROCKET_ARM_64_NVIDIA",
      ], g.ami_type)
    ])
    error_message = "Every ami_type in the gpu_node_groups variable must be a GPU AMI type: AL2_x86_64_GPU, AL2023_x86_64_NVIDIA, AL2023_ARM_64_NVIDIA, BOTTLEROCKET_x86_64_NVIDIA or BOTTLEROCKET_ARM_64_NVIDIA."
  }

  validation {
    # EKS publishes no Amazon Linux 2 AMIs for Kubernetes 1.33 and later.
    condition = !(
      try(tonumber(split(".", var.kubernetes_version)[1]), 0) >= 33 &&
      anytrue([for g in var.gpu_node_groups : startswith(g.ami_type, "AL2_")])
    )
    error_message = "The gpu_node_groups variable uses an AL2_ ami_type, which EKS does not offer for kubernetes_version 1.33 and later; use AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA."
  }
}

variable "tags" {
  description = "Tags added to every resource (with managed-by = bud-serve-cluster)."
  type        = map(string)
  default     = {}
  nullable    = false
}
