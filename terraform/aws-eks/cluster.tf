resource "aws_eks_cluster" "this" {
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = aws_subnet.public[*].id
    endpoint_public_access  = true
    endpoint_private_access = true
    public_access_cidrs     = var.endpoint_public_access_cidrs
  }

  tags = {
    Name = var.cluster_name
  }

  # EKS needs the policy in place to create (and, on destroy, to clean up) the
  # cluster's ENIs and security group; without this the role could lose it first.
  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_route_table_association.public,
    aws_route.public_internet,
  ]
}
