locals {
  gpu_node_groups = { for g in var.gpu_node_groups : g.name => g }
}

resource "aws_eks_node_group" "cpu" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "cpu"
  version         = aws_eks_cluster.this.version
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.public[*].id
  instance_types  = var.cpu_node_group.instance_types
  disk_size       = var.cpu_node_group.disk_size_gb
  capacity_type   = "ON_DEMAND"

  scaling_config {
    min_size     = var.cpu_node_group.min_size
    max_size     = var.cpu_node_group.max_size
    desired_size = var.cpu_node_group.desired_size
  }

  labels = {
    "budcluster.io/pool" = "cpu"
  }

  tags = {
    Name = "${var.cluster_name}-cpu"
  }

  lifecycle {
    # remote_access: this module never sets it, but moto's CreateNodegroup fills in
    # a default remote_access block (an SSH key and security group) that
    # DescribeNodegroup then returns; remote_access forces replacement, so without
    # this every later plan would replace the node group. Real EKS returns nothing.
    # scaling_config[0].desired_size: once the cluster runs, the cluster autoscaler
    # owns the desired size; Terraform sets it on creation only and must not scale
    # the group back on every apply.
    ignore_changes = [remote_access, scaling_config[0].desired_size]
  }

  # The node role needs its policies before the nodes can join, and must keep them
  # until the node group is gone, or EC2 instances are left behind on destroy.
  depends_on = [aws_iam_role_policy_attachment.node]
}

resource "aws_eks_node_group" "gpu" {
  for_each = local.gpu_node_groups

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "gpu-${each.key}"
  version         = aws_eks_cluster.this.version
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.public[*].id
  instance_types  = each.value.instance_types
  ami_type        = each.value.ami_type
  disk_size       = each.value.disk_size_gb
  capacity_type   = "ON_DEMAND"

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  # The fixed labels win over the caller's, so the scheduler's view of the pool is
  # always right.
  labels = merge(each.value.labels, {
    "budcluster.io/pool"     = "gpu"
    "nvidia.com/gpu.present" = "true"
  })

  # Only pods that tolerate the taint (GPU workloads) land on these expensive nodes.
  taint {
    key    = "nvidia.com/gpu"
    value  = "present"
    effect = "NO_SCHEDULE"
  }

  tags = {
    Name = "${var.cluster_name}-gpu-${each.key}"
  }

  lifecycle {
    # Same reasons as the cpu node group: moto adds a remote_access block that
    # would force a replacement on the next plan, and desired_size belongs to the
    # cluster autoscaler once the cluster runs.
    ignore_changes = [remote_access, scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}
