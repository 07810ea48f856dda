"""The processes: adapters chosen by URL, worker processes, gunicorn and its worker class."""
