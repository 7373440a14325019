"""A local Kubernetes API test double (stateful, real HTTP) for the launcher's tests."""

from .server import FakeKubeApi
from .state import ClusterState, condition
from .status import ApiError

__all__ = ["ApiError", "ClusterState", "FakeKubeApi", "condition"]
