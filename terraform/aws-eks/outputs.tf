output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "region" {
  description = "AWS region the cluster is in."
  value       = var.region
}

output "endpoint" {
  description = "HTTPS endpoint of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "certificate_authority_data" {
  description = "Base64-encoded certificate of the cluster's certificate authority, as EKS returns it."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_group_names" {
  description = "Names of the managed node groups: cpu first, then gpu-<name> for each GPU group."
  value = concat(
    [aws_eks_node_group.cpu.node_group_name],
    [for g in var.gpu_node_groups : aws_eks_node_group.gpu[g.name].node_group_name],
  )
}

output "kubeconfig" {
  description = "Kubeconfig (YAML) for the cluster. It holds no credential: kubectl gets a short-lived token by running `aws eks get-token` with the caller's AWS credentials."
  value = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    preferences     = {}
    current-context = aws_eks_cluster.this.name
    clusters = [{
      name = aws_eks_cluster.this.name
      cluster = {
        server                     = aws_eks_cluster.this.endpoint
        certificate-authority-data = aws_eks_cluster.this.certificate_authority[0].data
      }
    }]
    contexts = [{
      name = aws_eks_cluster.this.name
      context = {
        cluster = aws_eks_cluster.this.name
        user    = aws_eks_cluster.this.name
      }
    }]
    users = [{
      name = aws_eks_cluster.this.name
      user = {
        exec = {
          apiVersion      = "client.authentication.k8s.io/v1beta1"
          command         = "aws"
          args            = ["eks", "get-token", "--cluster-name", aws_eks_cluster.this.name, "--region", var.region, "--output", "json"]
          interactiveMode = "Never"
        }
      }
    }]
  })
}
