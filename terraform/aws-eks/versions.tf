terraform {
  # 1.10 is the first release whose S3 backend can lock with a lock file in the
  # bucket itself (use_lockfile = true), so no DynamoDB table is needed.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6"
    }
  }

  # Partial configuration: bucket, key, region and use_lockfile are given at init,
  # for example
  #   terraform init -backend-config=bucket=B -backend-config=key=K \
  #     -backend-config=region=R -backend-config=use_lockfile=true
  # so that no account-specific value lives in this module.
  backend "s3" {}
}

provider "aws" {
  region = var.region

  # Every taggable resource gets the caller's tags plus managed-by, which the
  # caller cannot override.
  default_tags {
    tags = merge(var.tags, { "managed-by" = "bud-serve-cluster" })
  }
}
