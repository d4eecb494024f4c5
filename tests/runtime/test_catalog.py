"""The catalog is the one list of services: a stage added in a package of its own plus one catalog entry is started
by the local stack (wired to the service it calls), rendered into the Kubernetes base and documented in the settings
reference, with no other list to edit."""

from __future__ import annotations

import os
import textwrap

import pytest
import yaml

from learnerfit.catalog import CATALOG, Catalog, Pod, Service
from learnerfit.domain import topics
from learnerfit.generate.manifests import render
from learnerfit.generate.reference import reference
from learnerfit.local.stack import LocalStack
from learnerfit.runtime.bus import Bus
from learnerfit.v1 import records_pb2
from tests.kafka_helpers import read_topic

ECHO = textwrap.dedent('''
    """Echo: one learner sample per problem, the problem's reference answer."""
    from typing import ClassVar

    from learnerfit.domain import topics
    from learnerfit.registry.client import RegistryAccess
    from learnerfit.runtime.app import run
    from learnerfit.runtime.settings import ServiceSettings, StageSettings
    from learnerfit.runtime.spec import Parts, ServiceSpec
    from learnerfit.runtime.stage import StageLogic, StageSpec
    from learnerfit.v1 import records_pb2, services_pb2


    class EchoSettings(ServiceSettings):
        """Echo: one learner sample per problem, the problem's reference answer."""

        service_name: ClassVar[str] = "echo"
        registry: RegistryAccess = RegistryAccess()
        stage: StageSettings = StageSettings(max_batch=4, max_wait_s=0.05)


    def echo(problems):
        return [records_pb2.Trajectory(id=f"echo-{p.id}", problem=p, text=f"Final answer: {p.reference_answer}")
                for p in problems]


    def build(settings, context):
        generate = lambda request: services_pb2.GenerateResponse(trajectories=echo(request.problems))
        return Parts(rpcs={"Generate": generate}, stage=StageLogic(echo))


    SPEC = ServiceSpec(name="echo", settings=EchoSettings, api=services_pb2.DESCRIPTOR.services_by_name["Generator"],
                       build=build, stage=StageSpec(consumes=[topics.PROBLEMS], input_type=records_pb2.Problem,
                                                    produces={records_pb2.Trajectory: topics.TRAJECTORIES}))

    if __name__ == "__main__":
        run(SPEC)
''')


@pytest.fixture()
def with_echo(tmp_path, monkeypatch) -> Catalog:
    package = tmp_path / "mystages"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "echo.py").write_text(ECHO)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    return CATALOG.with_service(Service("echo", "mystages.echo", Pod("100m", "128Mi"), calls=("registry",)))


def test_a_stage_added_to_the_catalog_is_started_wired_and_runs_on_the_local_stack(tmp_path, with_echo):
    stack = LocalStack(tmp_path / "stack", services=("registry", "echo"), catalog=with_echo, start_timeout_s=120,
                       config={"registry": {"registry_dir": str(tmp_path / "registry")}})
    with stack:
        config = yaml.safe_load((tmp_path / "stack" / "config" / "echo.yaml").read_text())
        assert config["registry"]["target"] == stack.state.services["registry"].grpc_target
        bus = Bus(stack.state.bootstrap_servers, client_id="catalog-test")
        try:
            bus.publish([(topics.PROBLEMS, records_pb2.Problem(id="p1", question="Calculate 1 + 1.",
                                                               reference_answer="2"))])
            [record] = read_topic(bus, topics.TRAJECTORIES, at_least=1, timeout_s=60)
        finally:
            bus.close()
    assert records_pb2.Trajectory.FromString(record.value).text == "Final answer: 2"


def test_a_stage_added_to_the_catalog_is_deployed_and_documented(with_echo):
    files = render(with_echo)
    assert "config/echo.yaml" in files and "echo.yaml" in files["kustomization.yaml"]
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(files["echo.yaml"]) if o}
    user = objects[("KafkaUser", "echo")]
    acls = {a["resource"]["name"]: a["operations"] for a in user["spec"]["authorization"]["acls"]}
    assert acls[topics.PROBLEMS] == ["Read", "Describe"] and acls[topics.TRAJECTORIES] == ["Write", "Describe"]
    assert yaml.safe_load(files["config/echo.yaml"].split("\n", 1)[1])["registry"]["target"] == "registry:50051"
    # The registry admits its new caller, and the caller may reach it.
    registry_policy = next(o for o in yaml.safe_load_all(files["registry.yaml"]) if o and o["kind"] == "NetworkPolicy")
    admitted = [f["podSelector"]["matchLabels"] for f in registry_policy["spec"]["ingress"][0]["from"]]
    assert {"app.kubernetes.io/name": "echo"} in admitted
    egress = objects[("NetworkPolicy", "echo")]["spec"]["egress"]
    to_registry = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "registry"}}}]
    assert any(rule["to"] == to_registry for rule in egress)
    text = reference(with_echo)
    assert "## echo" in text and "LEARNERFIT_STAGE__MAX_BATCH" in text and "LEARNERFIT_REGISTRY__TARGET" in text


def test_the_catalog_refuses_a_caller_of_an_unknown_or_later_service():
    with pytest.raises(ValueError, match="calls nowhere, which the catalog does not list"):
        CATALOG.with_service(Service("lost", "x", Pod("1", "1Gi"), calls=("nowhere",)))
    with pytest.raises(ValueError, match="calls late, listed after it"):
        Catalog((Service("early", "x", Pod("1", "1Gi"), calls=("late",)), Service("late", "y", Pod("1", "1Gi"))))
    with pytest.raises(KeyError, match="no service 'nope' in the catalog; one of registry, trainer"):
        CATALOG.get("nope")
