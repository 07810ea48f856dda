from order_service.repository import metadata
from service_kit.migrations import run_env

run_env(metadata)
