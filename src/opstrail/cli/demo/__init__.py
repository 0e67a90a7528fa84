"""``opstrail demo``: the whole path on the embedded defaults, driven over HTTP."""
