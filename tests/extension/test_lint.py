"""The determinism check for workflow code."""

from __future__ import annotations

import pytest

from nbconductor.extension.cell import compile_cell, parse_header
from nbconductor.extension.lint import Finding, check_workflow_source, format_findings


def calls(source: str, **kwargs) -> list[tuple[int, str, str]]:
    return [(f.line, f.call, f.replacement) for f in check_workflow_source(source, **kwargs)]


NOW, RANDOM, UUID, TASK = (
    "use nc.now()",
    "use nc.random()",
    "use nc.uuid4()",
    "move this into a task",
)


@pytest.mark.parametrize(
    ("source", "call", "replacement"),
    [
        ("import time\nx = 1\nt = time.time()", "time.time()", NOW),
        ("import time\nx = 1\nt = time.time_ns()", "time.time_ns()", NOW),
        ("import time\nx = 1\nt = time.monotonic()", "time.monotonic()", NOW),
        ("import time\nx = 1\nt = time.perf_counter()", "time.perf_counter()", NOW),
        ("import datetime\nx = 1\nd = datetime.datetime.now()", "datetime.datetime.now()", NOW),
        (
            "import datetime\nx = 1\nd = datetime.datetime.utcnow()",
            "datetime.datetime.utcnow()",
            NOW,
        ),
        ("import datetime\nx = 1\nd = datetime.datetime.today()", "datetime.datetime.today()", NOW),
        ("import datetime\nx = 1\nd = datetime.date.today()", "datetime.date.today()", NOW),
        ("import random\nx = 1\nr = random.random()", "random.random()", RANDOM),
        ("import random\nx = 1\nr = random.randint(1, 6)", "random.randint()", RANDOM),
        ("import random\nx = 1\nr = random.Random()", "random.Random()", RANDOM),
        ("import uuid\nx = 1\nu = uuid.uuid4()", "uuid.uuid4()", UUID),
        ("import uuid\nx = 1\nu = uuid.uuid1()", "uuid.uuid1()", UUID),
        (
            "import time\nx = 1\ntime.sleep(5)",
            "time.sleep()",
            "use await nc.sleep(...) or await asyncio.sleep(...)",
        ),
        ("x = 1\ny = 2\nwith open('f') as fh: pass", "open()", TASK),
        ("import os\nx = 1\nhome = os.environ['HOME']", "os.environ", TASK),
        ("import os\nx = 1\nhome = os.environ.get('HOME')", "os.environ", TASK),
        ("import os\nx = 1\nhome = os.getenv('HOME')", "os.getenv()", TASK),
        ("import requests\nx = 1\nr = requests.get(url)", "requests.get()", TASK),
        (
            "import httpx\nx = 1\nr = await httpx.AsyncClient().get(url)",
            "httpx.AsyncClient()",
            TASK,
        ),
        (
            "import urllib.request\nx = 1\nr = urllib.request.urlopen(url)",
            "urllib.request.urlopen()",
            TASK,
        ),
        (
            "import socket\nx = 1\ns = socket.create_connection(a)",
            "socket.create_connection()",
            TASK,
        ),
        ("import subprocess\nx = 1\nsubprocess.run(['ls'])", "subprocess.run()", TASK),
        ("import os\nx = 1\nos.system('ls')", "os.system()", TASK),
        ("x = 1\ny = 2\nget_ipython().system('ls')", "get_ipython()", TASK),
    ],
)
def test_each_category_is_found_on_its_line(source: str, call: str, replacement: str) -> None:
    assert calls(source) == [(3, call, replacement)]


@pytest.mark.parametrize(
    ("source", "call"),
    [
        ("import time as t\nt.time()", "time.time()"),
        ("from time import time\ntime()", "time.time()"),
        ("from time import sleep as nap\nnap(1)", "time.sleep()"),
        ("from datetime import datetime\ndatetime.now()", "datetime.datetime.now()"),
        ("from datetime import datetime as dt\ndt.utcnow()", "datetime.datetime.utcnow()"),
        ("from datetime import date\ndate.today()", "datetime.date.today()"),
        ("import datetime as d\nd.datetime.now()", "datetime.datetime.now()"),
        ("from random import choice\nchoice(xs)", "random.choice()"),
        ("import random as rnd\nrnd.shuffle(xs)", "random.shuffle()"),
        ("from uuid import uuid4\nuuid4()", "uuid.uuid4()"),
        ("import urllib.request as ur\nur.urlopen(u)", "urllib.request.urlopen()"),
        ("from urllib import request\nrequest.urlopen(u)", "urllib.request.urlopen()"),
        ("from os import environ\nenviron['HOME']", "os.environ"),
        ("from subprocess import check_output as co\nco(['ls'])", "subprocess.check_output()"),
        ("import numpy as np\nnp.random.rand()", "numpy.random.rand()"),
    ],
)
def test_import_aliases_in_the_source_are_resolved(source: str, call: str) -> None:
    assert [c for _, c, _ in calls(source)] == [call]


