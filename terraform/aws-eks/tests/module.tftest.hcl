# Offline tests: the aws provider is mocked, so no account, credentials or network
# are needed. Run with
#   terraform init -backend=false && terraform test

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  # The mock would otherwise invent strings that are not JSON policies.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/mock"
    }
  }

  # certificate_authority is a computed block list the mock leaves empty; the
  # outputs index it.
  mock_resource "aws_eks_cluster" {
    defaults = {
      endpoint = "https://MOCK.gr7.us-east-1.eks.amazonaws.com"
      certificate_authority = [
        { data = "bW9jay1jYQ==" },
      ]
    }
  }
}

variables {
  cluster_name = "bud-test"
  region       = "us-east-1"
}

run "defaults_plan" {
  command = plan

  assert {
    condition     = length(aws_subnet.public) == 2
    error_message = "By default the module must create one public subnet in each of 2 availability zones."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch && s.tags["kubernetes.io/role/elb"] == "1" && s.tags["kubernetes.io/cluster/bud-test"] == "shared"])
    error_message = "Public subnets must map public IPs and carry the ELB role and cluster tags."
  }

  assert {
    condition     = toset([for s in aws_subnet.public : s.availability_zone]) == toset(["us-east-1a", "us-east-1b"])
    error_message = "The subnets must use the first two available zones."
  }

  assert {
    condition     = aws_eks_cluster.this.version == "1.31" && aws_eks_cluster.this.vpc_config[0].endpoint_public_access && aws_eks_cluster.this.vpc_config[0].endpoint_private_access
    error_message = "The cluster must run Kubernetes 1.31 by default with both public and private endpoints."
  }

  assert {
    condition     = aws_eks_node_group.cpu.labels["budcluster.io/pool"] == "cpu" && aws_eks_node_group.cpu.scaling_config[0].desired_size == 1
    error_message = "The cpu node group must be labelled budcluster.io/pool=cpu and start with one node."
  }

  assert {
    condition     = length(aws_eks_node_group.gpu) == 0
    error_message = "No GPU node group is created by default."
  }

  assert {
    condition     = output.node_group_names == ["cpu"]
    error_message = "node_group_names must list only the cpu node group by default."
  }
}

run "gpu_group_apply" {
  command = apply

  variables {
    availability_zone_count = 3
    tags                    = { team = "ml" }
    gpu_node_groups = [
      {
        name           = "a10g"
        instance_types = ["g5.2xlarge"]
        min_size       = 0
        max_size       = 2
        desired_size   = 1
        labels         = { "budcluster.io/gpu-model" = "A10G" }
      },
    ]
  }

  assert {
    condition     = length(aws_subnet.public) == 3
    error_message = "availability_zone_count = 3 must create three subnets."
  }

  assert {
    condition = (
      length(aws_eks_node_group.gpu["a10g"].taint) == 1 &&
      one(aws_eks_node_group.gpu["a10g"].taint).key == "nvidia.com/gpu" &&
      one(aws_eks_node_group.gpu["a10g"].taint).value == "present" &&
      one(aws_eks_node_group.gpu["a10g"].taint).effect == "NO_SCHEDULE"
    )
    error_message = "The GPU node group must carry exactly the nvidia.com/gpu=present:NoSchedule taint."
  }

  assert {
    condition = aws_eks_node_group.gpu["a10g"].labels == tomap({
      "budcluster.io/pool"      = "gpu"
      "nvidia.com/gpu.present"  = "true"
      "budcluster.io/gpu-model" = "A10G"
    })
    error_message = "The GPU node group labels must merge the caller's labels with budcluster.io/pool=gpu and nvidia.com/gpu.present=true."
  }

  assert {
    condition     = aws_eks_node_group.gpu["a10g"].ami_type == "AL2_x86_64_GPU" && aws_eks_node_group.gpu["a10g"].disk_size == 200
    error_message = "The GPU node group must default to the AL2_x86_64_GPU AMI and a 200 GB disk."
  }

  assert {
    condition     = output.node_group_names == ["cpu", "gpu-a10g"]
    error_message = "node_group_names must list cpu, then gpu-<name>."
  }

  assert {
    condition     = yamldecode(output.kubeconfig)["current-context"] == "bud-test"
    error_message = "The kubeconfig must select the context named after the cluster."
  }

  assert {
    condition     = yamldecode(output.kubeconfig).clusters[0].cluster.server == "https://MOCK.gr7.us-east-1.eks.amazonaws.com" && yamldecode(output.kubeconfig).clusters[0].cluster["certificate-authority-data"] == "bW9jay1jYQ=="
    error_message = "The kubeconfig must point at the cluster endpoint with its CA data."
  }

  assert {
    condition = yamldecode(output.kubeconfig).users[0].user.exec == {
      apiVersion      = "client.authentication.k8s.io/v1beta1"
      command         = "aws"
      args            = ["eks", "get-token", "--cluster-name", "bud-test", "--region", "us-east-1", "--output", "json"]
      interactiveMode = "Never"
    }
    error_message = "The kubeconfig user must get its token from the aws eks get-token exec plugin for this cluster."
  }

  assert {
    condition     = output.certificate_authority_data == "bW9jay1jYQ==" && output.cluster_name == "bud-test" && output.region == "us-east-1"
    error_message = "The outputs must pass the cluster's name, region and CA data through unchanged."
  }
}

