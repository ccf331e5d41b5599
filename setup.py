"""Package discovery for the ``pgradar.*`` namespace (everything else is in pyproject.toml).

The source folders (agent/, commands/, exporters/, dashboards/, alerts/) are mapped onto
``pgradar.agent``, ``pgradar.commands``, ... with ``package-dir``. setuptools
cannot add that prefix when it discovers packages, so this file does it: every
folder under a mapped folder is found with namespace discovery (SQL folders
included, so their files ship as package data) and named under ``pgradar.``.
A hand-written list once left ``pgradar.agent.classifiers`` out of the wheel
while every test, run from the editable checkout, still passed.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = ("agent", "commands", "exporters", "dashboards", "alerts")

setup(
    packages=[
        f"pgradar.{name}"
        for name in find_namespace_packages(
            include=[f"{folder}{tail}" for folder in FOLDERS for tail in ("", ".*")],
            exclude=["*.__pycache__", "*.__pycache__.*"],
        )
    ]
)