@pytest.mark.parametrize(
    "source",
    [
        "import time\ntime.time()",
        "time.time()",  # `time` imported in an earlier cell
        "datetime.now()",  # `from datetime import datetime` in an earlier cell
        "date.today()",
    ],
)
def test_unbound_names_are_taken_as_the_modules_they_name(source: str) -> None:
    assert len(check_workflow_source(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "await asyncio.sleep(5)",  # a durable timer inside a workflow
        "import asyncio as aio\nawait aio.sleep(1)",
        "random = make_rng()\nrandom.random()",
        "x = random.random()\nrandom = 3",  # an assignment anywhere makes the name local
        "for random in rngs:\n    random.random()",
        "with make() as time:\n    time.time()",
        "def pick(random):\n    return random.choice([1])",
        "try:\n    pass\nexcept E as uuid:\n    uuid.uuid4()",
        "from .helpers import time\ntime.time()",
        "x = [time.time for time in clocks]",
        "now = nc.now()\nr = nc.random()\nu = nc.uuid4()",
        "import uuid\nuuid.uuid5(ns, 'name')",  # deterministic
        "import os\nos.path.join('a', 'b')",
        "import requests\ntry:\n    pass\nexcept requests.HTTPError:\n    pass",
    ],
)
def test_no_false_positives(source: str) -> None:
    assert check_workflow_source(source) == []


def test_functions_decorated_as_tasks_are_skipped() -> None:
    source = (
        "@task\ndef a():\n    return time.time()\n"
        "@nc.task(retry=r)\nasync def b():\n    return random.random()\n"
        "def helper():\n    return time.time()\n"
        "lam = lambda: uuid.uuid4()\n"
    )
    assert calls(source) == [(8, "time.time()", NOW), (9, "uuid.uuid4()", UUID)]


def test_lines_and_columns_are_relative_to_the_cell() -> None:
    source = "x = 1\nif x:\n    t = time.time()\n"
    (finding,) = check_workflow_source(source, first_line=2)
    assert finding == Finding(
        line=4,
        col=8,
        call="time.time()",
        message="makes replay non-deterministic",
        replacement="use nc.now()",
    )


def test_findings_come_in_source_order() -> None:
    source = "def f():\n    time.sleep(1)\nrandom.random()\nif x:\n    uuid.uuid4()\n"
    assert [f.line for f in check_workflow_source(source)] == [2, 3, 5]


def test_source_that_does_not_parse_gives_no_findings() -> None:
    assert check_workflow_source("!ls\nx = (") == []


def test_names_from_earlier_cells_resolve_through_the_namespace(shell) -> None:
    shell.run_cell(
        "import time as clock\nfrom random import choice as pick\n"
        "from datetime import datetime as DT\nfrom os import environ as ENV\n"
        "from os import system\nrandom = 4\nuuid = 'not the module'"
    )
    source = (
        "a = clock.time()\nb = pick([1])\nc = DT.now()\nd = ENV['X']\nsystem('ls')\n"
        "e = random.bit_length()\nf = uuid.upper()\n"
    )
    found = calls(source, namespace=shell.user_ns)
    assert [(line, call) for line, call, _ in found] == [
        (1, "time.time()"),
        (2, "random.choice()"),
        (3, "datetime.datetime.now()"),
        (4, "os.environ"),
        (5, "os.system()"),
    ]
    # Without the namespace `clock` and `pick` mean nothing, and `random` is a module.
    assert [call for _, call, _ in calls(source)] == ["random.bit_length()"]


def test_get_ipython_from_a_transformed_cell_is_found_on_the_cells_line(shell) -> None:
    header = parse_header("order(random)", kind="workflow")
    body = "x = random.random()\n!ls\nreturn x\n"
    compiled = compile_cell(shell, header, body, kind="workflow")
    found = calls(compiled.source, namespace=shell.user_ns, function=compiled.name)
    # `random` is the parameter here; `!ls` became get_ipython().system('ls') on line 3.
    assert found == [(3, "get_ipython()", TASK)]


def test_only_the_named_function_is_workflow_code(shell) -> None:
    # A one-def cell: what runs around the def runs once, when the cell runs.
    shell.run_cell("def decorate(_):\n    return lambda fn: fn")
    cell = (
        "import time as clock\nSTARTED = clock.time()\n\n@decorate(clock.time())\n"
        "async def order():\n    return clock.time()\n\nhelper = lambda: clock.time()\n"
    )
    compiled = compile_cell(shell, parse_header("", kind="workflow"), cell, kind="workflow")
    found = calls(compiled.source, namespace=shell.user_ns, function=compiled.name)
    assert found == [(7, "time.time()", NOW)]  # the cell's line 7 (the magic line is 1)
    assert len(check_workflow_source(compiled.source)) == 4


def test_format_findings() -> None:
    findings = check_workflow_source("x = 1\ny = 2\nt = time.time()\nrequests.get(u)", first_line=1)
    assert format_findings(findings) == (
        "This workflow may not replay the same way after a restart:\n"
        "  line 3: time.time() makes replay non-deterministic → use nc.now()\n"
        "  line 4: requests.get() does I/O, which every replay would repeat → move this into a task\n"
        "(a warning only; add --no-lint to the magic line to skip this check)"
    )
    assert format_findings([]) == ""
