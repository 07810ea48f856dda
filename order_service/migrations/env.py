from order_service.repository import metadata
from service_kit.storage.migrations import run_env

run_env(metadata)
