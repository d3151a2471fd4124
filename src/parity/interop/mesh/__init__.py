"""MESH transport (``mesh-client``): configuration and directory, the trust's outbox, the practice's inbox.

``config`` reads the MESH file (server, mailboxes, practice directory, workflow ID); ``outbox`` sends
queued checks once each with retries and tracks them to ``acknowledged``; ``inbox`` polls practice
mailboxes, files each check once and acknowledges only after the filing is committed.
"""

from parity.interop.mesh.config import Mailbox, MeshConfig, load_mesh_config, parse_mesh_config

__all__ = ["Mailbox", "MeshConfig", "load_mesh_config", "parse_mesh_config"]
