data "aws_availability_zones" "available" {
  state = "available"

  # Only regular zones: Local Zones and Wavelength Zones (opt-in) cannot host
  # EKS control plane subnets.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  available_zones = data.aws_availability_zones.available.names
  azs             = slice(local.available_zones, 0, min(var.availability_zone_count, length(local.available_zones)))

  # Room for 16 subnets (a /20 each in the default /16), so up to 6 zones fit and
  # the rest of the VPC stays free for later private subnets.
  subnet_newbits = 4
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = "${var.cluster_name}-vpc"
  }

  lifecycle {
    precondition {
      condition     = length(local.available_zones) >= var.availability_zone_count
      error_message = "The region ${var.region} has ${length(local.available_zones)} available availability zones, fewer than availability_zone_count = ${var.availability_zone_count}."
    }
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.cluster_name}-igw"
  }
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, local.subnet_newbits, count.index)
  map_public_ip_on_launch = true

  tags = {
    Name                                        = "${var.cluster_name}-public-${local.azs[count.index]}"
    "kubernetes.io/role/elb"                    = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.cluster_name}-public"
  }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = length(aws_subnet.public)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}