run "bad_cluster_name" {
  command = plan

  variables {
    cluster_name = "-not valid!"
  }

  expect_failures = [var.cluster_name]
}

run "too_long_cluster_name" {
  command = plan

  variables {
    cluster_name = "a${join("", [for i in range(100) : "b"])}"
  }

  expect_failures = [var.cluster_name]
}

run "cpu_min_above_desired" {
  command = plan

  variables {
    cpu_node_group = {
      instance_types = ["m6i.xlarge"]
      min_size       = 2
      max_size       = 3
      desired_size   = 1
    }
  }

  expect_failures = [var.cpu_node_group]
}

run "gpu_min_above_desired" {
  command = plan

  variables {
    gpu_node_groups = [
      { name = "a10g", instance_types = ["g5.2xlarge"], min_size = 2, max_size = 3, desired_size = 1 },
    ]
  }

  expect_failures = [var.gpu_node_groups]
}

run "gpu_duplicate_names" {
  command = plan

  variables {
    gpu_node_groups = [
      { name = "a10g", instance_types = ["g5.2xlarge"], min_size = 0, max_size = 1, desired_size = 0 },
      { name = "a10g", instance_types = ["g5.4xlarge"], min_size = 0, max_size = 1, desired_size = 0 },
    ]
  }

  expect_failures = [var.gpu_node_groups]
}

run "one_zone_is_refused" {
  command = plan

  variables {
    availability_zone_count = 1
  }

  expect_failures = [var.availability_zone_count]
}

run "bad_public_access_cidr" {
  command = plan

  variables {
    endpoint_public_access_cidrs = ["0.0.0.0/0", "not-a-cidr"]
  }

  expect_failures = [var.endpoint_public_access_cidrs]
}

run "more_zones_than_the_region_has" {
  command = plan

  # The mocked region has four zones.
  variables {
    availability_zone_count = 5
  }

  expect_failures = [aws_vpc.this]
}

run "al2_gpu_ami_on_new_kubernetes" {
  command = plan

  variables {
    kubernetes_version = "1.33"
    gpu_node_groups = [
      { name = "a10g", instance_types = ["g5.2xlarge"], min_size = 0, max_size = 1, desired_size = 0 },
    ]
  }

  expect_failures = [var.gpu_node_groups]
}

run "al2023_gpu_ami_on_new_kubernetes" {
  command = plan

  variables {
    kubernetes_version = "1.33"
    gpu_node_groups = [
      { name = "a10g", instance_types = ["g5.2xlarge"], min_size = 0, max_size = 1, desired_size = 0, ami_type = "AL2023_x86_64_NVIDIA" },
    ]
  }

  assert {
    condition     = aws_eks_node_group.gpu["a10g"].ami_type == "AL2023_x86_64_NVIDIA"
    error_message = "An AL2023 NVIDIA AMI must be accepted on Kubernetes 1.33."
  }
}
