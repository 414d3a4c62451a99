"""The Jupyter server extension: REST API, task queue, task store and report serving."""
