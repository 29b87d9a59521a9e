"""Print pins for mcpserve's runtime dependencies as installed in this environment.

`make image` installs exactly the versions the test suite ran against: the closure of
mcpserve's requirements (extras included, as uvicorn[standard]), read from the installed
distributions' metadata, one ``name==version`` a line.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement


def closure(root: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        dist = metadata.distribution(name)
        key = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if key != root:
            pins[key] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            environments = [{**default_environment(), "extra": e} for e in (extras or {""})]
            if requirement.marker is None or any(requirement.marker.evaluate(e) for e in environments):
                seen = re.sub(r"[-_.]+", "-", requirement.name).lower()
                if seen not in pins:
                    todo.append((requirement.name, frozenset(requirement.extras)))
    return pins


if __name__ == "__main__":
    for name, version in sorted(closure("mcpserve").items()):
        print(f"{name}=={version}")
