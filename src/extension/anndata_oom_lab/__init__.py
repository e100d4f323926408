"""JupyterLab extension for anndata-oom (the prebuilt labextension ships as shared data)."""

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "anndata-oom-lab"}]
