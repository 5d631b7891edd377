"""Which transport a standalone agent gets (construction only: nothing is opened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmaster import JobMaster
from jobmaster.agents.master_queue import MasterQueue
from jobmaster.agents.mysql import MysqlAgent
from jobmaster.agents.postgres import PostgresAgent
from jobmaster.runtime.runtime import Runtime


@pytest.mark.parametrize("master", ["sqlite:///{tmp}/jobs.db", "postgresql://postgres@127.0.0.1:5432/jobs"])
def test_a_standalone_agent_is_the_job_table_where_the_master_hosts_queues(
    master: str, tmp_path: Path
) -> None:
    app = JobMaster("c1", master.format(tmp=tmp_path), agents={"far": "postgresql://db-host/transport"})
    agents = Runtime(app.services).agents
    assert isinstance(agents["standalone"], MasterQueue)
    assert isinstance(agents["far"], PostgresAgent)


def test_a_mysql_master_keeps_its_standalone_queues_in_agent_tables() -> None:
    app = JobMaster("c1", "mysql://root@127.0.0.1:3306/jobs")
    assert isinstance(Runtime(app.services).agents["standalone"], MysqlAgent)
