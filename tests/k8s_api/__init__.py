"""A local Kubernetes API test double (stateful, real HTTP) for the launcher's tests."""

from .server import FakeKubeApi
from .state import ApiError, ClusterState, condition

__all__ = ["ApiError", "ClusterState", "FakeKubeApi", "condition"]
