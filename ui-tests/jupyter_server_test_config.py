"""JupyterLab server for the galata tests: loopback, fixed port, no token,
state under ui-tests/.jupyter (run.sh sets the JUPYTER_* dirs)."""
import os

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821
configure_jupyter_server(c)
c.ServerApp.allow_root = True
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("AOOM_UI_PORT", "8899"))
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
c.ServerApp.root_dir = os.environ["AOOM_UI_ROOT"]
c.FileContentsManager.delete_to_trash = False
c.Application.log_level = "WARN"
