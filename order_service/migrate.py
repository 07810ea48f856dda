"""`python -m order_service.migrate`: ORDER_DATABASE_URL's schema to the newest revision
(`--check`: only whether it is there)."""

import sys

from order_service.config import load_config
from service_kit.config import exit_on_config_error
from service_kit.process.files import keep_files_private
from service_kit.storage.migrations import migrate_main

SCRIPT_LOCATION = "order_service:migrations"


def main() -> None:
    keep_files_private()
    migrate_main(SCRIPT_LOCATION, exit_on_config_error(load_config).database_url, sys.argv[1:])


if __name__ == "__main__":
    main()
