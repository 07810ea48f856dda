"""product-service: products and their stock (contract: openapi/product.yaml)."""
