"""order-service: orders of products (contract: openapi/order.yaml)."""
